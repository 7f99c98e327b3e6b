// Which source jobs an aux copy takes to a copy, and the state of each job on that copy (docs/operations.md, "Which
// jobs a copy takes").
// A job is a candidate when it is valid (completed, or completed with errors), not marked Do Not Copy or Bad, inside
// the copy's "backups on and after" window, past its defer period, selected by the selective rules if the copy is
// selective, and not skipped for failed verification. Candidates not yet on the copy are To Be Copied, in start
// order. Pure functions; calendars and time zones through luxon.
import { DateTime } from "luxon";
import type { CatalogEntry } from "./catalog.ts";

export type Period = "AllFulls" | "Hourly" | "Daily" | "Weekly" | "Monthly" | "Quarterly" | "HalfYearly" | "Yearly";
const Weekdays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const Months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

export interface Calendar {
  weekStartsOn?: string;
  monthStartsOn?: number;
  yearStartsOn?: string;
  dayStartsAt?: string;
}

export interface SelectionRules {
  mode?: "Automatic" | "Manual";
  frequency?: Period | "Advanced";
  everyHours?: number;
  full?: "First" | "Last" | "LastWait";
  advanced?: { every: number; unit: "Cycles" | "Days" | "Weeks" | "Months" };
  calendar?: Calendar;
}

export type OverrideAction = "PickForCopy" | "Recopy" | "DoNotCopy" | "MarkBad" | "RetainUntil" | "RetainForever" | "DoNotRetain";

export interface CopyRules {
  copyType?: "Synchronous" | "Selective";
  backups?: { mode: "All" | "OnAndAfter"; date?: string };
  deferDays?: number;
  selection?: SelectionRules;
  /** `at` (RFC 3339) dates a Recopy request: the job is copied again once, by the first aux copy after it. */
  jobOverrides?: { jobId: string; action: OverrideAction; at?: string }[];
  /** The policy's IANA time zone: calendars and "on and after" dates are read in it. */
  timeZone?: string;
}

export interface PlanOptions {
  now: number;
  /** Do not pick new backups: only jobs that ended by this time. */
  cutoff?: number;
  /** Jobs that failed data verification, skipped when the run says so. */
  skipJobs?: ReadonlySet<string>;
  /** Most jobs this run copies; the rest are left for a follow-up run. */
  limit?: number;
  /** Use Most Recent Full: the latest successful full of each subclient goes to a selective copy. */
  mostRecentFull?: boolean;
  /**
   * When each job was last copied to the target (from the job events beside it). A Recopy request is done once the
   * job was copied at or after its time; without this (no job events on the library) a job on the copy is not recopied.
   */
  lastCopied?: ReadonlyMap<string, string>;
  /** Jobs whose latest copy attempt to the target failed: Partially Copied rather than To Be Copied. */
  partial?: ReadonlySet<string>;
}

export type JobCopyState = "ToBeCopied" | "PartiallyCopied" | "Available" | "DoNotCopy" | "Bad";

export interface CopyPlan {
  /** What this run copies, oldest first. */
  toCopy: CatalogEntry[];
  /** To Be Copied (or Partially Copied) jobs beyond the limit. */
  remaining: number;
  /** Jobs in toCopy that are on the target already and are copied again (Recopy): forget them there first. */
  recopy: string[];
  counts: Record<JobCopyState, number>;
  /** Each valid source job's state on the target; a job absent here is not one the copy takes (kubectl auxo jobs). */
  states: Map<string, JobCopyState>;
}

const valid = (e: CatalogEntry) => e.status === "completed" || e.status === "completedWithErrors";
const isFull = (e: CatalogEntry) => e.type === "full" || e.type === "synthfull";
const subclientOf = (e: CatalogEntry) => `${e.client}\u0000${e.subclient}`;

/** The period a time falls in, as a comparable key, under a frequency and calendar. */
export function periodKey(ms: number, frequency: Period, calendar: Calendar = {}, timeZone = "UTC", everyHours = 1): string {
  const [h, m] = (calendar.dayStartsAt ?? "00:00").split(":").map(Number) as [number, number];
  // A day that starts at 06:00 runs 06:00 to 06:00: shift by the start, then cut at midnight.
  const t = DateTime.fromMillis(ms, { zone: timeZone }).minus({ hours: h, minutes: m });
  switch (frequency) {
    case "AllFulls":
      return String(ms);
    case "Hourly":
      return `${t.toISODate()}/${Math.floor(t.hour / everyHours)}`;
    case "Daily":
      return t.toISODate() as string;
    case "Weekly": {
      const start = Weekdays.indexOf(calendar.weekStartsOn ?? "Friday") + 1; // luxon: Monday = 1
      const back = (t.weekday - start + 7) % 7;
      return t.minus({ days: back }).toISODate() as string;
    }
    default: {
      // Months, quarters, half-years and years, cut at monthStartsOn and yearStartsOn.
      const shifted = t.day < (calendar.monthStartsOn ?? 1) ? t.minus({ months: 1 }) : t;
      const monthIndex = shifted.year * 12 + shifted.month - 1 - Months.indexOf(calendar.yearStartsOn ?? "January");
      const size = { Monthly: 1, Quarterly: 3, HalfYearly: 6, Yearly: 12 }[frequency];
      return `m${Math.floor(monthIndex / size)}`;
    }
  }
}

