// Facts of a SnapVault reconcile for the unit tests of its rules (policy/snapvault-run.ts, policy/snapvault-backup.ts).
import type { SnapshotEntry, SnapVaultStatus } from "../../src/api/v1alpha1/index.ts";
import { repositoryAccess } from "../../src/policy/repository.ts";
import type { SnapVaultRunFacts, VsFacts } from "../../src/policy/snapvault-run.ts";

export const T0 = Date.parse("2026-12-01T10:00:00Z");
export const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

export function facts(over: Partial<SnapVaultRunFacts> = {}, status: SnapVaultStatus = { repositoryId: "repo1" }): SnapVaultRunFacts {
  return {
    sv: {
      name: "db",
      namespace: "team",
      uid: "sv-uid",
      createdAt: iso(T0 - 3600_000),
      spec: {
        source: { persistentVolumeClaims: ["a", "b"] },
        destination: { library: "vault", encryption: { passwordSecret: { name: "pw" } } },
        schedule: { every: "1h" },
      },
      status,
      owner: { apiVersion: "auxo.dev/v1alpha1", kind: "SnapVault", name: "db", uid: "sv-uid", controller: true },
    },
    problems: [],
    library: { name: "vault", phase: "Ready", maxStreams: 10 },
    access: repositoryAccess({ filesystem: { volume: { persistentVolumeClaim: { claimName: "lib" } } } } as never, "team/snapvault/db", {
      secret: "pw",
      key: "password",
    }),
    pvcs: [
      { name: "a", bound: true, storageClassName: "csi", size: "1Gi" },
      { name: "b", bound: true, storageClassName: "csi", size: "1Gi" },
    ],
    listed: ["a", "b"],
    pvcsPresent: ["a", "b"],
    snapshots: [],
    claims: [],
    pods: [],
    streamsInUse: 0,
    deadHosts: [],
    settings: { agentImage: "auxo:dev", retryBaseMs: 1000, budget: { maxAttempts: 3, maxDays: 5 } },
    now: T0,
    ...over,
  };
}

export const vs = (name: string, pvc: string, at: number, over: Partial<VsFacts> = {}): VsFacts => ({
  name,
  uid: `uid-${name}`,
  pvc,
  origin: "Taken",
  creationTime: iso(at),
  readyToUse: true,
  deleting: false,
  ...over,
});

export const entry = (name: string, pvc: string, at: number, over: Partial<SnapshotEntry> = {}): SnapshotEntry => ({
  name,
  uid: `uid-${name}`,
  persistentVolumeClaim: pvc,
  origin: "Taken",
  creationTime: iso(at),
  state: "Pending",
  ...over,
});

export const running = (number = 1, over: Partial<NonNullable<SnapVaultStatus["run"]>> = {}): NonNullable<SnapVaultStatus["run"]> => ({
  number,
  trigger: "Schedule",
  startTime: iso(T0 - 60_000),
  phase: "Running",
  copied: 0,
  bytes: 0,
  ...over,
});
