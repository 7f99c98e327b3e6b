import { type Static, Type } from "@sinclair/typebox";
import { Bool, Conditions, DateTime, Duration, Enum, Int, Name, Obj, ObservedGeneration, LabelMap, Str, cel } from "./schema-helpers.ts";

export const AuxCopyPhases = [
  "Pending",
  "Queued",
  "Waiting",
  "Running",
  "Suspended",
  "Completed",
  "CompletedWithErrors",
  "Failed",
  "Killed",
] as const;

export const AuxCopyJobSpec = Obj(
  {
    storagePolicy: Name(
      "The StoragePolicy whose copies this job fills. Cannot be changed.",
      cel({ rule: "self == oldSelf", message: "storagePolicy cannot be changed" }),
    ),
    copies: Type.Optional(
      Type.Array(Name("A secondary copy of the policy."), {
        description: "Secondary copies to fill. Default: every active secondary copy of the policy.",
        maxItems: 64,
        "x-kubernetes-list-type": "set",
      }),
    ),
    streams: Type.Optional(
      Int("Most streams this job uses. Default: as many as the policy, libraries and copies allow.", { minimum: 1, maximum: 1000 }),
    ),
    scalableResourceAllocation: Type.Optional(
      Bool("Share streams across copies and take backups that finish while the job runs. Default: true.", { default: true }),
    ),
    skipVerificationFailedJobs: Type.Optional(
      Bool("Do not copy jobs that failed data verification on the source. Default: false.", { default: false }),
    ),
    doNotPickNewBackups: Type.Optional(Bool("Copy only what was eligible when the job started. Default: false.", { default: false })),
    useMostRecentFull: Type.Optional(
      Bool("Send the most recent full of each subclient to selective copies. Default: false.", { default: false }),
    ),
    jobLimit: Type.Optional(
      Int("Most source jobs this run copies; a follow-up job picks up the rest. Default: 1000.", {
        minimum: 1,
        maximum: 100000,
        default: 1000,
      }),
    ),
    maxRunningTime: Type.Optional(
      Duration(
        "Total running time; past it a job that is not Running is killed. Default: 6h.",
        { min: "1m", max: "168h" },
        { default: "6h" },
      ),
    ),
    killWhenMaxRunningTimeExpires: Type.Optional(
      Bool("Also kill a Running job when maxRunningTime expires. Default: false.", { default: false }),
    ),
    mediaAgent: Type.Optional(
      Obj(
        {
          from: Type.Optional(
            Enum(
              ["Target", "Source"] as const,
              "Whose mediaAgent settings (node selector, tolerations, resources, priority class) place the copy pods: each target copy's, or its source copy's (the MediaAgent that reads). Default: Target.",
              { default: "Target" },
            ),
          ),
          nodeSelector: Type.Optional(
            LabelMap("Added to the chosen node selector, for example kubernetes.io/hostname of one MediaAgent node."),
          ),
        },
        "Where the copy pods run (Commvault's Source MediaAgent). Default: by each target copy's mediaAgent settings.",
      ),
    ),
    suspend: Type.Optional(Bool("Suspend the job (running MediaAgent pods stop; progress is kept). Default: false.", { default: false })),
    cancel: Type.Optional(Bool("Kill the job. Cannot be undone. Default: false.", { default: false })),
  },
  "One run of an auxiliary copy: copies finished backup jobs from their source copies to secondary copies.",
  cel({ rule: "!oldSelf.cancel || self.cancel", message: "a cancelled job cannot be un-cancelled; create a new AuxCopyJob" }),
);

/** Source jobs by their state on a copy, as the copy pod's selection saw them. */
export const JobStates = Obj(
  {
    ToBeCopied: Int("Eligible and not copied yet."),
    PartiallyCopied: Int("Eligible; the latest attempt to copy it failed."),
    Available: Int("On the copy."),
    DoNotCopy: Int("Excluded by a DoNotCopy override."),
    Bad: Int("Marked bad, or skipped for failed verification."),
  },
  "Valid source jobs by their state on the copy, when the run looked (selective copies leave out the jobs their rules do not take).",
);

