import { type Static, Type } from "@sinclair/typebox";
import {
  Bool,
  Conditions,
  DateOnly,
  Duration,
  DateTime,
  Enum,
  Int,
  Name,
  Obj,
  ObservedGeneration,
  LabelMap,
  RepositoryPath,
  Resources,
  SecretKeyRef,
  Str,
  Toleration,
  TimeOfDay,
  Weekday,
  cel,
} from "./schema-helpers.ts";

export const Periods = ["AllFulls", "Hourly", "Daily", "Weekly", "Monthly", "Quarterly", "HalfYearly", "Yearly"] as const;
export const Months = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
] as const;

const Calendar = Obj(
  {
    weekStartsOn: Type.Optional(Weekday("First day of a week. Default: Friday.", { default: "Friday" })),
    monthStartsOn: Type.Optional(Int("Day of the month on which a month starts. Default: 1.", { minimum: 1, maximum: 28, default: 1 })),
    yearStartsOn: Type.Optional(
      Enum(Months, "First month of a year (quarters and half-years follow). Default: January.", { default: "January" }),
    ),
    dayStartsAt: Type.Optional(TimeOfDay("Time at which a day starts. Default: 00:00.", { default: "00:00" })),
  },
  "How periods are cut: weeks, months, quarters, half-years and years.",
  { default: {} },
);

export const ExtendedRule = Obj(
  {
    period: Enum(
      Periods,
      "Which fulls the rule keeps: all fulls, or one full per hour block, day, week, month, quarter, half-year or year.",
    ),
    everyHours: Type.Optional(Int("For Hourly: the size of the hour block. Default: 1.", { minimum: 1, maximum: 24, default: 1 })),
    keepDays: Int("How long the kept fulls stay, in days; -1 keeps them forever. Must exceed the basic retention days.", {
      minimum: -1,
      maximum: 36500,
    }),
    graceDays: Type.Optional(
      Int("Days after a period ends in which a full may still count for it. Default: 0.", { minimum: 0, maximum: 365, default: 0 }),
    ),
    select: Type.Optional(
      Enum(["First", "Last"] as const, "Keep the first or the last full of each period. Default: Last.", { default: "Last" }),
    ),
  },
  "An extended retention rule: keeps selected fulls longer than basic retention.",
  cel({ rule: "self.keepDays != 0", message: "keepDays must be positive, or -1 to keep forever" }),
);

export const Retention = Obj(
  {
    enableDataAging: Type.Optional(
      Bool("Age data on this copy. When false nothing on the copy is ever deleted. Default: true.", { default: true }),
    ),
    days: Type.Optional(
      Int("Basic retention: every job of a cycle must be older than this many days before the cycle ages; -1 keeps forever. Default: 30.", {
        minimum: -1,
        maximum: 36500,
        default: 30,
      }),
    ),
    cycles: Type.Optional(
      Int("Basic retention: a cycle ages only when more than this many newer complete cycles exist. Default: 1.", {
        minimum: 0,
        maximum: 1000,
        default: 1,
      }),
    ),
    spool: Type.Optional(
      Bool("Spool copy: keep no retention, delete each job once every copy that depends on this one has it. Default: false.", {
        default: false,
      }),
    ),
    doNotRetainIntermediateIncrementals: Type.Optional(
      Bool("Drop incrementals and differentials that come before a newer differential (days still apply). Default: false.", {
        default: false,
      }),
    ),
    extended: Type.Optional(Type.Array(ExtendedRule, { description: "Up to 3 extended retention rules.", maxItems: 3 })),
    confirmMassAgingUntil: Type.Optional(
      DateTime(
        "After the mass-deletion breaker stopped a data aging run: runs before this time may age more than the policy's dataAging.maxAgedShare. Set it to confirm that the retention settings are meant.",
      ),
    ),
    ignoreCompletedWithErrorsForExtendedRetention: Type.Optional(
      Bool("Let fulls that completed with errors be kept by extended rules. Default: false.", { default: false }),
    ),
    calendar: Type.Optional(Calendar),
  },
  "How long this copy keeps jobs. Both days and cycles must be exceeded before a cycle ages.",
  {
    default: {},
    ...cel(
      {
        rule: "!has(self.extended) || self.extended.all(r, r.keepDays == -1 || (self.days != -1 && r.keepDays > self.days))",
        message: "extended retention must keep fulls longer than basic retention: keepDays must exceed days (or be -1)",
      },
      {
        rule: "!(self.spool && has(self.extended) && size(self.extended) > 0)",
        message: "a spool copy keeps nothing, so it cannot have extended retention rules",
      },
    ),
  },
);

