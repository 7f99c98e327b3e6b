import { type Static, Type } from "@sinclair/typebox";
import { JobStates } from "./auxcopyjob.ts";
import {
  Bool,
  Conditions,
  DateOnly,
  Duration,
  Enum,
  Int,
  Name,
  Obj,
  ObservedGeneration,
  Str,
  TimeOfDay,
  Weekday,
  cel,
} from "./schema-helpers.ts";

export const Operations = ["AuxCopy", "DataAging", "DataVerification", "SnapCopy", "BackupCopy", "All"] as const;

export const OperationWindow = Obj(
  {
    name: Str("Name of the window, unique in the policy.", { minLength: 1, maxLength: 63 }),
    operations: Type.Array(Enum(Operations, "An operation the window blocks."), {
      description: "Operations that must not start inside the window.",
      minItems: 1,
      maxItems: 5,
      "x-kubernetes-list-type": "set",
    }),
    days: Type.Optional(
      Type.Array(Weekday("A day of the week."), {
        description: "Days on which the window applies; absent or empty: every day.",
        maxItems: 7,
        "x-kubernetes-list-type": "set",
        default: [],
      }),
    ),
    start: TimeOfDay("Start of the do-not-run interval, HH:MM in the policy's time zone."),
    end: TimeOfDay("End of the do-not-run interval, HH:MM. An end earlier than the start runs past midnight."),
    from: Type.Optional(DateOnly("First date on which the window applies.")),
    until: Type.Optional(DateOnly("Last date on which the window applies.")),
    doNotSubmitJob: Type.Optional(
      Bool("Skip scheduled jobs that fall in the window instead of queueing them; jobs created by hand still queue.", { default: false }),
    ),
    enabled: Type.Optional(Bool("Whether the window is in force. Default: true.", { default: true })),
  },
  "A do-not-run interval (blackout window): jobs that would start inside it are Queued until it ends.",
  cel(
    { rule: "self.start != self.end", message: "a window's start and end must differ" },
    {
      rule: "!has(self.from) || !has(self.until) || self.from <= self.until",
      message: "a window's from date must not be after its until date",
    },
  ),
);

export const StoragePolicySpec = Obj(
  {
    primaryCopy: Name("Name of the PolicyCopy that receives new backups (the primary copy). Changing it promotes another copy."),
    forcePromotionTo: Type.Optional(
      Name(
        "Promote to this copy even when jobs of the current primary are not on it yet, or the current primary cannot be read. Applies only while spec.primaryCopy names the same copy. The jobs not copied stay restorable only from the old primary.",
      ),
    ),
    deviceStreams: Type.Optional(
      Int("Most concurrent streams each copy of the policy supports. Default: 50.", { minimum: 1, maximum: 1000, default: 50 }),
    ),
    timeZone: Type.Optional(
      Str("IANA time zone for windows, schedules and calendars, for example Europe/Paris. Default: UTC.", {
        default: "UTC",
        minLength: 1,
        maxLength: 64,
        pattern: "^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$",
      }),
    ),
    auxCopySchedule: Type.Optional(
      Obj(
        {
          enabled: Type.Optional(Bool("Run automatic aux copies. Default: true.", { default: true })),
          every: Type.Optional(
            Duration("Interval between automatic aux copies. Default: 30m.", { min: "1m", max: "168h" }, { default: "30m" }),
          ),
          continuous: Type.Optional(
            Bool(
              "Also start an automatic aux copy as soon as a scan finds a job on a source copy newer than the last run, instead of waiting for the interval (scalable resource allocation's continuous copying). Default: true.",
              { default: true },
            ),
          ),
          successfulJobsHistoryLimit: Type.Optional(
            Int("Completed automatic AuxCopyJobs to keep. Default: 3.", { minimum: 0, maximum: 100, default: 3 }),
          ),
          failedJobsHistoryLimit: Type.Optional(
            Int("Failed, killed or partly failed automatic AuxCopyJobs to keep. Default: 1.", { minimum: 0, maximum: 100, default: 1 }),
          ),
        },
        "The automatic aux copy for every active secondary copy.",
        { default: {} },
      ),
    ),
    dataAging: Type.Optional(
      Obj(
        {
          enabled: Type.Optional(Bool("Run data aging for the policy's copies. Default: true.", { default: true })),
          at: Type.Optional(
            TimeOfDay("Daily time of the data aging run, in the policy's time zone. Default: 12:00.", { default: "12:00" }),
          ),
          maxAgedShare: Type.Optional(
            Int("Percent of a copy's jobs one run may age before it stops and asks for confirmation (a condition). Default: 50.", {
              minimum: 1,
              maximum: 100,
              default: 50,
            }),
          ),
        },
        "When data aging runs.",
        { default: {} },
      ),
    ),
    operationWindows: Type.Optional(
      Type.Array(OperationWindow, {
        description: "Blackout windows of the policy.",
        maxItems: 32,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
      }),
    ),
    conflictingJobs: Type.Optional(
      Enum(
        ["Queue", "Skip"] as const,
        "What a new aux copy job does while another one runs for an overlapping set of copies. Default: Queue.",
        {
          default: "Queue",
        },
      ),
    ),
  },
  "A storage policy: an ordered set of copies (PolicyCopy objects) of the same backups.",
);

