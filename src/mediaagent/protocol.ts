// The agent protocol: what a MediaAgent task takes (TaskSpec, in AUXO_TASK) and what it leaves in its termination
// message (one result type per task). Shared by the pod builder, the agent and the controllers that read the results,
// so a field the agent writes and a field a controller reads are the same field. Results are summaries: the
// termination message holds at most 4 KiB (the agent drops its largest fields first, see `truncated`).
//
// Results are type aliases, not interfaces: an alias is assignable to a plain JSON record, which is what the
// termination message and the tests that read it take.
import type { CatalogEntry } from "../policy/catalog.ts";
import type { RepositoryAccess } from "../policy/repository.ts";
import type { VerificationSummary } from "../policy/jobevents.ts";
import type { RunRecord } from "../policy/runrecords.ts";
import type { RetentionOverride, RetentionSpec, RetentionSummary } from "../policy/retention.ts";
import type { CopyRules, JobCopyState } from "../policy/selection.ts";

export type AgentTask = "probe" | "init" | "scan" | "copy" | "plan" | "age" | "verify" | "snapcopy" | "backupcopy" | "list" | "restore";

/** What the agent reads from AUXO_TASK (no secrets: passwords and keys are files and env from Secrets). */
export interface TaskSpec {
  task: AgentTask;
  target: Omit<RepositoryAccess, "volumes" | "env">;
  source?: Omit<RepositoryAccess, "volumes" | "env">;
  snapshotIds?: string[];
  /** For copy: select the jobs in the pod, from both catalogs, by the copy's rules (policy/selection.ts). */
  plan?: CopyTaskPlan;
  /**
   * For age: the copies that source from the target, whose needs hold its jobs (read-only). For plan (a promotion
   * check): the copies the promotion re-points to the target, whose needs count too.
   */
  downstream?: DownstreamTask[];
  /** For age: the target copy's retention. */
  aging?: AgingTask;
  /** For snapcopy: the VolumeSnapshot whose restored volume is mounted read-only, and the job it becomes. */
  snapshot?: SnapCopyTask;
  /** For verify: select the jobs in the pod by the copy's verification rules (policy/verification.ts). */
  verification?: VerificationTask;
  /** For backupcopy: the job type rules (the VolumeSnapshot is in `snapshot`, the primary copy is the target). */
  backupCopy?: BackupCopyTask;
  /**
   * For list (kubectl auxo jobs and history): how many of the newest aging run records to print in full; `jobs:
   * false` prints no jobs nor job records (history).
   */
  listing?: { runs: number; jobs?: false };
  /** For restore (kubectl auxo restore): the job, and the folder of the mounted claim (under /restore) it goes to. */
  restore?: RestoreTask;
  /**
   * Locks: before it works on a repository the agent removes restic's stale locks and the locks of these hosts (pod
   * names of Auxo MediaAgents the operator knows have ended), never any other lock (docs/job-metadata.md).
   */
  locks?: { deadHosts?: string[] };
  timeoutSeconds?: number;
}

export interface CopyTaskPlan {
  rules: CopyRules;
  /** Do not pick new backups: the run's start time. */
  cutoff?: string;
  /** When the run started: the agent counts the run's copied jobs from the job events since then. */
  runStart?: string;
  skipVerificationFailed?: boolean;
  limit?: number;
  /** Use Most Recent Full: the latest successful full of each subclient goes to a selective copy. */
  mostRecentFull?: boolean;
}

export interface DownstreamTask {
  name: string;
  access: Omit<RepositoryAccess, "volumes" | "env">;
  /** Its selection rules: what it will take from the target decides what it still needs. */
  rules: CopyRules;
  active: boolean;
  /** Its library is not Ready: it cannot be read, so it needs every job (hold until copied). */
  unreachable?: boolean;
}

export interface AgingTask {
  retention?: RetentionSpec;
  overrides?: RetentionOverride[];
  timeZone?: string;
  /** The mass-deletion breaker: most percent of the copy's jobs one run may age. */
  maxSharePercent: number;
  /** Only report what would age. */
  dryRun?: boolean;
  /** Decide as of this time (a preview of the next run); default now. */
  at?: string;
  /** The run's number (its record beside the repository carries it); absent for previews. */
  run?: number;
  /** A SnapVault Mirror: forget exactly these jobs (their snapshot is gone at the source), never a PVC's newest copy. */
  forgetJobs?: string[];
}

/**
 * One VolumeSnapshot's vault or mirror copy (docs/job-metadata.md, "Snapshot copies"): a restic snapshot of the
 * mounted folder with the job's tags, `--time` the VolumeSnapshot's creation time, and the previous copy of the same
 * PVC as restic's parent. A copy is never written twice: a snapshot on the target with the VolumeSnapshot's uid tag is
 * the copy.
 */
