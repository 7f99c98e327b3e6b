// The automatic aux copy of a storage policy (docs/operations.md, "The automatic aux copy"): one AuxCopyJob every
// interval, the first one interval after the policy exists; while one still runs the next waits and starts as soon
// as it ends (never two at once, never a backlog of missed runs). Finished automatic jobs are kept by history
// limits, as CronJob does. Pure.
import { boundedName } from "./names.ts";

export interface AutoCopyInput {
  enabled: boolean;
  everyMs: number;
  createdAt: number;
  lastRun?: number;
  now: number;
  /** An automatic job of this policy has not finished. */
  running: boolean;
  /** The policy has an active secondary copy to fill. */
  hasTargets: boolean;
  /**
   * Continuous copying (scalable resource allocation): the start time of the newest job a scan found on a source
   * copy. A job newer than the last run starts one now instead of at the next slot.
   */
  newestSourceJob?: number;
}

export type AutoCopyDecision = { create: false; recheckMs?: number } | { create: true; slot: number; recheckMs: number };

export function autoCopy(i: AutoCopyInput): AutoCopyDecision {
  if (!i.enabled || !i.hasTargets) return { create: false };
  const due = (i.lastRun ?? i.createdAt) + i.everyMs;
  const fresh = i.newestSourceJob !== undefined && i.newestSourceJob > (i.lastRun ?? i.createdAt) && i.newestSourceJob <= i.now;
  if (due > i.now && !fresh) return { create: false, recheckMs: due - i.now };
  if (i.running) return { create: false }; // the running job's end wakes the policy
  // Named by the job that triggered it: a reconcile on a stale cache names the same AuxCopyJob, never a second one.
  if (due > i.now) return { create: true, slot: i.newestSourceJob as number, recheckMs: i.everyMs };
  return { create: true, slot: due, recheckMs: i.everyMs };
}

export interface HistoryEntry {
  name: string;
  createdAt: string;
  phase?: string;
}

/** Finished automatic jobs beyond the limits, oldest first: the ones to delete. */
export function overHistory(jobs: HistoryEntry[], successful: number, failed: number): string[] {
  const done = jobs.filter((j) => j.phase && ["Completed", "CompletedWithErrors", "Failed", "Killed"].includes(j.phase));
  const newestFirst = (a: HistoryEntry, b: HistoryEntry) => b.createdAt.localeCompare(a.createdAt) || b.name.localeCompare(a.name);
  const ok = done.filter((j) => j.phase === "Completed").sort(newestFirst);
  const bad = done.filter((j) => j.phase !== "Completed").sort(newestFirst);
  return [...ok.slice(successful), ...bad.slice(failed)].map((j) => j.name);
}

/** A job name for a slot: `<policy>-<yyyymmddhhmmss>` in UTC, so a retried create names the same job. */
export function slotName(policy: string, slot: number): string {
  const d = new Date(slot).toISOString();
  // Object names may have 253 characters: a long policy name is shortened with a hash, the time stays whole.
  return boundedName(policy, `-${d.slice(0, 19).replace(/[-:T]/g, "")}`);
}
