// Label and annotation names of Auxo's objects, in one place. Label values of user names go through
// policy/names.ts labelValue (at most 63 characters); annotations keep names in full.

/** Labels on MediaAgent pods and on the objects the operator creates. */
export const Label = {
  managedBy: "app.kubernetes.io/managed-by",
  task: "auxo.dev/task",
  copy: "auxo.dev/copy",
  source: "auxo.dev/source",
  auxCopyJob: "auxo.dev/auxcopyjob",
  targetLibrary: "auxo.dev/target-library",
  sourceLibrary: "auxo.dev/source-library",
  attempt: "auxo.dev/attempt",
  dryRun: "auxo.dev/dry-run",
  storagePolicy: "auxo.dev/storage-policy",
  trigger: "auxo.dev/trigger",
  follows: "auxo.dev/follows",
  promoteTo: "auxo.dev/promote-to",
  snapVault: "auxo.dev/snapvault",
  pvc: "auxo.dev/pvc",
  volumeSnapshotUid: "auxo.dev/volumesnapshot-uid",
} as const;

export const Annotation = {
  /** Set by a user to the current time: read the copy's catalog now (docs/operations.md). */
  rescanRequested: "auxo.dev/rescan-requested",
  /** Set by a user to the current time: run the copy's data aging now (docs/retention.md). */
  dataAgingRequested: "auxo.dev/data-aging-requested",
  /** Set by a user to the current time: run the copy's data verification now (docs/verification.md). */
  verificationRequested: "auxo.dev/verification-requested",
  /** A MediaAgent pod's copy, in full (its label value may be shortened). */
  copy: "auxo.dev/copy",
  /** A preview pod's catalog scan time: the preview belongs to that scan. */
  catalogTime: "auxo.dev/catalog-time",
  /** The client Secret's primary copy. */
  primaryCopy: "auxo.dev/primary-copy",
  /** Set by a user to a new token: start a SnapVault run now (answered in status.lastRequest; docs/snapvault.md). */
  runRequested: "auxo.dev/run-requested",
  /** Set by a user to a new token: re-arm the SnapVault's Missing snapshots (answered in status.lastRepick). */
  repickRequested: "auxo.dev/repick-requested",
  /** Set by a user to a new token: start an offline backup copy now (answered in status.backupCopy.lastRequest). */
  backupCopyRequested: "auxo.dev/backup-copy-requested",
  /** On a PVC: the nodes (names, comma separated) its backup copies run on (docs/snapvault.md). */
  accessNodes: "auxo.dev/access-nodes",
  /** The SnapVault that cut a VolumeSnapshot, in full. */
  snapVault: "auxo.dev/snapvault",
  /** The run that cut a VolumeSnapshot. */
  run: "auxo.dev/run",
  /** The VolumeSnapshot a copy pod copies, in full. */
  volumeSnapshot: "auxo.dev/volumesnapshot",
} as const;

/** The value of the managed-by label on everything Auxo creates. */
export const MANAGED_BY = "auxo";

/** Selector of every MediaAgent pod. */
export const AGENT_PODS = `${Label.managedBy}=${MANAGED_BY}`;

/** Selector of the MediaAgent pods of some tasks. */
export const agentPodsOf = (...tasks: string[]): string =>
  tasks.length === 1 ? `${AGENT_PODS},${Label.task}=${tasks[0]}` : `${AGENT_PODS},${Label.task} in (${tasks.join(",")})`;