export const Selection = Obj(
  {
    mode: Type.Optional(
      Enum(
        ["Automatic", "Manual"] as const,
        "Automatic selects fulls by frequency; Manual copies only jobs picked in jobOverrides. Default: Automatic.",
        { default: "Automatic" },
      ),
    ),
    frequency: Type.Optional(Enum([...Periods, "Advanced"] as const, "Which fulls to copy. Default: AllFulls.", { default: "AllFulls" })),
    everyHours: Type.Optional(Int("For Hourly: size of the hour block. Default: 1.", { minimum: 1, maximum: 24, default: 1 })),
    full: Type.Optional(
      Enum(
        ["First", "Last", "LastWait"] as const,
        "Copy the first or the last full of each period; LastWait waits until the period has closed. Default: Last.",
        { default: "Last" },
      ),
    ),
    advanced: Type.Optional(
      Obj(
        {
          every: Int("Copy one full every this many units.", { minimum: 1, maximum: 1000 }),
          unit: Enum(["Cycles", "Days", "Weeks", "Months"] as const, "Unit of every."),
        },
        "For Advanced: every n cycles, days, weeks or months.",
      ),
    ),
    calendar: Type.Optional(Calendar),
  },
  "Selective copy rules: which full backups the copy takes.",
  cel({
    rule: "self.frequency != 'Advanced' || has(self.advanced)",
    message: "frequency Advanced needs the advanced rule (every and unit)",
  }),
);

export const JobOverride = Obj(
  {
    jobId: Str("Job id (the auxo.dev job id tag, or the restic snapshot id).", { minLength: 1, maxLength: 128 }),
    action: Enum(
      ["PickForCopy", "Recopy", "DoNotCopy", "MarkBad", "RetainUntil", "RetainForever", "DoNotRetain"] as const,
      "What to do with the job on this copy.",
    ),
    until: Type.Optional(DateOnly("For RetainUntil: the date until which the job is kept.")),
    at: Type.Optional(
      DateTime(
        "For Recopy: when it was asked. The job is copied again once, by the first aux copy after this time, even if it is on the copy; a later time asks again.",
      ),
    ),
  },
  "A manual override for one job on this copy.",
  cel(
    { rule: "(self.action == 'RetainUntil') == has(self.until)", message: "until is required for RetainUntil and allowed only there" },
    {
      rule: "(self.action == 'Recopy') == has(self.at)",
      message: "at (the time of the request) is required for Recopy and allowed only there",
    },
  ),
);

