import { type Static, Type } from "@sinclair/typebox";
import { ExtendedRule } from "./policycopy.ts";
import {
  Bool,
  Conditions,
  DateTime,
  Duration,
  Enum,
  Int,
  LabelSelector,
  Name,
  Obj,
  ObservedGeneration,
  RepositoryPath,
  SecretKeyRef,
  Str,
  cel,
} from "./schema-helpers.ts";

export const SnapStates = ["Pending", "Copying", "Copied", "Retrying", "Missing"] as const;
export const MissingReasons = ["RetryCountExhausted", "RetryTimeLimitExhausted", "SourceSnapshotDeleted", "SourceVolumeDeleted"] as const;
export const BackupCopyStates = ["Pending", "Copying", "Copied", "Retrying", "Missing", "Skipped"] as const;
export const RunPhases = ["Pending", "Running", "Completed", "AvailableWithMissingSnaps", "Failed"] as const;

export const SnapVaultSpec = Obj(
  {
    mode: Type.Optional(
      Enum(
        ["Vault", "Mirror"] as const,
        "Vault keeps its own set of snapshot copies under its own retention; Mirror follows the source (a copy whose snapshot is gone while its PVC exists is forgotten). Default: Vault.",
        { default: "Vault" },
      ),
    ),
    storagePolicy: Type.Optional(
      Name(
        "The StoragePolicy this SnapVault belongs to: its operation windows and time zone apply to runs, and backup copies go to its primary copy.",
      ),
    ),
    source: Obj(
      {
        persistentVolumeClaims: Type.Optional(
          Type.Array(Name("A PVC name."), {
            description: "PVCs that Auxo snapshots on the schedule (same namespace).",
            maxItems: 256,
            "x-kubernetes-list-type": "set",
          }),
        ),
        persistentVolumeClaimSelector: Type.Optional(LabelSelector("PVCs that Auxo snapshots on the schedule, by label.")),
        volumeSnapshotClassName: Type.Optional(
          Name("VolumeSnapshotClass of the snapshots Auxo cuts. Default: the cluster's default class for the PVC's driver."),
        ),
        retention: Type.Optional(
          Obj(
            {
              days: Type.Optional(
                Int("Delete snapshots Auxo cut once they are this many days old; -1 keeps them. Default: 7.", {
                  minimum: -1,
                  maximum: 36500,
                  default: 7,
                }),
              ),
              recoveryPoints: Type.Optional(
                Int("Keep at most this many snapshots Auxo cut per PVC (0: no limit). Default: 0.", {
                  minimum: 0,
                  maximum: 10000,
                  default: 0,
                }),
              ),
              spool: Type.Optional(
                Bool(
                  "Spool (no retention): delete each snapshot Auxo cut once every copy that needs it has it (days and recoveryPoints then do not apply). Default: false.",
                  { default: false },
                ),
              ),
              keepNewest: Type.Optional(
                Enum(
                  ["Never", "Scheduled"] as const,
                  "With spool: Scheduled keeps the newest snapshot of each PVC cut by a scheduled run; requested runs are a true spool. Default: Never.",
                  { default: "Never" },
                ),
              ),
            },
            "Retention of the snapshots Auxo cuts, on the source. A snapshot is never deleted before every copy that needs it has it or it is Missing; adopted snapshots are never deleted.",
            { default: {} },
          ),
        ),
        adopt: Type.Optional(
          Obj(
            { volumeSnapshotSelector: LabelSelector("Existing VolumeSnapshots to copy (made by other tools), by label.") },
            "Existing VolumeSnapshots that Auxo copies but never deletes.",
          ),
        ),
        storageClassName: Type.Optional(
          Name("StorageClass of the volumes restored from snapshots for copying. Default: the source PVC's class."),
        ),
      },
      "Where the snapshots come from: taken by Auxo of the selected PVCs, and/or adopted by label.",
      cel({
        rule: "has(self.persistentVolumeClaimSelector) || has(self.persistentVolumeClaims) || has(self.adopt)",
        message: "source needs persistentVolumeClaims, persistentVolumeClaimSelector or adopt",
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
      "Where the vault or mirror copies go: one restic snapshot per VolumeSnapshot.",
    ),
    schedule: Type.Optional(
      Obj(
        {
          every: Type.Optional(Duration("Interval between runs. Default: 1h.", { min: "1m", max: "168h" }, { default: "1h" })),
          suspend: Type.Optional(Bool("Start no scheduled runs (requested runs still start). Default: false.", { default: false })),
        },
        "When runs start (and on request: the auxo.dev/run-requested annotation).",
        { default: {} },
      ),
    ),
    retry: Type.Optional(
      Obj(
        {
          maxAttempts: Type.Optional(
            Int("Attempts per snapshot before it is Missing. Default: the operator's (10).", { minimum: 1, maximum: 1000 }),
          ),
          maxDays: Type.Optional(
            Int("Days after the first failed attempt before it is Missing. Default: the operator's (5).", { minimum: 1, maximum: 365 }),
          ),
        },
        "Retry budget per snapshot for source faults; whichever limit is reached first ends the retries.",
      ),
    ),
    stagingTimeout: Type.Optional(
      Duration(
        "How long a snapshot may take to become ready, and its restored volume to mount, before the attempt counts as failed. Default: 5m.",
        { min: "10s", max: "24h" },
        { default: "5m" },
      ),
    ),
    retention: Type.Optional(
      Obj(
        {
          days: Type.Optional(
            Int("Keep snapshot copies this many days; -1 keeps forever. Default: 30.", { minimum: -1, maximum: 36500, default: 30 }),
          ),
          recoveryPoints: Type.Optional(
            Int("Keep at least this many snapshot copies per PVC, whatever their age (0: by days only). Default: 0.", {
              minimum: 0,
              maximum: 100000,
              default: 0,
            }),
          ),
          extended: Type.Optional(Type.Array(ExtendedRule, { description: "Up to 3 extended retention rules.", maxItems: 3 })),
          ignoreCompletedWithErrorsForExtendedRetention: Type.Optional(
            Bool("Let copies of snap jobs with missing snaps be kept by extended rules. Default: false.", { default: false }),
          ),
        },
        "Retention of the snapshot copies on the destination (Vault mode), aged by the data aging task after each run.",
        cel({
          rule: "!has(self.extended) || self.extended.all(r, r.keepDays == -1 || (self.days != -1 && r.keepDays > self.days))",
          message: "extended retention must keep copies longer than basic retention: keepDays must exceed days (or be -1)",
        }),
      ),
    ),
    backupCopy: Type.Optional(
      Obj(
        {
          enabled: Type.Optional(
            Bool("Also copy snapshot data into the storage policy's primary copy, as backup jobs. Default: false.", { default: false }),
          ),
          mode: Type.Optional(
            Enum(
              ["Inline", "Offline"] as const,
              "Inline: each snapshot a run cuts is backed up in that run. Offline: on the backup copy's own schedule (or on request, auxo.dev/backup-copy-requested), over the snapshots not backed up yet. Default: Inline.",
              { default: "Inline" },
            ),
          ),
          schedule: Type.Optional(
            Obj(
              {
                every: Type.Optional(
                  Duration("Interval between offline backup copies. Default: 24h.", { min: "1m", max: "168h" }, { default: "24h" }),
                ),
                suspend: Type.Optional(
                  Bool("Start no scheduled offline backup copies (requested ones still start). Default: false.", { default: false }),
                ),
              },
              "When offline backup copies start (Offline mode).",
              { default: {} },
            ),
          ),
          select: Type.Optional(
            Obj(
              {
                take: Type.Optional(
                  Enum(
                    ["All", "First", "Last"] as const,
                    "All snapshots, or the first or last snapshot of each PVC per period (Last waits for the period to end). Default: All.",
                    { default: "All" },
                  ),
                ),
                period: Type.Optional(
                  Enum(
                    ["Hourly", "Daily", "Weekly", "Monthly"] as const,
                    "The period of First and Last, in the policy's time zone. Default: Daily.",
                    {
                      default: "Daily",
                    },
                  ),
                ),
              },
              "Which snapshots an offline backup copy takes (Offline mode); the others are Skipped.",
            ),
          ),
          fullEvery: Type.Optional(
            Duration(
              "A full backup copy of a PVC once its last full on the primary is this old. Default: 168h.",
              { min: "1h", max: "8760h" },
              { default: "168h" },
            ),
          ),
          incrementalLimit: Type.Optional(
            Int("Incrementals after a full or differential before the next backup copy is a differential (0: no limit). Default: 6.", {
              minimum: 0,
              maximum: 1000,
              default: 6,
            }),
          ),
          accessNodes: Type.Optional(
            LabelSelector(
              "Nodes backup copy pods must run on (access nodes); a PVC's auxo.dev/access-nodes annotation (node names) wins. Default: the primary copy's MediaAgent nodes, else any node.",
            ),
          ),
        },
        "Backup copy of snapshots into spec.storagePolicy's primary copy (the copy in force, so it follows a promotion).",
        cel({
          rule: "!has(self.select) || self.mode == 'Offline'",
          message: "select is for Offline backup copies (Inline takes every snapshot it cuts)",
        }),
      ),
    ),
  },
  "Vault or mirror copies of volume snapshots, with a retry budget per snapshot.",
  cel(
    {
      rule: "self.mode != 'Mirror' || !has(self.retention)",
      message: "a Mirror follows its source's retention: retention is for Vault mode",
    },
    {
      rule: "!has(self.backupCopy) || !self.backupCopy.enabled || has(self.storagePolicy)",
      message: "backupCopy.enabled needs spec.storagePolicy",
    },
  ),
);

const SnapshotState = Obj(
  {
    name: Str("VolumeSnapshot name."),
    uid: Type.Optional(Str("VolumeSnapshot uid (empty for a snapshot that could not be cut).")),
    persistentVolumeClaim: Str("PVC the snapshot is of."),
    origin: Type.Optional(Enum(["Taken", "Adopted"] as const, "Cut by Auxo, or adopted by label.")),
    creationTime: Type.Optional(DateTime("When the snapshot was cut: the copy's point in time.")),
    state: Enum(SnapStates, "State of the snapshot's copy."),
    reason: Type.Optional(Str("Why it is Missing or Retrying.")),
    attempts: Type.Optional(Int("Failed copy attempts so far (source faults only).")),
    firstAttemptTime: Type.Optional(DateTime("First failed attempt: the retry budget's days count from it.")),
    lastAttemptTime: Type.Optional(DateTime("Latest attempt.")),
    lastError: Type.Optional(Str("Latest error.")),
    copiedAs: Type.Optional(Str("The restic snapshot ID on the destination.")),
    bytes: Type.Optional(Int("Bytes of the snapshot's files.")),
    run: Type.Optional(Int("The run that last tried it.")),
    storageClassName: Type.Optional(Str("The source PVC's StorageClass, remembered for restoring after the PVC is gone.")),
    cutBy: Type.Optional(Int("The run that cut it: its snap job (a job with a Missing snapshot completes with errors).")),
    pods: Type.Optional(Int("Copy pods started for it (their number names the pod and the restored volume).")),
    backupCopy: Type.Optional(
      Obj(
        {
          state: Enum(BackupCopyStates, "State of the snapshot's backup copy."),
          reason: Type.Optional(Str("Why it is Retrying, Missing or Skipped.")),
          round: Type.Optional(Int("The run (Inline) or offline backup copy (Offline) that last took it.")),
          type: Type.Optional(Enum(["full", "incremental", "differential"] as const, "The backup job's type.")),
          status: Type.Optional(Enum(["completed", "completedWithErrors"] as const, "The backup job's status.")),
          jobId: Type.Optional(Str("The backup job's id.")),
          snapshotId: Type.Optional(Str("The restic snapshot ID on the primary copy.")),
          copy: Type.Optional(Str("The primary copy it was written to.")),
          bytes: Type.Optional(Int("Bytes of the snapshot's files.")),
          attempts: Type.Optional(Int("Failed attempts so far (source faults only).")),
          firstAttemptTime: Type.Optional(DateTime("First failed attempt.")),
          lastAttemptTime: Type.Optional(DateTime("Latest attempt.")),
          lastError: Type.Optional(Str("Latest error.")),
          pods: Type.Optional(Int("Backup copy pods started for it.")),
        },
        "The snapshot's backup copy into the storage policy's primary copy.",
      ),
    ),
  },
  "One snapshot and its copy.",
);

export const SnapVaultStatus = Obj(
  {
    observedGeneration: Type.Optional(ObservedGeneration),
    conditions: Type.Optional(Conditions),
    phase: Type.Optional(Enum(RunPhases, "Result of the current or last run.")),
    repositoryId: Type.Optional(Str("The destination restic repository's ID: every MediaAgent checks it before it writes.")),
    runs: Type.Optional(Int("Runs started so far.")),
    run: Type.Optional(
      Obj(
        {
          number: Int("The run's number."),
          trigger: Enum(["Schedule", "Request"] as const, "What started it."),
          startTime: DateTime("When it started."),
          endTime: Type.Optional(DateTime("When it ended.")),
          phase: Enum(RunPhases, "The run's phase."),
          waiting: Type.Optional(Str("Why it is not copying now (destination down, operation window, streams).")),
          destinationFailures: Type.Optional(Int("Copy pods that failed on the destination in this run (they cost no attempt).")),
          retryAt: Type.Optional(DateTime("When a copy parked by a destination fault is tried again.")),
          copied: Type.Optional(Int("Snapshots copied by this run.")),
          bytes: Type.Optional(Int("Bytes copied by this run.")),
          message: Type.Optional(Str("How it ended.")),
          aging: Type.Optional(
            Str("What data aging of the destination did after it (Vault: its retention; Mirror: copies of deleted snapshots)."),
          ),
          aged: Type.Optional(Int("Copies aged on the destination after it.")),
        },
        "The current or last run.",
      ),
    ),
    lastRunTime: Type.Optional(DateTime("When the last run started.")),
    nextRunTime: Type.Optional(DateTime("When the next scheduled run starts.")),
    lastRequest: Type.Optional(Str("The last auxo.dev/run-requested value answered.")),
    lastRepick: Type.Optional(Str("The last auxo.dev/repick-requested value answered (Missing snapshots re-armed).")),
    current: Type.Optional(
      Obj(
        {
          snapshot: Str("The snapshot being copied."),
          persistentVolumeClaim: Str("Its PVC."),
          bytesDone: Type.Optional(Int("Bytes read so far.")),
          bytesTotal: Type.Optional(Int("Bytes to read.")),
          percent: Type.Optional(Type.Number({ description: "Percent done." })),
          bytesPerSecond: Type.Optional(Int("Throughput so far.")),
          startTime: Type.Optional(DateTime("When its copy started.")),
        },
        "The copy in progress (the oldest one when several run).",
      ),
    ),
    counts: Type.Optional(
      Obj(
        {
          pending: Type.Optional(Int("Snapshots waiting.")),
          copying: Type.Optional(Int("Snapshots being copied.")),
          copied: Type.Optional(Int("Snapshots copied.")),
          retrying: Type.Optional(Int("Snapshots waiting for another attempt.")),
          missing: Type.Optional(Int("Snapshots out of retries, or whose source is gone.")),
        },
        "Snapshots by state (of those status lists).",
      ),
    ),
    settledThrough: Type.Optional(
      DateTime(
        "Status lists at most 100 snapshots: those settled (Copied or Missing) created at or before this time that it no longer lists are done, and not taken up again.",
      ),
    ),
    initFailures: Type.Optional(Int("Failed attempts to open the destination repository (each waits twice as long).")),
    backupCopy: Type.Optional(
      Obj(
        {
          primaryCopy: Type.Optional(Str("The primary copy backup copies go to now (the policy's copy in force).")),
          round: Type.Optional(Int("Rounds of backup copies so far (Inline: runs; Offline: offline backup copies).")),
          runs: Type.Optional(Int("Offline backup copies started so far.")),
          lastRunTime: Type.Optional(DateTime("When the last offline backup copy started.")),
          nextRunTime: Type.Optional(DateTime("When the next scheduled offline backup copy starts.")),
          lastRequest: Type.Optional(Str("The last auxo.dev/backup-copy-requested value answered.")),
          placement: Type.Optional(Str("How backup copy pods are placed: AccessNodes, MediaAgent or MostResources.")),
          waiting: Type.Optional(Str("Why backup copies wait (the primary copy, a window, streams, access nodes).")),
          destinationFailures: Type.Optional(Int("Backup copy pods that failed on the primary copy in a row (they cost no attempt).")),
          retryAt: Type.Optional(DateTime("When a backup copy parked by a fault of the primary copy is tried again.")),
          counts: Type.Optional(
            Obj(
              {
                pending: Type.Optional(Int("Waiting.")),
                copying: Type.Optional(Int("Being written.")),
                copied: Type.Optional(Int("On the primary copy.")),
                retrying: Type.Optional(Int("Waiting for another attempt.")),
                missing: Type.Optional(Int("Out of retries, or their snapshot is gone.")),
                skipped: Type.Optional(Int("Not selected (Offline select).")),
              },
              "Backup copies by state (of the snapshots status lists).",
            ),
          ),
          jobs: Type.Optional(
            Obj(
              {
                full: Type.Optional(Int("Fulls.")),
                incremental: Type.Optional(Int("Incrementals.")),
                differential: Type.Optional(Int("Differentials.")),
              },
              "Backup copy jobs written, by type (of the snapshots status lists).",
            ),
          ),
        },
        "Backup copies into the storage policy's primary copy.",
      ),
    ),
    snapshots: Type.Optional(
      Type.Array(SnapshotState, { description: "Snapshots not yet Copied first, then the newest (at most 100).", maxItems: 100 }),
    ),
  },
  "Observed state of the snap vault.",
);

export type SnapVaultSpec = Static<typeof SnapVaultSpec>;
export type SnapVaultStatus = Static<typeof SnapVaultStatus>;
export type SnapshotEntry = Static<typeof SnapshotState>;
