// Retention and data aging of one copy, with Auxo's safety rules on top (docs/retention.md says every rule). Given the
// copy's catalog, its retention spec, the policy's time zone, a clock and facts about the copies that source from
// this one, it says for every job whether it is kept or aged, and why. Pure: no I/O, the clock is injected, calendars
// and time zones through luxon.
//
// Order of the rules: a basic verdict (disabled, infinite, spool, days-only, or days + cycles with whole cycles aging
// together, then intermediate incrementals), then holds that turn "age" into "keep" (a downstream copy still needs
// the job, the last restorable full chain, manual retention, extended retention), then the dependency closure: a
// kept job keeps every job it needs to be restored, so no full ever ages under a kept incremental.
import { DateTime } from "luxon";
import type { CatalogEntry } from "./catalog.ts";
import type { Calendar, OverrideAction, Period } from "./selection.ts";

/** Whether a completed-with-errors full starts a new cycle: yes for file-system-like agents, no for databases. */
export type AgentKind = "FileSystem" | "Database";

/** One extended retention rule (PolicyCopy spec.retention.extended[]). */
export interface ExtendedRetentionRule {
  period: Period;
  everyHours?: number;
  /** Days from the full's start; -1 keeps it forever. */
  keepDays: number;
  graceDays?: number;
  select?: "First" | "Last";
}

/** PolicyCopy spec.retention, plus the fields marked "not in the API" that the rules need. */
export interface RetentionSpec {
  enableDataAging?: boolean;
  days?: number;
  cycles?: number;
  spool?: boolean;
  doNotRetainIntermediateIncrementals?: boolean;
  extended?: readonly ExtendedRetentionRule[];
  ignoreCompletedWithErrorsForExtendedRetention?: boolean;
  calendar?: Calendar;
  /** Not in the API. Days-only retention: cycles are ignored, each job ages by its own age. */
  daysOnly?: boolean;
  /** Not in the API. A full kept by an extended rule keeps its whole cycle (Commvault's ExtendRetainAllJobsInCycle). */
  extendedKeepsCycle?: boolean;
}

/** The part of a PolicyCopy spec.jobOverrides entry that retention reads. */
export interface RetentionOverride {
  jobId: string;
  action: OverrideAction;
  /** For RetainUntil: a date (yyyy-mm-dd) in the policy's time zone; the job is kept through that whole day. */
  until?: string;
}

/** A copy whose source is this copy, as data aging sees it: the jobs it still needs are held here. */
export interface DownstreamCopy {
  name: string;
  /** Default true. Inactive copies hold source data too unless considerInactiveCopies is false. */
  active?: boolean;
  /** Default Synchronous. A selective copy takes only the jobs it selects. */
  copyType?: "Synchronous" | "Selective";
  /**
   * Jobs of this copy it still has to take: To Be Copied and Partially Copied, and jobs it will take later (still in
   * their defer period, or the "last full" of a LastWait period that has not closed).
   */
  needs: ReadonlySet<string>;
  /** Jobs of this copy it already holds (Available). */
  has: ReadonlySet<string>;
  /** Jobs of this copy it will never take (Do Not Copy, Bad, before its backups date). */
  skips?: ReadonlySet<string>;
}

export interface RetentionInput {
  catalog: readonly CatalogEntry[];
  /** PolicyCopy spec.retention (defaults: aging on, 30 days, 1 cycle). */
  retention?: RetentionSpec;
  /** PolicyCopy spec.jobOverrides: RetainForever, RetainUntil and DoNotRetain are read here, MarkBad for restorability. */
  jobOverrides?: readonly RetentionOverride[];
  now: number;
  /** StoragePolicy spec.timeZone: days, calendars and RetainUntil dates are counted in it. Default UTC. */
  timeZone?: string;
  /** The copies that source from this one. */
  downstream?: readonly DownstreamCopy[];
  /** Not in the API (a global setting in Commvault): inactive copies hold source data. Default true. */
  considerInactiveCopies?: boolean;
  /** Not in the API (no catalog tag yet): the agent kind of a job's subclient. Default FileSystem. */
  agentKind?: (job: CatalogEntry) => AgentKind;
  /** Jobs whose latest data verification failed: not restorable, so never "the last restorable full". */
  badJobs?: ReadonlySet<string>;
}