export interface SnapCopyTask {
  /** Where the restored volume is mounted (read-only): a stable path per PVC, `/snapshots/<pvc>`. */
  path: string;
  jobId: string;
  /** completedWithErrors when its snap job has missing snaps. */
  status: "completed" | "completedWithErrors";
  /** The PVC's namespace (restic's host, the job's client). */
  client: string;
  /** The PVC (the job's subclient). */
  subclient: string;
  snapVault: string;
  volumeSnapshot: { name: string; uid: string; handle?: string; creationTime: string };
}

export interface VerificationTask {
  scope: "AllJobs" | "AllFulls";
  onOrAfter?: string;
  reverifyAfterMs?: number;
  /** new: jobs never verified (or copied again since); due: those and jobs due again. */
  mode: "new" | "due";
  /** The operator's decision time. */
  at: string;
  /** The run's number and what started it (its record beside the repository carries them). */
  run?: number;
  trigger?: string;
  startTime?: string;
}

export interface RestoreTask {
  jobId: string;
  /** Where the claim is mounted (read-write). */
  mountPath: string;
  /** A folder inside the claim ("" for its root). */
  path: string;
}

export interface BackupCopyTask {
  /** A full once the PVC's last full on the target is this old (ms). */
  fullEveryMs: number;
  /** Incrementals after a full or differential before the next is a differential (0: no limit). */
  incrementalLimit: number;
}

/** A lock as the run's status shows it: who holds it, since when. */
export interface LockHolder {
  host: string;
  pid?: number;
  user?: string;
  exclusive: boolean;
  createdAt: string;
  ageSeconds?: number;
}

/** What every result carries. A failed task has kind (the engine's error kind, or "Failed"), retryable and message. */
export type ResultBase = {
  ok: boolean;
  message?: string;
  kind?: string;
  retryable?: boolean;
  /** LockHeld: the lock that blocked the task. */
  lock?: LockHolder;
  /** Fields cut (lists halved, others dropped) to fit the termination message. */
  truncated?: string[];
  /** Job events that could not be written or read; the work itself is done. */
  metadataError?: string;
};

/** Locks of ended Auxo pods the task removed before it wrote (at most 10). */
export type LocksNote = { locksRemoved?: { host: string; id: string }[] };

export type ProbeResult = ResultBase & { message: string };

export type InitResult = ResultBase & {
  /** False: the repository was there already (a retried init, or one that outlived the cluster). */
  created: boolean;
  /** restic's repository ID, which the operator records. */
  id: string;
};

export type ScanResult = ResultBase & {
  repositoryId: string;
  jobs: number;
  byType: Record<string, number>;
  byStatus: Record<string, number>;
  bytes: number;
  oldestJob?: string;
  newestJob?: string;
  /** From the job events beside the repository; absent when the library keeps none. */
  verification?: VerificationSummary;
  /** Jobs that took more than one copy attempt. */
  copyRetries?: number;
  /** The run records beside the repository (policy/runrecords.ts): what a rebuilt status starts from. */
  recorded?: RecordedRuns;
};

export interface RecordedRuns {
  aging?: { runs: number; lastRun: number; agedJobs: number; last?: RunRecord };
  verification?: {
    runs: number;
    lastRun: number;
    verifiedJobs: number;
    last?: RunRecord;
    /** The newest runs (at most 10), from the records' names. */
    history: { run: number; at: string; jobs: number; failed: number }[];
  };
}

/**
 * A copy pod's result. On failure the same counts describe what this attempt finished before it stopped, with
 * failedJobs the jobs it did not.
 */
export type CopyResult = ResultBase &
  LocksNote & {
    /** Jobs this pod copied. */
    copied: number;
    /** The latest jobs copied (at most 20; the job events keep all). */
    copiedJobs: string[];
    /** On failure: the jobs not copied (at most 20). */
    failedJobs?: string[];
    bytes: number;
    /** With a plan: jobs selected for this pod, those left beyond its limit, and every job's state before it copied. */
    selected?: number;
    remaining?: number;
    counts?: Record<JobCopyState, number>;
    /** Jobs forgotten on the target to be copied again. */
    recopied?: number;
    /** Damaged packs salvaged on the target before a Bad job was copied again (restic repair packs). */
    repairedPacks?: string[];
    /** The newest valid source job against the newest job the target holds after this pod. */
    lagSeconds?: number;
    /** Jobs copied since the run started, by every pod of the run (from the job events). */
    runCopied?: number;
  };