const CopyProgress = Obj(
  {
    name: Str("The secondary copy."),
    source: Type.Optional(Str("Its source copy.")),
    jobsSelected: Type.Optional(Int("Jobs selected for copying.")),
    jobsCopied: Type.Optional(Int("Jobs copied.")),
    jobsFailed: Type.Optional(Int("Jobs that could not be copied.")),
    jobsRemaining: Type.Optional(Int("Jobs left for a follow-up run.")),
    bytesCopied: Type.Optional(Int("Bytes copied.")),
    bytesTotal: Type.Optional(Int("Bytes of the jobs selected (as backed up).")),
    currentJob: Type.Optional(Str("The job being copied now.")),
    throughput: Type.Optional(Int("Bytes per second so far.")),
    etaSeconds: Type.Optional(Int("Estimated seconds to go.")),
    queuePosition: Type.Optional(Int("While waiting for a stream: the place in the namespace's queue.")),
    jobStates: Type.Optional(JobStates),
    lagSeconds: Type.Optional(Int("After the latest pod: how far the copy's newest job is behind the newest valid job of its source.")),
    attempts: Type.Optional(Int("Copy pods started for this copy in the current pass (a killed or failed one is retried with back-off).")),
    pass: Type.Optional(
      Int(
        "Copy pass: with scalable resource allocation a pass that copied jobs is followed by one that takes jobs that arrived meanwhile.",
      ),
    ),
    settledJobsCopied: Type.Optional(Int("Jobs copied by this copy's pods that have ended.")),
    repairedPacks: Type.Optional(
      Int("Damaged packs salvaged on this copy (restic repair packs) before Bad jobs were copied again (Recopy)."),
    ),
    settledBytesCopied: Type.Optional(Int("Bytes copied by this copy's pods that have ended.")),
    nextAttemptTime: Type.Optional(Str("When the next attempt starts, while retrying.")),
    lockWaits: Type.Optional(
      Int("Attempts that found the repository locked by another process (waited for, not counted as failures).", { minimum: 0 }),
    ),
    startTime: Type.Optional(Str("When copying to this copy started.")),
    completionTime: Type.Optional(Str("When this copy's part ended.")),
    phase: Type.Optional(
      Str(
        "Phase of this copy's part of the job: Pending, Queued, Waiting, Running, Retrying, Completed, Failed; Suspended or Killed with the job.",
      ),
    ),
    reason: Type.Optional(
      Str(
        "Why the part waits, retries or failed, in one word: LockHeld, PodRejected, PodNotScheduled, RepositoryShared, RepositoryChanged, or the MediaAgent's error kind (Unreachable, CorruptData, RepositoryMismatch, ...).",
      ),
    ),
    message: Type.Optional(Str("Details.")),
  },
  "Progress of one target copy.",
);

const HistoryEntry = Obj(
  {
    jobId: Str("The backup job."),
    copy: Str("The target copy."),
    result: Enum(["Copied", "Skipped", "Failed"] as const, "What happened to it."),
    time: DateTime("When."),
    message: Type.Optional(Str("Details.")),
  },
  "One backup job this run handled.",
);

export const AuxCopyJobStatus = Obj(
  {
    observedGeneration: Type.Optional(ObservedGeneration),
    conditions: Type.Optional(Conditions),
    phase: Type.Optional(Enum(AuxCopyPhases, "Lifecycle phase of the job.")),
    reason: Type.Optional(Str("Why the job is in its phase (window, conflict, no streams, ...).")),
    message: Type.Optional(Str("Details.")),
    startTime: Type.Optional(DateTime("When the job started running.")),
    completionTime: Type.Optional(DateTime("When the job ended.")),
    copies: Type.Optional(Type.Array(CopyProgress, { description: "Per-copy progress.", maxItems: 64 })),
    jobsSelected: Type.Optional(Int("Jobs selected across the copies.")),
    jobsCopied: Type.Optional(Int("Jobs copied across the copies.")),
    bytesCopied: Type.Optional(Int("Bytes copied across the copies.")),
    progress: Type.Optional(Str("Copied of selected jobs, for kubectl get.")),
    history: Type.Optional(
      Type.Array(HistoryEntry, {
        description:
          "The latest jobs this run copied or failed to copy, newest last (at most 100; the job events beside each repository keep all).",
        maxItems: 100,
      }),
    ),
    followUpJob: Type.Optional(Str("The AuxCopyJob created for jobs beyond jobLimit.")),
  },
  "Observed state of the aux copy job.",
);

export type AuxCopyJobSpec = Static<typeof AuxCopyJobSpec>;
export type AuxCopyJobStatus = Static<typeof AuxCopyJobStatus>;