export type KeepReason =
  | "DataAgingDisabled"
  | "InfiniteRetention"
  | "CycleOpen"
  | "CyclesNotExceeded"
  | "DaysNotExceeded"
  | "UnreadableStartTime"
  | "SpoolNoDownstream"
  | "SpoolNotCopied"
  | "DownstreamNeeds"
  | "LastRestorableFull"
  | "RetainForever"
  | "RetainUntil"
  | "ExtendedRetention"
  | "NeededByKeptJob";
export type AgeReason = "RetentionMet" | "DaysOnlyMet" | "IntermediateIncremental" | "SpoolCopied" | "SpoolNotTaken";

export type JobVerdict = {
  jobId: string;
  snapshotId: string;
  client: string;
  subclient: string;
  startTime: string;
  bytes: number;
  /** A human sentence: what rule decided, with the numbers. */
  message: string;
} & ({ action: "keep"; reason: KeepReason } | { action: "age"; reason: AgeReason });

export interface RetentionSummary {
  jobs: number;
  bytes: number;
  agedJobs: number;
  agedBytes: number;
  keptJobs: number;
  keptBytes: number;
  byReason: Partial<Record<KeepReason | AgeReason, number>>;
}

export interface RetentionDecision {
  /** Every job of the catalog, oldest first. */
  verdicts: JobVerdict[];
  /** Job ids that age, oldest first. */
  aged: string[];
  summary: RetentionSummary;
}

const isFullType = (e: CatalogEntry) => e.type === "full" || e.type === "synthfull";
const valid = (e: CatalogEntry) => e.status === "completed" || e.status === "completedWithErrors";
const subclientOf = (e: CatalogEntry) => `${e.client}\u0000${e.subclient}`;
const startOf = (e: CatalogEntry) => Date.parse(e.startTime);
const DAY = 86_400_000;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

// Days are calendar days in the policy's time zone, so a DST change never shifts the hour a job ages.
function plusDays(ms: number, days: number, zone: string): number {
  return DateTime.fromMillis(ms, { zone }).plus({ days }).toMillis();
}
const day = (ms: number, zone: string) => DateTime.fromMillis(ms, { zone }).toISODate() ?? "?";

const Weekdays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const Months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/**
 * When the period holding `ms` starts, under the same cuts as selection's periodKey (same calendar defaults: weeks
 * from Friday, months from day 1, years from January, days from dayStartsAt), so selective copies and extended
 * retention agree on what "the last full of August" is. AllFulls: every instant is its own period.
 */
export function periodStart(ms: number, frequency: Period, calendar: Calendar = {}, timeZone = "UTC", everyHours = 1): number {
  return periodBounds(ms, frequency, calendar, timeZone, everyHours)[0];
}

// Calendar arithmetic on a civil date (no time zone): day overflow rolls into the next month or year.
function civil(year: number, month: number, day: number): [number, number, number] {
  const d = new Date(Date.UTC(year, month - 1, day));
  return [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()];
}

