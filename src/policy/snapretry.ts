// The retry budget of a snapshot's copy (Commvault's "Retry Count for Snap AuxCopy" and "Retry Time Limit for Snap
// AuxCopy"): only source faults count; the snapshot is Missing as soon as either limit is reached, the count after
// `maxAttempts` failed attempts, the time `maxDays` after the first failed attempt. Pure.

export const DAY_MS = 86_400_000;

export interface RetryBudget {
  maxAttempts: number;
  maxDays: number;
}

/** Commvault's defaults: 10 attempts and 5 days. */
export const DEFAULT_BUDGET: RetryBudget = { maxAttempts: 10, maxDays: 5 };

export type MissingReason = "RetryCountExhausted" | "RetryTimeLimitExhausted" | "SourceSnapshotDeleted" | "SourceVolumeDeleted";

export type RetryVerdict = { state: "Retrying"; message: string } | { state: "Missing"; reason: MissingReason; message: string };

/** After `attempts` failed attempts, the first at `firstFailure`: try again, or Missing. */
export function retryVerdict(attempts: number, firstFailure: number | undefined, now: number, budget: RetryBudget): RetryVerdict {
  if (attempts >= budget.maxAttempts)
    return {
      state: "Missing",
      reason: "RetryCountExhausted",
      message: `${attempts} failed attempts: the retry budget of ${budget.maxAttempts} attempts is used up`,
    };
  if (firstFailure !== undefined && now - firstFailure >= budget.maxDays * DAY_MS)
    return {
      state: "Missing",
      reason: "RetryTimeLimitExhausted",
      message: `${fmtDays(now - firstFailure)} since the first failed attempt: the retry time limit of ${budget.maxDays} days is reached`,
    };
  return { state: "Retrying", message: `attempt ${attempts} of ${budget.maxAttempts} failed; retried in the next run` };
}

const fmtDays = (ms: number) => `${Math.floor((ms / DAY_MS) * 10) / 10} days`;

/** The budget in force: the SnapVault's own limits over the operator's defaults. */
export function budgetOf(spec: { maxAttempts?: number; maxDays?: number } | undefined, defaults: RetryBudget): RetryBudget {
  return { maxAttempts: spec?.maxAttempts ?? defaults.maxAttempts, maxDays: spec?.maxDays ?? defaults.maxDays };
}