/** When the period after the one holding `ms` starts (for LastWait: a period has closed once that time is past). */
function periodClosed(ms: number, now: number, frequency: Period, calendar: Calendar, timeZone: string, everyHours: number): boolean {
  if (frequency === "AllFulls") return true;
  const key = periodKey(ms, frequency, calendar, timeZone, everyHours);
  // The period is closed when "now" is in a later one; periods only move forward with time.
  return periodKey(now, frequency, calendar, timeZone, everyHours) !== key && now > ms;
}

/** The fulls a selective copy takes, by frequency, per subclient. */
export function selectFulls(fulls: CatalogEntry[], rules: SelectionRules, timeZone: string, now: number): Set<string> {
  const chosen = new Set<string>();
  const frequency = rules.frequency ?? "AllFulls";
  const pick = rules.full ?? "Last";
  const bySubclient = new Map<string, CatalogEntry[]>();
  for (const f of fulls) bySubclient.set(subclientOf(f), [...(bySubclient.get(subclientOf(f)) ?? []), f]);
  for (const list of bySubclient.values()) {
    list.sort((a, b) => a.startTime.localeCompare(b.startTime));
    if (frequency === "Advanced" && rules.advanced?.unit === "Cycles") {
      // Every x cycles by the cycle number N (1-based): First takes N mod x = 1, Last takes N mod x = 0.
      const x = rules.advanced.every;
      list.forEach((f, i) => {
        const n = i + 1;
        if (x === 1 || (pick === "First" ? n % x === 1 : n % x === 0)) chosen.add(f.jobId);
      });
      continue;
    }
    const groups = new Map<string, CatalogEntry[]>();
    for (const f of list) {
      const ms = Date.parse(f.startTime);
      let key: string;
      if (frequency === "Advanced") {
        const a = rules.advanced ?? { every: 1, unit: "Days" as const };
        const d = DateTime.fromMillis(ms, { zone: timeZone });
        const n =
          a.unit === "Months"
            ? d.year * 12 + d.month - 1
            : Math.floor(d.startOf("day").toMillis() / 86_400_000 / (a.unit === "Weeks" ? 7 : 1));
        key = `a${Math.floor(n / a.every)}`;
      } else key = periodKey(ms, frequency, rules.calendar, timeZone, rules.everyHours ?? 1);
      groups.set(key, [...(groups.get(key) ?? []), f]);
    }
    for (const g of groups.values()) {
      if (pick === "First") chosen.add((g[0] as CatalogEntry).jobId);
      else {
        const last = g.at(-1) as CatalogEntry;
        const closed =
          frequency === "Advanced" ||
          periodClosed(Date.parse(last.startTime), now, frequency, rules.calendar ?? {}, timeZone, rules.everyHours ?? 1);
        if (pick === "Last" || closed) chosen.add(last.jobId);
      }
    }
  }
  return chosen;
}

/**
 * Incrementals carried with a selected full: the jobs of its subclient that follow it, up to and including the first
 * that completed without errors, stopping at the next full.
 */
function carried(sorted: CatalogEntry[], fulls: Set<string>): Set<string> {
  const out = new Set<string>();
  const open = new Map<string, boolean>(); // subclient -> still carrying
  for (const e of sorted) {
    const sc = subclientOf(e);
    if (isFull(e)) {
      open.set(sc, fulls.has(e.jobId));
      continue;
    }
    if (!open.get(sc)) continue;
    out.add(e.jobId);
    if (e.status === "completed") open.set(sc, false);
  }
  return out;
}