/** The period holding `ms` as [start, end): its start, and the start of the next period. */
export function periodBounds(ms: number, frequency: Period, calendar: Calendar = {}, timeZone = "UTC", everyHours = 1): [number, number] {
  if (frequency === "AllFulls") return [ms, ms + 1];
  const [h, m] = (calendar.dayStartsAt ?? "00:00").split(":").map(Number) as [number, number];
  // A day that starts at 06:00 runs 06:00 to 06:00: shift by the start, cut at local midnight, shift back. Each zoned
  // luxon call costs tens of microseconds, so the rest is plain date arithmetic with one lookup per bound.
  const shift = (h * 60 + m) * 60_000;
  const t = DateTime.fromMillis(ms - shift, { zone: timeZone });
  const at = ([year, month, day]: [number, number, number], hour = 0) => {
    const dt = DateTime.fromObject({ year, month, day, hour }, { zone: timeZone });
    let start = dt.toMillis();
    // When clocks go back the same wall time happens twice, and luxon may pick the later one; a period named by its
    // wall time (as selection's periodKey names it) starts at the first (an hour, or half an hour on Lord Howe, before).
    for (const back of [3_600_000, 1_800_000]) {
      const e = DateTime.fromMillis(start - back, { zone: timeZone });
      if (e.day === dt.day && e.hour === dt.hour && e.minute === dt.minute) {
        start -= back;
        break;
      }
    }
    return start + shift;
  };
  const today: [number, number, number] = [t.year, t.month, t.day];
  switch (frequency) {
    case "Hourly": {
      const block = Math.floor(t.hour / everyHours) * everyHours;
      // The day's last block may be shorter (24 is not always a multiple of everyHours).
      return [at(today, block), block + everyHours >= 24 ? at(civil(t.year, t.month, t.day + 1)) : at(today, block + everyHours)];
    }
    case "Daily":
      return [at(today), at(civil(t.year, t.month, t.day + 1))];
    case "Weekly": {
      const first = Weekdays.indexOf(calendar.weekStartsOn ?? "Friday") + 1; // luxon: Monday = 1
      const back = (t.weekday - first + 7) % 7;
      return [at(civil(t.year, t.month, t.day - back)), at(civil(t.year, t.month, t.day - back + 7))];
    }
    default: {
      const monthStart = calendar.monthStartsOn ?? 1;
      const yearStart = Months.indexOf(calendar.yearStartsOn ?? "January");
      const size = { Monthly: 1, Quarterly: 3, HalfYearly: 6, Yearly: 12 }[frequency];
      // Month index from year 0, counted from the month a day before monthStartsOn belongs to.
      const index = t.year * 12 + t.month - 1 - (t.day < monthStart ? 1 : 0) - yearStart;
      const first = Math.floor(index / size) * size + yearStart;
      const month = (i: number): [number, number, number] => [Math.floor(i / 12), (i % 12) + 1, monthStart];
      return [at(month(first)), at(month(first + size))];
    }
  }
}

/** The next data aging run strictly after `now`, at a daily time of day ("12:00") in the policy's time zone. */
export function nextAgingRun(now: number, at = "12:00", timeZone = "UTC"): number {
  const [h, m] = at.split(":").map(Number) as [number, number];
  const today = DateTime.fromMillis(now, { zone: timeZone }).set({ hour: h, minute: m, second: 0, millisecond: 0 });
  return today.toMillis() > now ? today.toMillis() : today.plus({ days: 1 }).toMillis();
}

interface Job {
  e: CatalogEntry;
  start: number;
  /** The job it needs to be restored (its full, or the previous job of an incremental chain). */
  parent?: Job;
  cycle: Job[];
  intermediate: boolean;
  action: "keep" | "age";
  reason: KeepReason | AgeReason;
  message: string;
}

/**
 * A subclient's jobs as cycles: a full or synthetic full that completed, or completed with errors for a file-system
 * agent, starts a cycle; every later job belongs to it. Jobs before the first full form a leading group of their own
 * (their full is not on this copy). Also links each valid job to the job it depends on.
 */
function cyclesOf(jobs: Job[], kind: (e: CatalogEntry) => AgentKind): Job[][] {
  const cycles: Job[][] = [];
  for (const j of jobs) {
    const starts = isFullType(j.e) && (j.e.status === "completed" || (j.e.status === "completedWithErrors" && kind(j.e) === "FileSystem"));
    const current = cycles.at(-1);
    if (starts || !current) cycles.push([j]);
    else current.push(j);
  }
  for (const cycle of cycles) {
    let lastValid: Job | undefined;
    let lastFull: Job | undefined;
    for (const j of cycle) {
      j.cycle = cycle;
      if (!valid(j.e)) continue; // failed and killed jobs restore nothing and nothing restores from them
      // A differential needs only its full; incrementals and logs need the job before them (conservative for logs).
      if (isFullType(j.e)) lastFull = j;
      else j.parent = j.e.type === "differential" ? lastFull : lastValid;
      lastValid = j;
    }
    // "Do not retain intermediate incrementals": incrementals and differentials before the cycle's newest
    // differential restore only points in time the user chose to drop.
    const lastDiff = cycle.findLastIndex((j) => valid(j.e) && j.e.type === "differential");
    cycle.forEach((j, i) => {
      j.intermediate = i < lastDiff && valid(j.e) && (j.e.type === "incremental" || j.e.type === "differential");
    });
  }
  return cycles;
}