export const PolicyCopySpec = Obj(
  {
    storagePolicy: Name(
      "The StoragePolicy this copy belongs to. Cannot be changed.",
      cel({ rule: "self == oldSelf", message: "storagePolicy cannot be changed; create a new copy instead" }),
    ),
    library: Name("The Library that holds this copy's repository."),
    copyType: Type.Optional(
      Enum(
        ["Synchronous", "Selective"] as const,
        "Synchronous copies take every job of their source; Selective copies take chosen fulls. Default: Synchronous.",
        { default: "Synchronous" },
      ),
    ),
    sourceCopy: Type.Optional(Name("The copy this copy is filled from. Default: the policy's primary copy.")),
    precedence: Type.Optional(
      Int("Restore precedence: lower is tried first. Default: assigned in creation order.", { minimum: 1, maximum: 1000 }),
    ),
    active: Type.Optional(
      Bool("Inactive copies take no aux copies (but still hold source data, see data aging). Default: true.", { default: true }),
    ),
    repositoryPath: Type.Optional(RepositoryPath("Repository location inside the library. Default: <namespace>/<policy>/<copy>.")),
    backups: Type.Optional(
      Obj(
        {
          mode: Enum(["All", "OnAndAfter"] as const, "Take all backups of the source, or only those that started on or after date."),
          date: Type.Optional(DateOnly("For OnAndAfter: the first day whose backups the copy takes.")),
        },
        "Which existing backups a new secondary copy takes. Required when its source holds data older than 14 days or more than 10 TB.",
        cel({
          rule: "(self.mode == 'OnAndAfter') == has(self.date)",
          message: "backups.date is required with mode OnAndAfter and not allowed with mode All",
        }),
      ),
    ),
    deferDays: Type.Optional(
      Int("A job becomes eligible for this copy only this many days after it appears on the source. Default: 0.", {
        minimum: 0,
        maximum: 3650,
        default: 0,
      }),
    ),
    selection: Type.Optional(Selection),
    jobOverrides: Type.Optional(
      Type.Array(JobOverride, {
        description: "Manual per-job overrides (pick, recopy, do not copy, mark bad, retention).",
        maxItems: 200,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["jobId"],
      }),
    ),
    retention: Type.Optional(Retention),
    dataVerification: Type.Optional(
      Obj(
        {
          enabled: Type.Optional(Bool("Verify the jobs on this copy by reading them in full. Default: false.", { default: false })),
          scope: Type.Optional(
            Enum(
              ["AllJobs", "AllFulls"] as const,
              "Which jobs are verified: all jobs, or fulls (and synthetic fulls) only. Default: AllJobs.",
              {
                default: "AllJobs",
              },
            ),
          ),
          onOrAfter: Type.Optional(DateOnly("Verify only jobs that started on or after this day (UTC).")),
          reverifyAfterDays: Type.Optional(
            Int("A job whose latest verification is this many days old is verified again; unset: a job is verified once.", {
              minimum: 1,
              maximum: 3650,
            }),
          ),
          afterCopy: Type.Optional(
            Bool("Verify jobs right after they land on this copy (an aux copy, a backup, a backup copy). Default: false.", {
              default: false,
            }),
          ),
          schedule: Type.Optional(
            Obj(
              {
                every: Type.Optional(
                  Duration("Interval between scheduled runs. Default: 24h.", { min: "1m", max: "168h" }, { default: "24h" }),
                ),
                suspend: Type.Optional(
                  Bool("No scheduled runs (runs after a copy and on request still run). Default: false.", { default: false }),
                ),
              },
              "Scheduled verification runs: each verifies the jobs not verified yet and those due again.",
              { default: {} },
            ),
          ),
        },
        "Data verification: MediaAgent pods read every blob of the copy's jobs; a job that fails is Bad on this copy (skipped by aux copies that ask for it, repaired by a Recopy). Nothing is ever deleted for a failed verification.",
        { default: {} },
      ),
    ),
    deduplication: Type.Optional(
      Obj(
        {
          enabled: Type.Optional(
            Bool("Create the repository with its source's chunker parameters, so that copies deduplicate. Default: false.", {
              default: false,
            }),
          ),
        },
        "Deduplication. Chosen at creation: it cannot be turned on or off later.",
        { default: {} },
      ),
    ),
    encryption: Obj(
      { passwordSecret: SecretKeyRef("Secret holding the repository password.", "password") },
      "The repository's encryption key.",
    ),
    mediaAgent: Type.Optional(
      Obj(
        {
          nodeSelector: Type.Optional(LabelMap("Nodes the copy's MediaAgent pods may run on.")),
          tolerations: Type.Optional(Type.Array(Toleration, { description: "Tolerations of the MediaAgent pods.", maxItems: 32 })),
          resources: Type.Optional(Resources("Requests and limits of the MediaAgent container (core/v1 ResourceRequirements).")),
          priorityClassName: Type.Optional(Name("Priority class of the MediaAgent pods (a PriorityClass name).")),
        },
        "Where and how the copy's MediaAgent pods run.",
      ),
    ),
  },
  "One copy of a storage policy: a restic repository on a library, its source, selection and retention.",
  cel(
    { rule: "!has(self.selection) || self.copyType == 'Selective'", message: "selection rules are allowed only on Selective copies" },
    {
      rule: "self.deduplication.enabled == oldSelf.deduplication.enabled",
      message: "deduplication cannot be turned on or off after the copy exists",
    },
  ),
);

const JobCounts = Obj(
  {
    toBeCopied: Type.Optional(Int("Jobs eligible but not yet copied.")),
    partiallyCopied: Type.Optional(Int("Jobs whose copy started but did not finish.")),
    available: Type.Optional(Int("Jobs fully on this copy.")),
    availableWithMissingSnaps: Type.Optional(Int("Snap jobs that lack some snapshots.")),
    doNotCopy: Type.Optional(Int("Jobs excluded from this copy.")),
    bad: Type.Optional(Int("Jobs marked bad.")),
    aged: Type.Optional(Int("Jobs aged by data aging.")),
  },
  "Jobs on this copy, by state.",
);

const VerificationRun = Obj(
  {
    run: Int("Its number."),
    trigger: Type.Optional(Str("Schedule, AfterCopy or Request.")),
    startTime: Type.Optional(Str("When it started.")),
    completionTime: Type.Optional(Str("When it ended.")),
    jobs: Int("Jobs it read."),
    verified: Int("Jobs that passed."),
    failed: Int("Jobs that failed: Bad on this copy."),
    failedJobs: Type.Optional(Type.Array(Str("A job id."), { description: "The jobs that failed (at most 20).", maxItems: 20 })),
    bytes: Type.Optional(Int("Bytes of the jobs read, as backed up.")),
    result: Str("Completed, CompletedWithFailures or Failed (the run itself could not finish)."),
    message: Type.Optional(Str("Why a Failed run failed.")),
  },
  "The latest run that ended.",
);