const CopySummary = Obj(
  {
    name: Str("Name of the PolicyCopy."),
    copyType: Str("Synchronous or Selective."),
    precedence: Int("Restore precedence."),
    active: Bool("Whether the copy takes part in aux copies."),
    primary: Bool("Whether this is the primary copy."),
    ready: Bool("Whether the copy is Ready."),
    jobs: Type.Optional(Int("Valid jobs on the copy, as of its latest scan.")),
    backlog: Type.Optional(Int("Jobs selected for the copy and not copied yet, as of the latest aux copy that reached it.")),
    jobStates: Type.Optional(JobStates),
    lagSeconds: Type.Optional(Int("How far the copy's newest job is behind its source's newest valid job, as of the latest aux copy.")),
    lastCopyTime: Type.Optional(Str("When an aux copy last completed for this copy.")),
  },
  "One copy of the policy.",
);

export const StoragePolicyStatus = Obj(
  {
    observedGeneration: Type.Optional(ObservedGeneration),
    conditions: Type.Optional(Conditions),
    copies: Type.Optional(Type.Array(CopySummary, { description: "The policy's copies, by precedence.", maxItems: 64 })),
    copyCount: Type.Optional(Int("Number of copies.")),
    primaryCopy: Type.Optional(
      Str(
        "The primary copy in force. It differs from spec.primaryCopy while a promotion waits or is refused (see the Promotion condition).",
      ),
    ),
    promotion: Type.Optional(
      Obj(
        {
          phase: Enum(["Checking", "Waiting", "Refused"] as const, "Where the pending promotion request stands."),
          to: Str("The copy spec.primaryCopy asks to promote."),
          checks: Type.Optional(Int("Check pods started for this request.")),
          lastCheck: Type.Optional(
            Obj(
              {
                ok: Bool("Whether the check could read both repositories."),
                notCopied: Type.Optional(Int("Jobs of the current primary the candidate does not have yet.")),
                sample: Type.Optional(Type.Array(Str("A job id."), { description: "Some of those jobs (at most 10).", maxItems: 10 })),
                message: Type.Optional(Str("Why the check failed.")),
                at: Str("When the check ran."),
              },
              "The latest count of the current primary's jobs not yet copied to the candidate.",
            ),
          ),
          message: Type.Optional(Str("What the promotion waits for, or why it is refused.")),
        },
        "A promotion requested in spec.primaryCopy and not carried out yet; absent when none is pending.",
      ),
    ),
    lastPromotion: Type.Optional(
      Obj(
        {
          from: Str("The primary before the promotion."),
          to: Str("The copy promoted."),
          time: Str("When the promotion took effect."),
          forced: Bool("Whether spec.forcePromotionTo was needed."),
          notCopied: Type.Optional(Int("Jobs of the old primary not on the new one when it took effect (0 unless forced).")),
          fromPrecedence: Type.Optional(Int("The precedence the promoted copy had before; the old primary takes it.")),
        },
        "The latest promotion carried out. Copies that named the old primary as sourceCopy are filled from the new one.",
      ),
    ),
    primaryRepository: Type.Optional(Str("Where new backups go: the primary copy's restic repository.")),
    clientSecret: Type.Optional(Str("Name of the generated Secret that holds a restic client's environment for the primary copy.")),
    lastAuxCopyTime: Type.Optional(Str("When the last automatic aux copy started.")),
    lastDataAgingTime: Type.Optional(Str("When data aging last ran.")),
    mediaAgentImage: Type.Optional(
      Str("The image of the operator's MediaAgent pods: `kubectl auxo` starts its listing and restore pods from it."),
    ),
  },
  "Observed state of the policy.",
);

export type StoragePolicySpec = Static<typeof StoragePolicySpec>;
export type StoragePolicyStatus = Static<typeof StoragePolicyStatus>;