/**
 * The last restorable full of a subclient and everything after it (docs/retention.md, safety rule 2): the newest full
 * that completed and is not bad; failing that, the newest valid one that is not bad. Jobs from there on are never aged.
 */
function lastChain(jobs: Job[], bad: (e: CatalogEntry) => boolean): Job[] {
  const fulls = jobs.filter((j) => isFullType(j.e) && valid(j.e) && !bad(j.e));
  const full = fulls.findLast((j) => j.e.status === "completed") ?? fulls.at(-1);
  return full ? jobs.slice(jobs.indexOf(full)) : [];
}

/** Fulls that extended rules keep now, with the rule's description and until when. */
function extendedHolds(jobs: Job[], spec: RetentionSpec, eligible: (j: Job) => boolean, now: number, zone: string): Map<Job, string> {
  const holds = new Map<Job, string>();
  const candidates = jobs.filter(eligible);
  if (!candidates.length) return holds;
  const firstJob = jobs[0] as Job;
  (spec.extended ?? []).forEach((rule, n) => {
    const every = rule.everyHours ?? 1;
    const bounds = (ms: number) => periodBounds(ms, rule.period, spec.calendar, zone, every);
    // Periods with fulls in them, by start; a job belongs to the period its start time falls in. Candidates are in
    // start order, so each period's bounds are computed once (luxon with a time zone is the cost here).
    const periods = new Map<number, Job[]>();
    let current: [number, number] | undefined;
    for (const c of candidates) {
      if (!current || c.start >= current[1]) current = bounds(c.start);
      const list = periods.get(current[0]);
      if (list) list.push(c);
      else periods.set(current[0], [c]);
    }
    const kept = new Map<Job, string>();
    for (const [p, list] of periods) {
      const chosen = rule.select === "First" ? (list[0] as Job) : (list.at(-1) as Job);
      const label = rule.period === "AllFulls" ? "a full" : `the ${rule.select === "First" ? "first" : "last"} full of its period`;
      kept.set(chosen, label);
      // Grace days: a period with no full (after the subclient's first job) is served by the first full that starts
      // within graceDays after it ends. If any such period precedes this one, the one just before it is such a period.
      const grace = rule.graceDays ?? 0;
      if (!grace || rule.period === "AllFulls") continue;
      const first = list[0] as Job;
      if (!periods.has(bounds(p - 1)[0]) && p > firstJob.start && first.start < plusDays(p, grace, zone))
        kept.set(first, kept.get(first) ?? `the first full after a period without one, within ${plural(grace, "grace day")}`);
    }
    for (const [j, label] of kept) {
      if (holds.has(j)) continue;
      const until = rule.keepDays < 0 ? Number.POSITIVE_INFINITY : plusDays(j.start, rule.keepDays, zone);
      if (now > until) continue;
      const name = rule.period === "Hourly" ? `every ${plural(every, "hour")}` : rule.period;
      holds.set(j, `extended rule ${n + 1} (${name}) keeps ${label} ${until === Infinity ? "forever" : `until ${day(until, zone)}`}`);
    }
  });
  return holds;
}