export function planCopy(source: CatalogEntry[], target: CatalogEntry[], rules: CopyRules, opts: PlanOptions): CopyPlan {
  const tz = rules.timeZone ?? "UTC";
  const overrides = new Map((rules.jobOverrides ?? []).map((o) => [o.jobId, o.action]));
  const recopyAt = new Map((rules.jobOverrides ?? []).filter((o) => o.action === "Recopy" && o.at).map((o) => [o.jobId, o.at as string]));
  const onTarget = new Set(target.map((e) => e.originalId));
  const sorted = source.filter(valid).sort((a, b) => a.startTime.localeCompare(b.startTime) || a.jobId.localeCompare(b.jobId));
  const from =
    rules.backups?.mode === "OnAndAfter" && rules.backups.date ? DateTime.fromISO(rules.backups.date, { zone: tz }).toMillis() : undefined;
  const deferMs = (rules.deferDays ?? 0) * 86_400_000;
  const inWindow = (e: CatalogEntry) => {
    const start = Date.parse(e.startTime);
    const end = e.endTime ? Date.parse(e.endTime) : start;
    if (from !== undefined && start < from) return false;
    if (deferMs && end + deferMs > opts.now) return false;
    if (opts.cutoff !== undefined && end > opts.cutoff) return false;
    return true;
  };
  let selected: Set<string> | undefined;
  if (rules.copyType === "Selective") {
    const manual = rules.selection?.mode === "Manual";
    const fulls = manual ? new Set<string>() : selectFulls(sorted.filter(isFull).filter(inWindow), rules.selection ?? {}, tz, opts.now);
    if (opts.mostRecentFull) {
      // The newest full of each subclient that completed without errors, whatever the frequency rules say.
      const newest = new Map<string, CatalogEntry>();
      for (const e of sorted) if (isFull(e) && e.status === "completed" && inWindow(e)) newest.set(subclientOf(e), e);
      for (const e of newest.values()) fulls.add(e.jobId);
    }
    selected = new Set([...fulls, ...carried(sorted, fulls)]);
  }
  const counts: Record<JobCopyState, number> = { ToBeCopied: 0, PartiallyCopied: 0, Available: 0, DoNotCopy: 0, Bad: 0 };
  const states = new Map<string, JobCopyState>();
  const mark = (e: CatalogEntry, state: JobCopyState) => {
    counts[state]++;
    states.set(e.jobId, state);
  };
  const pending = (e: CatalogEntry) => mark(e, opts.partial?.has(e.jobId) ? "PartiallyCopied" : "ToBeCopied");
  const todo: CatalogEntry[] = [];
  const recopy: string[] = [];
  for (const e of sorted) {
    const action = overrides.get(e.jobId);
    if (onTarget.has(e.originalId)) {
      const asked = recopyAt.get(e.jobId);
      const last = opts.lastCopied?.get(e.jobId);
      if (asked && opts.lastCopied && !(last !== undefined && Date.parse(last) >= Date.parse(asked))) {
        pending(e);
        todo.push(e);
        recopy.push(e.jobId);
      } else mark(e, "Available");
      continue;
    }
    if (action === "DoNotCopy") mark(e, "DoNotCopy");
    else if (action === "MarkBad") mark(e, "Bad");
    else if (opts.skipJobs?.has(e.jobId)) mark(e, "Bad");
    else if (action === "PickForCopy" || action === "Recopy" || ((!selected || selected.has(e.jobId)) && inWindow(e))) {
      pending(e);
      todo.push(e);
    }
  }
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  const toCopy = todo.slice(0, limit);
  const taken = new Set(toCopy.map((e) => e.jobId));
  return { toCopy, remaining: Math.max(0, todo.length - limit), counts, states, recopy: recopy.filter((j) => taken.has(j)) };
}

/** A large source: data older than 14 days or more than 10 TiB (Commvault asks for a confirmation past these). */
export const LARGE_SOURCE = { days: 14, bytes: 10 * 1024 ** 4 };

/**
 * A new secondary copy waits for an explicit spec.backups (All, or on and after a date) when its source is large, so
 * that nobody copies years of data by accident. A copy that already holds jobs is not new (an old primary after a
 * promotion, a copy whose spec.backups was removed later). The message says why, or undefined.
 */
export function largeSourceHold(
  backups: CopyRules["backups"],
  source: { oldestJob?: string; bytes?: number } | undefined,
  now: number,
  targetJobs = 0,
): string | undefined {
  if (backups || !source || targetJobs > 0) return undefined;
  const oldest = source.oldestJob ? Date.parse(source.oldestJob) : Number.NaN;
  const days = Math.floor((now - oldest) / 86_400_000);
  if (!Number.isNaN(oldest) && days > LARGE_SOURCE.days)
    return `the source holds jobs from ${days} days ago (more than ${LARGE_SOURCE.days}): set spec.backups to mode All, or OnAndAfter a date`;
  if ((source.bytes ?? 0) > LARGE_SOURCE.bytes)
    return `the source holds ${((source.bytes ?? 0) / 1024 ** 4).toFixed(1)} TiB (more than 10 TiB): set spec.backups to mode All, or OnAndAfter a date`;
  return undefined;
}