const VerificationHistory = Type.Array(
  Obj(
    {
      run: Int("Its number."),
      trigger: Type.Optional(Str("Schedule, AfterCopy or Request.")),
      startTime: Type.Optional(Str("When it started.")),
      completionTime: Type.Optional(Str("When it ended.")),
      jobs: Int("Jobs it read."),
      verified: Int("Jobs that passed."),
      failed: Int("Jobs that failed."),
      result: Str("Completed, CompletedWithFailures or Failed."),
    },
    "One ended run.",
  ),
  { description: "The latest runs, newest first (at most 10).", maxItems: 10 },
);

const Recovered = Obj(
  {
    dataAging: Type.Optional(
      Obj(
        {
          runs: Int("Data aging runs recorded."),
          lastRunTime: Type.Optional(Str("When the latest recorded run ended.")),
          lastAgedJobs: Type.Optional(Int("Jobs it aged.")),
          lastAgedBytes: Type.Optional(Int("Their bytes.")),
          lastReclaimedBytes: Type.Optional(Int("Bytes its prune freed.")),
          agedJobs: Type.Optional(Int("Jobs aged by every recorded run.")),
          result: Type.Optional(Str("completed or stopped (the mass-deletion breaker).")),
          message: Type.Optional(Str("The breaker's words, for a stopped run.")),
        },
        "Data aging, from its run records.",
      ),
    ),
    dataVerification: Type.Optional(
      Obj(
        {
          runs: Int("Verification runs recorded."),
          lastRunTime: Type.Optional(Str("When the latest recorded run ended.")),
          verifiedJobs: Type.Optional(Int("Jobs read by every recorded run.")),
          lastRun: Type.Optional(VerificationRun),
          history: Type.Optional(VerificationHistory),
        },
        "Data verification, from its run records.",
      ),
    ),
  },
  "What the run records beside the repository say of data aging and verification, found by a scan while this copy's status has no runs of its own (a rebuilt cluster): those parts start from it (docs/disaster-recovery.md).",
);