export function decideRetention(input: RetentionInput): RetentionDecision {
  const spec = input.retention ?? {};
  const zone = input.timeZone ?? "UTC";
  const now = input.now;
  const days = spec.days ?? 30;
  const cyclesToKeep = spec.cycles ?? 1;
  // The API keeps one override per job (a list map keyed by jobId), but should a job have several, every one applies:
  // a later entry must not hide a MarkBad (which moves the last restorable full) or a RetainForever.
  const overrides = new Map<string, RetentionOverride[]>();
  for (const o of input.jobOverrides ?? []) overrides.set(o.jobId, [...(overrides.get(o.jobId) ?? []), o]);
  const has = (e: CatalogEntry, action: OverrideAction) => overrides.get(e.jobId)?.some((o) => o.action === action) ?? false;
  const bad = (e: CatalogEntry) => has(e, "MarkBad") || (input.badJobs?.has(e.jobId) ?? false);
  const considered = (input.downstream ?? []).filter((c) => (c.active ?? true) || (input.considerInactiveCopies ?? true));
  // Calendar days differ from 24-hour days only by the zone's clock changes (DST, rarely a skipped day), so luxon is
  // asked only for jobs within two days of the cutoff.
  const cutoff = now - days * DAY;
  const exceeded = (start: number) =>
    start < cutoff - 2 * DAY ? true : start > cutoff + 2 * DAY ? false : plusDays(start, days, zone) < now;

  const all: Job[] = input.catalog
    .map((e) => ({
      e,
      start: startOf(e),
      cycle: [],
      intermediate: false,
      action: "keep" as const,
      reason: "UnreadableStartTime" as const,
      message: "",
    }))
    .sort((a, b) => (a.start || 0) - (b.start || 0) || a.e.jobId.localeCompare(b.e.jobId) || a.e.snapshotId.localeCompare(b.e.snapshotId));
  const bySubclient = new Map<string, Job[]>();
  for (const j of all) {
    // Without a start time no rule can place the job: keep it, and let it count for nothing (not a newer cycle).
    if (Number.isNaN(j.start)) j.message = `its start time "${j.e.startTime}" cannot be read`;
    else {
      const list = bySubclient.get(subclientOf(j.e));
      if (list) list.push(j);
      else bySubclient.set(subclientOf(j.e), [j]);
    }
  }

  const set = (j: Job, action: "keep" | "age", reason: KeepReason | AgeReason, message: string) => {
    j.action = action;
    j.reason = reason;
    j.message = message;
  };

  for (const jobs of bySubclient.values()) {
    const cycles = cyclesOf(jobs, input.agentKind ?? (() => "FileSystem"));
    // Basic verdict.
    if (spec.enableDataAging === false) {
      for (const j of jobs) set(j, "keep", "DataAgingDisabled", "data aging is off for this copy");
      continue;
    }
    // Infinite retention wins over spool: a contradictory spec keeps data rather than deletes it.
    if (days < 0) {
      for (const j of jobs) set(j, "keep", "InfiniteRetention", "retention days is -1 (infinite)");
      continue;
    }
    if (spec.spool) {
      for (const j of jobs) spoolVerdict(j, considered, set);
    } else if (spec.daysOnly) {
      for (const j of jobs) {
        if (exceeded(j.start)) set(j, "age", "DaysOnlyMet", `started more than ${plural(days, "day")} ago (days-only retention)`);
        else set(j, "keep", "DaysNotExceeded", `started ${plural(days, "day")} ago or less (days-only retention)`);
      }
    } else {
      cycles.forEach((cycle, k) => {
        const newer = cycles.length - 2 - k; // complete cycles newer than this one; the newest cycle is still open
        const newest = Math.max(...cycle.map((j) => j.start));
        const [action, reason, message]: ["keep" | "age", KeepReason | AgeReason, string] =
          k === cycles.length - 1
            ? ["keep", "CycleOpen", "in the newest cycle, which stays open until a newer full exists"]
            : newer < cyclesToKeep
              ? ["keep", "CyclesNotExceeded", `${plural(newer, "newer complete cycle")}; retention keeps ${plural(cyclesToKeep, "cycle")}`]
              : !exceeded(newest)
                ? [
                    "keep",
                    "DaysNotExceeded",
                    `the newest job of its cycle started on ${day(newest, zone)}, not more than ${plural(days, "day")} ago`,
                  ]
                : [
                    "age",
                    "RetentionMet",
                    `its cycle has ${plural(newer, "newer complete cycle")} (retention keeps ${cyclesToKeep}) and every job of it started more than ${plural(days, "day")} ago`,
                  ];
        for (const j of cycle) set(j, action, reason, message);
      });
      if (spec.doNotRetainIntermediateIncrementals)
        for (const j of jobs)
          if (j.action === "keep" && j.intermediate && exceeded(j.start))
            set(j, "age", "IntermediateIncremental", `a newer differential follows it and it started more than ${plural(days, "day")} ago`);
    }

    // Holds: each turns an "age" into a "keep"; the first that applies names the reason.
    const protectedJobs = new Set(lastChain(jobs, bad));
    const extendedEligible = (j: Job) =>
      isFullType(j.e) &&
      (j.e.status === "completed" || (j.e.status === "completedWithErrors" && !!spec.ignoreCompletedWithErrorsForExtendedRetention)) &&
      !bad(j.e) &&
      !has(j.e, "DoNotRetain");
    const extended = extendedHolds(jobs, spec, extendedEligible, now, zone);
    if (spec.extendedKeepsCycle)
      for (const [full, why] of [...extended])
        for (const j of full.cycle) if (!extended.has(j)) extended.set(j, `its full is kept: ${why}`);
    for (const j of jobs) {
      if (j.action !== "age") continue;
      const needed = considered.filter((c) => c.needs.has(j.e.jobId)).map((c) => c.name);
      // Of several RetainUntil dates, the one that keeps the job longest.
      const until = (overrides.get(j.e.jobId) ?? [])
        .filter((o) => o.action === "RetainUntil")
        .map((o) => ({ date: o.until, ms: retainUntil(o.until, zone) }))
        .reduce<{ date?: string; ms: number } | undefined>((a, b) => (a && a.ms >= b.ms ? a : b), undefined);
      if (needed.length) set(j, "keep", "DownstreamNeeds", needsMessage(needed));
      else if (protectedJobs.has(j))
        set(j, "keep", "LastRestorableFull", "part of the newest restorable full of its subclient and the jobs after it");
      else if (has(j.e, "RetainForever")) set(j, "keep", "RetainForever", "kept forever by a RetainForever job override");
      else if (until && now < until.ms)
        set(
          j,
          "keep",
          "RetainUntil",
          `kept by a RetainUntil job override through ${Number.isFinite(until.ms) ? until.date : "an unreadable date"}`,
        );
      else if (extended.has(j)) set(j, "keep", "ExtendedRetention", extended.get(j) as string);
    }

    // Closure, newest first: a kept job keeps the job it depends on, and so on back to its full.
    for (let i = jobs.length - 1; i >= 0; i--) {
      const j = jobs[i] as Job;
      if (j.action === "keep" && j.parent?.action === "age")
        set(j.parent, "keep", "NeededByKeptJob", `job ${j.e.jobId} depends on it and is kept (${j.reason})`);
    }
  }

  const verdicts = all.map(
    (j) =>
      ({
        jobId: j.e.jobId,
        snapshotId: j.e.snapshotId,
        client: j.e.client,
        subclient: j.e.subclient,
        startTime: j.e.startTime,
        bytes: j.e.bytes ?? 0,
        action: j.action,
        reason: j.reason,
        message: j.message,
      }) as JobVerdict,
  );
  const agedVerdicts = verdicts.filter((v) => v.action === "age");
  const sum = (vs: JobVerdict[]) => vs.reduce((s, v) => s + v.bytes, 0);
  const byReason: RetentionSummary["byReason"] = {};
  for (const v of verdicts) byReason[v.reason] = (byReason[v.reason] ?? 0) + 1;
  return {
    verdicts,
    aged: agedVerdicts.map((v) => v.jobId),
    summary: {
      jobs: verdicts.length,
      bytes: sum(verdicts),
      agedJobs: agedVerdicts.length,
      agedBytes: sum(agedVerdicts),
      keptJobs: verdicts.length - agedVerdicts.length,
      keptBytes: sum(verdicts) - sum(agedVerdicts),
      byReason,
    },
  };
}