/** A promotion check: the primary's jobs the candidate lacks that someone still needs. */
export type PlanResult = ResultBase & {
  notCopied: number;
  /** Some of them (at most 10). */
  sample: string[];
  /** The downstream copies that need them. */
  neededBy: string[];
  downstreamUnread?: string[];
};

export type AgeResult = ResultBase &
  LocksNote & {
    jobs: number;
    aged: number;
    agedBytes: number;
    /** At most 20. */
    agedJobs: string[];
    byReason: RetentionSummary["byReason"];
    breaker: { stop: boolean; share: number; message: string };
    /** Downstream copies that could not be read (so they held every job). */
    downstreamUnread?: string[];
    dryRun?: boolean;
    reclaimedBytes?: number;
    storedBytes?: number;
  };

/** A snapcopy pod's result. */
export type SnapCopyResult = ResultBase &
  LocksNote & {
    /** The restic snapshot on the target (written now, or found there). */
    snapshotId?: string;
    /** The copy was on the target already (its uid tag): nothing was written. */
    already?: boolean;
    /** Bytes of the snapshot's files, and the new data this copy added to the repository. */
    bytes?: number;
    added?: number;
    /** The previous copy of the same PVC (same SnapVault) that restic used as parent; absent: restic chose its own. */
    parent?: string;
    /** The task's time, from start to the snapshot written. */
    seconds?: number;
    /**
     * On failure: the mounted snapshot could not be read (kind SourceUnreadable: the path is missing, not a folder, or
     * restic could not read some of its files and the incomplete snapshot was forgotten). The source's fault: it costs
     * the snapshot an attempt. Absent on every other failure (destination faults, retried without costing one).
     */
    sourceFault?: boolean;
    /** With sourceFault from restic: the first paths it could not read (at most 10). */
    unreadable?: string[];
    /**
     * An incomplete snapshot this attempt wrote and could not forget (the repository stayed locked): the next attempt
     * forgets it before it copies (its failed job event disowns it; docs/job-metadata.md).
     */
    partialSnapshot?: string;
  };

/** A backupcopy pod's result: a snapcopy result with the job it became. */
export type BackupCopyResult = SnapCopyResult & {
  /** The job's type (policy/backupjobtype.ts), and why. */
  type?: "full" | "incremental" | "differential";
  typeReason?: string;
  /** The job's status: completedWithErrors when restic could not read some files (their paths in `unreadable`). */
  status?: "completed" | "completedWithErrors";
  /** The job id of restic's parent (absent for a full). */
  parentJob?: string;
};

export type VerifyResult = ResultBase &
  LocksNote & {
    /** Jobs the run read (selected by the rules, or named). */
    jobs?: number;
    /** Jobs that passed. */
    verified: number;
    /** Jobs that failed. */
    failed?: number;
    /** Bytes of the jobs read, as backed up. */
    bytes?: number;
    /** At most 20. */
    failedJobs?: string[];
  };

/**
 * A list pod's result. The listing itself is on its log, one JSON line per job (`msg: "job"`), per job event record
 * (`msg: "jobevents"`) and per run record (`msg: "run"`); the counts let a reader prove it read every line.
 */
export type ListResult = ResultBase & { jobs: number; events: number; runs: number; repositoryId: string };

/** One job as a list pod prints it (a catalog entry; `snap` for a VolumeSnapshot's copy). */
export type ListedJob = { msg: "job" } & Omit<CatalogEntry, "tagged" | "originalId"> & { originalId?: string; snap?: true };

/** One job's copy and verification record on the copy, as a list pod prints it. */
export type ListedJobEvents = { msg: "jobevents"; jobId: string; lastCopied?: string; partial?: true; bad?: true };

export type RestoreResult = ResultBase & {
  snapshotId?: string;
  /** Where the files went, inside the claim. */
  path?: string;
  files?: number;
  bytes?: number;
  seconds?: number;
};

export type TaskResults = {
  probe: ProbeResult;
  init: InitResult;
  scan: ScanResult;
  copy: CopyResult;
  plan: PlanResult;
  age: AgeResult;
  verify: VerifyResult;
  snapcopy: SnapCopyResult;
  backupcopy: BackupCopyResult;
  list: ListResult;
  restore: RestoreResult;
};

/** A result as the termination message holds it: the task's fields and its name. */
export type ResultOf<T extends AgentTask> = TaskResults[T] & { task: T };

/** A finished MediaAgent pod as the operator reads it: the result, or what the pod says of itself without one. */
export interface AgentOutcome<D = Record<string, unknown>> {
  ok: boolean;
  message: string;
  /** When the pod ended. */
  at?: string;
  /** The agent's result fields; empty when the agent wrote none (killed, crashed). */
  data: Partial<D>;
}
