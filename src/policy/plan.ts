// What a controller's decision comes to: a plain plan, returned by a pure rule of this folder from plain facts and a
// time, and carried out by the shared applier (src/controllers/apply.ts). A plan says what to write and create, never
// how: no client, no cache, no clock inside.
import type { Problem } from "./references.ts";

export interface PlannedEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
  /**
   * Emit only once per key in this operator process: a reconcile that runs on a cache without the last status
   * write decides the same again, and must not announce it twice.
   */
  once?: string;
}

/** A change of one of the operator's metrics (src/observability/metrics.ts names them). */
export interface MetricDelta {
  metric:
    | "copiedJobs"
    | "copiedBytes"
    | "auxCopyRuns"
    | "copyBacklog"
    | "copyLag"
    | "agedJobs"
    | "reclaimedBytes"
    | "agingRuns"
    | "verificationRuns"
    | "verifiedJobs"
    | "snapVaultSnapshots"
    | "snapVaultBytes"
    | "snapVaultRuns"
    | "snapVaultBackupCopies";
  labels: Record<string, string>;
  /** Counter increment, gauge value or histogram observation. */
  value: number;
  /** Counted once per key in this process (like PlannedEvent.once): a result seen twice counts once. */
  once?: string;
}

/** The Ready condition (and others this writer owns) when the status carries conditions. */
export interface ReadyPlan {
  problems: Problem[];
  /** Reason and message when there is no problem. */
  ok: { reason: string; message: string };
  /** No problem, but not known to work yet (Ready=Unknown: kstatus reads it as in progress). */
  unknown?: { reason: string; message: string };
  /** Other condition types this writer owns (for example Promotion, Stalled). */
  others?: { type: string; status: "True" | "False" | "Unknown"; reason: string; message: string }[];
  /** Events when Ready turns False or recovers (default true). */
  events?: boolean;
}

export interface Plan<Status = Record<string, unknown>, Pod = unknown> {
  /** The status fields this writer owns, whole; written only when they differ from what the object shows. */
  status?: Status;
  /** With conditions: written through writeStatus (observedGeneration and Ready included). */
  ready?: ReadyPlan;
  /** MediaAgent pods to create (agent pod inputs; deterministic names, so creating twice is harmless). */
  pods?: Pod[];
  /** Names of pods (in the object's namespace) to delete; a pod already gone is fine. */
  deletePods?: string[];
  events?: PlannedEvent[];
  metrics?: MetricDelta[];
  /** Reconcile again after this many milliseconds (undefined: only on a change). */
  requeueAfterMs?: number;
}

/** The earlier of two requeue delays (undefined means never). */
export function sooner(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}