const needsMessage = (copies: string[]) => `not yet on ${copies.join(", ")}, which still need${copies.length > 1 ? "" : "s"} it`;

/** RetainUntil keeps a job through the whole `until` day; an unreadable date keeps it forever (never delete on bad input). */
function retainUntil(until: string | undefined, zone: string): number {
  const d = until ? DateTime.fromISO(until, { zone }) : undefined;
  return d?.isValid ? d.startOf("day").plus({ days: 1 }).toMillis() : Number.POSITIVE_INFINITY;
}

/**
 * A spool copy keeps no retention: a job ages once every copy that sources from this one is done with it: holds it,
 * will never take it, or (a selective copy) does not select it. Failed and killed jobs are never copied. With no such
 * copy at all, nothing has the data elsewhere, so nothing ages.
 */
function spoolVerdict(
  j: Job,
  copies: readonly DownstreamCopy[],
  set: (j: Job, a: "keep" | "age", r: KeepReason | AgeReason, m: string) => void,
) {
  if (!copies.length) return set(j, "keep", "SpoolNoDownstream", "spool copy with no copy sourcing from it: the job exists nowhere else");
  const id = j.e.jobId;
  const needed = copies.filter((c) => c.needs.has(id)).map((c) => c.name);
  if (needed.length) return set(j, "keep", "DownstreamNeeds", needsMessage(needed));
  const missing = copies.filter(
    (c) => !(c.has.has(id) || c.skips?.has(id) || !valid(j.e) || ((c.copyType ?? "Synchronous") === "Selective" && !c.needs.has(id))),
  );
  if (missing.length) return set(j, "keep", "SpoolNotCopied", `spool copy: not yet on ${missing.map((c) => c.name).join(", ")}`);
  const holders = copies.filter((c) => c.has.has(id)).map((c) => c.name);
  if (holders.length) return set(j, "age", "SpoolCopied", `spool copy: the job is on ${holders.join(", ")}`);
  set(j, "age", "SpoolNotTaken", "spool copy: no copy sourcing from it takes this job");
}

