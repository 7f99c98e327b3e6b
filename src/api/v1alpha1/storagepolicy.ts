import { type Static, Type } from "@sinclair/typebox";
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

export const Operations = ["AuxCopy", "DataAging", "SnapCopy", "BackupCopy", "All"] as const;

export const OperationWindow = Obj(
  {
    name: Str("Name of the window, unique in the policy.", { minLength: 1, maxLength: 63 }),
    operations: Type.Array(Enum(Operations, "An operation the window blocks."), {
      description: "Operations that must not start inside the window.",
      minItems: 1,
      maxItems: 5,
      "x-kubernetes-list-type": "set",
    }),
    days: Type.Array(Weekday("A day of the week."), {
      description: "Days on which the window applies. Default: every day.",
      maxItems: 7,
      "x-kubernetes-list-type": "set",
    }),
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
    deviceStreams: Type.Optional(
      Int("Most concurrent streams each copy of the policy supports. Default: 50.", { minimum: 1, maximum: 1000, default: 50 }),
    ),
    timeZone: Type.Optional(
      Str("IANA time zone for windows, schedules and calendars, for example Europe/Paris. Default: UTC.", { default: "UTC", minLength: 1 }),
    ),
    auxCopySchedule: Type.Optional(
      Obj(
        {
          enabled: Type.Optional(Bool("Run automatic aux copies. Default: true.", { default: true })),
          every: Type.Optional(Duration("Interval between automatic aux copies. Default: 30m.", { default: "30m" })),
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
    primaryRepository: Type.Optional(Str("Where new backups go: the primary copy's restic repository.")),
    clientSecret: Type.Optional(Str("Name of the generated Secret that holds a restic client's environment for the primary copy.")),
    lastAuxCopyTime: Type.Optional(Str("When the last automatic aux copy started.")),
    lastDataAgingTime: Type.Optional(Str("When data aging last ran.")),
  },
  "Observed state of the policy.",
);

export type StoragePolicySpec = Static<typeof StoragePolicySpec>;
export type StoragePolicyStatus = Static<typeof StoragePolicyStatus>;