export const PolicyCopyStatus = Obj(
  {
    observedGeneration: Type.Optional(ObservedGeneration),
    conditions: Type.Optional(Conditions),
    primary: Type.Optional(Bool("Whether this is the policy's primary copy.")),
    precedence: Type.Optional(Int("Effective restore precedence.")),
    repository: Type.Optional(Str("The restic repository of this copy.")),
    repositoryReady: Type.Optional(Bool("Whether the repository has been initialised (or found) and opens with the copy's password.")),
    repositoryId: Type.Optional(
      Str(
        "The restic repository ID, recorded at init: MediaAgents check it before they write or forget, so a repository swapped in at the location is never written.",
      ),
    ),
    repositoryIdFound: Type.Optional(
      Str(
        "Set when a catalog scan found a repository with another ID at the location than the one recorded: nothing is written to it (RepositoryChanged).",
      ),
    ),
    repositoryLocation: Type.Optional(
      Str(
        "Where the repository is (storage and path, no secrets), recorded at init: a change of library or path needs the repository there to be checked again.",
      ),
    ),
    jobs: Type.Optional(JobCounts),
    bytes: Type.Optional(Int("Bytes stored.")),
    oldestJob: Type.Optional(Str("Start time of the oldest job on the copy.")),
    newestJob: Type.Optional(Str("Start time of the newest job on the copy.")),
    lastScanTime: Type.Optional(Str("When the catalog was last read from the repository.")),
    initFailure: Type.Optional(
      Obj(
        {
          attempts: Int("Failed attempts so far."),
          reason: Str("The engine's error kind (WrongPassword, Unreachable, ...)."),
          message: Str("The last attempt's error, and when the next attempt runs."),
          lastAttemptTime: Str("When the last attempt ended."),
        },
        "Why the repository could not be initialised yet; retried with back-off.",
      ),
    ),
    verification: Type.Optional(
      Obj(
        {
          verified: Type.Optional(Int("Jobs on the copy whose latest verification passed.")),
          failed: Type.Optional(Int("Jobs on the copy whose latest verification failed and that were not copied again since: Bad.")),
          recopied: Type.Optional(Int("Jobs copied again (Recopy) after a failed verification, waiting to be verified again.")),
          failedJobs: Type.Optional(
            Type.Array(Str("A job id."), { description: "Some of the jobs that failed verification (at most 20).", maxItems: 20 }),
          ),
          lastVerificationTime: Type.Optional(Str("When a job of the copy was last verified.")),
        },
        "Data verification results, read from the job metadata beside the repository.",
      ),
    ),
    copyRetries: Type.Optional(Int("Jobs on the copy that needed more than one copy attempt.")),
    dataAging: Type.Optional(
      Obj(
        {
          phase: Type.Optional(Str("Idle, Waiting (a window, a pod on the repository), Running, or Stopped (the mass-deletion breaker).")),
          message: Type.Optional(Str("What the latest or the coming run does or waits for.")),
          runs: Type.Optional(Int("Data aging runs started on this copy.")),
          lastRunTime: Type.Optional(Str("When the latest run ended.")),
          nextRunTime: Type.Optional(Str("When the next run is due (daily at the policy's dataAging.at).")),
          lastAgedJobs: Type.Optional(Int("Jobs the latest run aged.")),
          lastAgedBytes: Type.Optional(Int("Bytes of those jobs, as backed up.")),
          lastReclaimedBytes: Type.Optional(Int("Bytes the latest run's prune freed in the repository.")),
          agedJobs: Type.Optional(Int("Jobs aged on this copy by every run so far.")),
          previewFailures: Type.Optional(Int("Failed preview pods in a row; previews back off (30 s doubling to 30 min).")),
          retryTime: Type.Optional(Str("While Waiting for a lock held by another process: when the run is tried again.")),
          lockedRunTime: Type.Optional(Str("When the latest run found the repository locked by another process.")),
          lastPreviewFailureTime: Type.Optional(Str("When the latest preview pod failed.")),
          preview: Type.Optional(
            Obj(
              {
                at: Str("The run previewed (the next run)."),
                jobs: Int("Jobs that would age then, if nothing changes."),
                bytes: Int("Their bytes, as backed up."),
                breakerWouldStop: Bool("Whether the mass-deletion breaker would stop that run."),
                catalogTime: Type.Optional(Str("The catalog scan the preview was computed from.")),
              },
              "Dry run: what the next data aging run would age.",
            ),
          ),
        },
        "Data aging of this copy.",
      ),
    ),
    dataVerification: Type.Optional(
      Obj(
        {
          phase: Type.Optional(Str("Idle, Waiting (a window, a prune, the library's streams, a lock), Starting or Running.")),
          message: Type.Optional(Str("What the latest or the coming run does or waits for.")),
          runs: Type.Optional(Int("Verification runs started on this copy.")),
          trigger: Type.Optional(Str("What started the latest run: Schedule, AfterCopy or Request.")),
          mode: Type.Optional(Str("new (jobs not verified yet) or due (those and jobs due again).")),
          lastRunStartTime: Type.Optional(Str("When the latest run started.")),
          lastRunTime: Type.Optional(Str("When the latest run ended.")),
          lastScheduledTime: Type.Optional(Str("When the latest scheduled run started.")),
          lastRequest: Type.Optional(Str("The verification-requested annotation the latest requested run answered.")),
          nextRunTime: Type.Optional(Str("When the next scheduled run is due.")),
          newestJobSeen: Type.Optional(Str("The newest job on the copy when the latest run started (afterCopy runs look for newer ones).")),
          retryTime: Type.Optional(Str("While Waiting for a lock held by another process: when the run is tried again.")),
          lockedRunTime: Type.Optional(Str("When the latest run found the repository locked by another process.")),
          verifiedJobs: Type.Optional(Int("Jobs read by every run so far.")),
          progress: Type.Optional(
            Obj(
              {
                jobsDone: Int("Jobs read so far."),
                jobsTotal: Int("Jobs the run reads."),
                job: Type.Optional(Str("The job being read.")),
              },
              "The running run's progress.",
            ),
          ),
          lastRun: Type.Optional(VerificationRun),
          history: Type.Optional(VerificationHistory),
        },
        "Data verification runs on this copy (spec.dataVerification).",
      ),
    ),
    recovered: Type.Optional(Recovered),
    metadataMessage: Type.Optional(Str("Why the job metadata beside the repository could not be read, when it could not.")),
  },
  "Observed state of the copy.",
);

export type PolicyCopySpec = Static<typeof PolicyCopySpec>;
export type PolicyCopyStatus = Static<typeof PolicyCopyStatus>;