export interface BreakerVerdict {
  stop: boolean;
  reason?: "MassDeletion";
  message: string;
  /** Percent of the copy's jobs this run would delete (spool jobs held by every downstream copy excluded). */
  share: number;
  counted: number;
  total: number;
}

/**
 * The mass-deletion breaker (docs/retention.md, safety rule 4): a run that would age more than `maxSharePercent` of the
 * copy's jobs stops and ages nothing. Jobs a spool ages because every copy after it holds them are not counted:
 * emptying a spool is its normal work, and the data stays on those copies.
 */
export function massDeletionBreaker(decision: RetentionDecision, maxSharePercent: number): BreakerVerdict {
  const total = decision.summary.jobs;
  const counted = decision.verdicts.filter((v) => v.action === "age" && v.reason !== "SpoolCopied").length;
  const share = total ? (counted * 100) / total : 0;
  const pct = `${Math.round(share * 10) / 10}%`;
  if (counted * 100 > maxSharePercent * total)
    return {
      stop: true,
      reason: "MassDeletion",
      share,
      counted,
      total,
      message: `this run would age ${counted} of ${total} jobs (${pct}), more than the ${maxSharePercent}% one run may age: nothing was aged; check the retention settings, then raise the limit for one run to confirm`,
    };
  return {
    stop: false,
    share,
    counted,
    total,
    message: `this run ages ${counted} of ${total} jobs (${pct}), within the ${maxSharePercent}% limit`,
  };
}

export interface AgingPreview {
  /** The run time previewed (ISO). */
  at: string;
  jobs: number;
  bytes: number;
  /** Job ids that would age, oldest first. */
  jobIds: string[];
  /** Whether the breaker would stop that run, when a limit is given. */
  breaker?: BreakerVerdict;
}

/**
 * Dry run: what a data aging run at `at` would age, if the catalog, the spec and the downstream facts stay as they
 * are now. Nothing is changed.
 */
export function previewAging(input: RetentionInput, at: number, maxSharePercent?: number): AgingPreview {
  const d = decideRetention({ ...input, now: at });
  return {
    at: new Date(at).toISOString(),
    jobs: d.summary.agedJobs,
    bytes: d.summary.agedBytes,
    jobIds: d.aged,
    ...(maxSharePercent !== undefined ? { breaker: massDeletionBreaker(d, maxSharePercent) } : {}),
  };
}
