// What the operator tells its controllers (from its flags and the chart).

export interface ControllerSettings {
  /** Image of MediaAgent pods. */
  agentImage: string;
  /** Probe libraries with MediaAgent pods (default true); off, libraries stay Pending. */
  probeLibraries?: boolean;
  /** How long a probe may take before the library counts as unreachable (default 60 s). */
  probeTimeoutSeconds?: number;
  /** How often a copy's catalog is read from its repository (default 600 s). */
  scanIntervalSeconds?: number;
  /** First retry delay of failed MediaAgent work (doubling to 30 minutes). Default: 30 s. */
  retryBaseMs?: number;
  /** How often a running copy's progress is read into status. Default: 2 s. */
  progressIntervalMs?: number;
  /** Create the policies' automatic aux copy jobs (spec.auxCopySchedule). Default: true. */
  autoAuxCopy?: boolean;
  /** Run data aging and its previews. Off unless set: the operator's --data-aging (default true) sets it. */
  dataAging?: boolean;
  /** Accept hostPath libraries (any folder of a node). Refused unless set: --allow-host-path-libraries. */
  allowHostPathLibraries?: boolean;
  /** Accept NFS libraries (any export the nodes reach). Refused unless set: --allow-nfs-libraries. */
  allowNfsLibraries?: boolean;
  /** Let a PolicyCopy's spec.repositoryPath leave its namespace's prefix (default false: tenants stay in their prefix). */
  allowRepositoryPathsOutsideNamespace?: boolean;
  /**
   * The cluster serves snapshot.storage.k8s.io/v1 (the operator checks at start): SnapVaults run only then; without it
   * they say so in their Ready condition. Default false.
   */
  volumeSnapshots?: boolean;
  /** Default retry budget of a SnapVault's snapshots (default 10 attempts and 5 days). */
  snapRetryMaxAttempts?: number;
  snapRetryMaxDays?: number;
  now?: () => number;
}
