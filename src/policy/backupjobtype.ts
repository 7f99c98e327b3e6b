// The type of a backup copy job, from the PVC's backup history on the copy it lands on (docs/snapvault.md, "Job
// types"): the first backup copy of a PVC is a full, and so is the next one once the last full is `fullEvery` old;
// the others are incrementals, except that once `incrementalLimit` incrementals follow the last full or differential
// the next one is a differential (Commvault's incremental limit). restic's parent follows the type: a full reads
// every file again (no parent), an incremental reads what changed since the latest job, a differential what changed
// since the last full, so that cycles and retention mean what they say. Pure.
import type { CatalogEntry, JobType } from "./catalog.ts";

export interface JobTypeRules {
  /** A full once the last full is this old (ms). */
  fullEveryMs: number;
  /** Incrementals after a full or differential before the next job is a differential (0: no limit). */
  incrementalLimit: number;
}

export interface JobTypeDecision {
  type: Extract<JobType, "full" | "incremental" | "differential">;
  /** restic's parent: absent for a full (restic reads every file again). */
  parent?: CatalogEntry;
  /** Why, for the job's log and status. */
  reason: string;
}

const valid = (e: CatalogEntry) => e.status === "completed" || e.status === "completedWithErrors";
const isFull = (e: CatalogEntry) => e.type === "full" || e.type === "synthfull";
const t = (e: CatalogEntry) => Date.parse(e.startTime);

/**
 * The next job's type at `at` (the snapshot's point in time), from `history`: the jobs of the same client and
 * subclient on the copy. Failed and killed jobs count for nothing; jobs at or after `at` neither (a replayed older
 * snapshot is typed by what came before it).
 */
export function backupJobType(history: CatalogEntry[], at: number, rules: JobTypeRules): JobTypeDecision {
  const jobs = history.filter((e) => valid(e) && t(e) < at).sort((a, b) => t(a) - t(b) || a.jobId.localeCompare(b.jobId));
  const lastFull = jobs.filter(isFull).at(-1);
  if (!lastFull) return { type: "full", reason: "the first backup copy of the volume" };
  if (at - t(lastFull) >= rules.fullEveryMs)
    return { type: "full", reason: `the last full (${lastFull.jobId}) is ${days(at - t(lastFull))} old` };
  const since = jobs.filter((e) => t(e) > t(lastFull));
  const lastDiff = since.filter((e) => e.type === "differential").at(-1);
  const incrementals = since.filter((e) => e.type === "incremental" && (!lastDiff || t(e) > t(lastDiff))).length;
  if (rules.incrementalLimit > 0 && incrementals >= rules.incrementalLimit)
    return {
      type: "differential",
      parent: lastFull,
      reason: `${incrementals} incrementals since the last ${lastDiff ? "differential" : "full"}: the limit of ${rules.incrementalLimit} is reached`,
    };
  const latest = jobs.at(-1) as CatalogEntry;
  return {
    type: "incremental",
    parent: latest,
    reason: `incremental ${incrementals + 1} since the last ${lastDiff ? "differential" : "full"}`,
  };
}

const days = (ms: number) => `${Math.round((ms / 86_400_000) * 10) / 10} days`;
