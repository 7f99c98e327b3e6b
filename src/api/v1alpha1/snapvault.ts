import { type Static, Type } from "@sinclair/typebox";
import {
  Bool,
  Conditions,
  DateTime,
  Duration,
  Enum,
  Int,
  Name,
  Obj,
  ObservedGeneration,
  LabelSelector,
  RepositoryPath,
  SecretKeyRef,
  Str,
  cel,
} from "./schema-helpers.ts";

export const SnapStates = ["Pending", "Copying", "Copied", "Retrying", "Missing"] as const;

export const SnapVaultSpec = Obj(
  {
    mode: Type.Optional(
      Enum(
        ["Vault", "Mirror"] as const,
        "Vault keeps its own set of snapshot copies under its own retention; Mirror follows the source. Default: Vault.",
        { default: "Vault" },
      ),
    ),
    source: Obj(
      {
        provider: Type.Optional(
          Enum(["CSI", "Local"] as const, "Where snapshots come from: CSI VolumeSnapshots, or the local provider (tests). Default: CSI.", {
            default: "CSI",
          }),
        ),
        persistentVolumeClaimSelector: Type.Optional(
          LabelSelector("Label selector (metav1.LabelSelector) of the PVCs whose snapshots are copied."),
        ),
        persistentVolumeClaims: Type.Optional(
          Type.Array(Name("A PVC name."), {
            description: "PVCs whose snapshots are copied.",
            maxItems: 256,
            "x-kubernetes-list-type": "set",
          }),
        ),
        volumeSnapshotClassName: Type.Optional(Name("VolumeSnapshotClass of the snapshots to take or use.")),
      },
      "The snapshots to copy.",
      cel({
        rule: "has(self.persistentVolumeClaimSelector) || has(self.persistentVolumeClaims)",
        message: "source needs persistentVolumeClaims or persistentVolumeClaimSelector",
      }),
    ),
    destination: Obj(
      {
        library: Name("Library that receives the snapshot copies."),
        repositoryPath: Type.Optional(RepositoryPath("Repository location inside the library. Default: <namespace>/snapvault/<name>.")),
        encryption: Obj(
          { passwordSecret: SecretKeyRef("Secret holding the repository password.", "password") },
          "The repository's encryption key.",
        ),
      },
      "Where the vault or mirror copies go.",
    ),
    schedule: Type.Optional(
      Obj(
        { every: Type.Optional(Duration("Interval between runs. Default: 1h.", { min: "1m", max: "168h" }, { default: "1h" })) },
        "When runs start.",
        { default: {} },
      ),
    ),
    retry: Type.Optional(
      Obj(
        {
          maxAttempts: Type.Optional(
            Int("Attempts per snapshot before it is Missing. Default: 10.", { minimum: 1, maximum: 1000, default: 10 }),
          ),
          maxDays: Type.Optional(
            Int("Days after the first failed attempt before it is Missing. Default: 5.", { minimum: 1, maximum: 365, default: 5 }),
          ),
        },
        "Retry budget per snapshot; whichever limit is reached first ends the retries.",
        { default: {} },
      ),
    ),
    retention: Type.Optional(
      Obj(
        {
          days: Type.Optional(
            Int("Keep snapshot copies this many days; -1 keeps forever. Default: 30.", { minimum: -1, maximum: 36500, default: 30 }),
          ),
          recoveryPoints: Type.Optional(
            Int("Keep at most this many snapshot copies per volume (0: no limit). Default: 0.", {
              minimum: 0,
              maximum: 100000,
              default: 0,
            }),
          ),
        },
        "Retention of the snapshot copies (Vault mode).",
        { default: {} },
      ),
    ),
    backupCopy: Type.Optional(
      Obj(
        {
          enabled: Type.Optional(Bool("Also copy snapshot data into a policy's primary copy. Default: false.", { default: false })),
          storagePolicy: Type.Optional(Name("The StoragePolicy whose primary copy receives the backup copies.")),
        },
        "Backup copy of snapshots into a storage policy.",
        cel({ rule: "!self.enabled || has(self.storagePolicy)", message: "backupCopy.enabled needs backupCopy.storagePolicy" }),
      ),
    ),
  },
  "Vault or mirror copies of volume snapshots, with a retry budget per snapshot.",
  cel({
    rule: "self.mode != 'Mirror' || !has(self.retention) || self.retention.recoveryPoints == 0",
    message: "a Mirror follows its source's retention: recoveryPoints is for Vault mode",
  }),
);

const SnapshotState = Obj(
  {
    name: Str("Snapshot name."),
    persistentVolumeClaim: Str("PVC the snapshot was taken of."),
    state: Enum(SnapStates, "State of the snapshot's copy."),
    attempts: Type.Optional(Int("Copy attempts so far.")),
    firstAttemptTime: Type.Optional(DateTime("First attempt.")),
    lastError: Type.Optional(Str("Last error.")),
  },
  "One snapshot and its copy.",
);

export const SnapVaultStatus = Obj(
  {
    observedGeneration: Type.Optional(ObservedGeneration),
    conditions: Type.Optional(Conditions),
    phase: Type.Optional(
      Enum(["Pending", "Running", "Completed", "AvailableWithMissingSnaps", "Failed"] as const, "Result of the current or last run."),
    ),
    lastRunTime: Type.Optional(DateTime("When the last run started.")),
    counts: Type.Optional(
      Obj(
        {
          pending: Type.Optional(Int("Snapshots waiting.")),
          copying: Type.Optional(Int("Snapshots being copied.")),
          copied: Type.Optional(Int("Snapshots copied.")),
          retrying: Type.Optional(Int("Snapshots waiting for another attempt.")),
          missing: Type.Optional(Int("Snapshots out of retries, or whose source is gone.")),
        },
        "Snapshots by state.",
      ),
    ),
    snapshots: Type.Optional(
      Type.Array(SnapshotState, { description: "Snapshots not yet Copied, and the latest ones (at most 100).", maxItems: 100 }),
    ),
  },
  "Observed state of the snap vault.",
);

export type SnapVaultSpec = Static<typeof SnapVaultSpec>;
export type SnapVaultStatus = Static<typeof SnapVaultStatus>;
