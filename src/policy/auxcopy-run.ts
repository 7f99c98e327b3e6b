// One aux copy run as a whole: how the job stops (cancel, its running-time limit, a missing policy, suspend), the parts
// of its target copies (auxcopy.ts), the overall phase, totals, the Started, Queued and terminal events, the follow-up
// run for jobs beyond jobLimit, the run metric, and Ready with kstatus' Reconciling and Stalled (docs/operations.md).
// Pure: facts in, a plan out.
import type { AuxCopyJobStatus } from "../api/v1alpha1/index.ts";
import { formatTime, parseTime } from "./time.ts";
import type { AgentPodInput } from "../mediaagent/pod.ts";
import { parseDuration } from "./duration.ts";
import { boundedName } from "./names.ts";
import type { MetricDelta, Plan, PlannedEvent, ReadyPlan } from "./plan.ts";
import { type CopyPart, type PartEffects, planPart, type RunContext, type RunFacts, TERMINAL } from "./auxcopy.ts";

export interface AuxCopyPlan extends Plan<AuxCopyJobStatus, AgentPodInput> {
  /** Libraries to probe now. */
  probes?: { library: string; why: string }[];
  /** A follow-up run to create (before the status that names it is written). */
  followUp?: { name: string; copies: string[] };
}

/** The plan of one reconcile of an AuxCopyJob. */
export function planAuxCopy(f: RunFacts): AuxCopyPlan {
  const st = f.job.status;
  // Ended: results are in status, so the pods can go.
  if (st.phase && TERMINAL.has(st.phase)) return { deletePods: f.pods, status: st, ready: readyOf(st) };
  const stopped = stopOf(f);
  if (stopped) return stopped;
  return planParts(f);
}

/** A job that stops or cannot start: cancelled, past its running time, its policy missing, or suspended. */
function stopOf(f: RunFacts): AuxCopyPlan | undefined {
  const { spec, status: st } = f.job;
  if (spec.cancel) return killed(f, "Normal", "Cancelled", "cancelled by spec.cancel");
  const maxMs = parseDuration("maxRunningTime", spec.maxRunningTime ?? "6h");
  const started = st.startTime ?? formatTime(f.now);
  const runningFor = f.now - (parseTime(started) ?? f.now);
  const anyRunning = (st.copies ?? []).some((c) => c.phase === "Running");
  // Past its total running time a job that is not running is killed; a running one keeps going unless
  // killWhenMaxRunningTimeExpires. Jobs copied so far stay on the copies.
  if (runningFor > maxMs && (!anyRunning || spec.killWhenMaxRunningTimeExpires))
    return killed(f, "Warning", "MaxRunningTimeExpired", `total running time ${spec.maxRunningTime ?? "6h"} expired`);
  if (!f.policy) {
    const status = {
      ...st,
      phase: "Pending",
      reason: "PolicyNotFound",
      message: `storage policy "${spec.storagePolicy}" does not exist`,
    } as const;
    return { status, ready: readyOf(status) };
  }
  if (spec.suspend) {
    const status = {
      ...st,
      copies: stopParts(st, "Suspended"),
      phase: "Suspended",
      reason: "Suspended",
      message: "suspended by spec.suspend; progress is kept",
    } as const;
    return { deletePods: f.pods, status, ready: readyOf(status) };
  }
  return undefined;
}

function killed(f: RunFacts, type: PlannedEvent["type"], reason: string, message: string): AuxCopyPlan {
  const st = f.job.status;
  const status = { ...st, copies: stopParts(st, "Killed"), phase: "Killed", reason, message, completionTime: formatTime(f.now) } as const;
  return { deletePods: f.pods, events: [{ type, reason: "Killed", message }], status, ready: readyOf(status) };
}

/** Parts still under way when the whole job stops take the job's phase: no copy shows Running without a pod. */
function stopParts(st: AuxCopyJobStatus, phase: string): CopyPart[] | undefined {
  return st.copies?.map((c) =>
    ["Completed", "CompletedWithErrors", "Failed"].includes(c.phase ?? "")
      ? c
      : { ...c, phase, currentJob: undefined, etaSeconds: undefined, queuePosition: undefined },
  );
}

/** The run goes on: each target copy's part, then the whole. */
function planParts(f: RunFacts): AuxCopyPlan {
  const st = f.job.status;
  const fx: PartEffects = {
    pods: [],
    deletePods: [],
    events: [],
    metrics: [],
    probes: [],
    history: [...(st.history ?? [])],
    started: [],
  };
  const ctx: RunContext = {
    f,
    policy: f.policy as NonNullable<RunFacts["policy"]>,
    targetNames: f.targets.map((t) => t.name),
    previous: new Map((st.copies ?? []).map((p) => [p.name, p])),
    parts: [],
    started: st.startTime ?? formatTime(f.now),
    fx,
  };
  for (const t of f.targets) ctx.parts.push(planPart(ctx, t));
  const overall = overallPhase(ctx.parts);
  const end = endOf(ctx, overall);
  const status = runStatus(ctx, overall, end.followUpJob);
  return {
    status,
    ready: readyOf(status),
    pods: fx.pods,
    deletePods: fx.deletePods,
    events: [...fx.events, ...runEvents(f, ctx.parts, overall), ...end.events],
    metrics: [...fx.metrics, ...end.metrics],
    probes: fx.probes,
    followUp: end.followUp,
    requeueAfterMs: fx.requeueAfterMs,
  };
}

interface RunEnd {
  followUpJob?: string;
  followUp?: AuxCopyPlan["followUp"];
  events: PlannedEvent[];
  metrics: MetricDelta[];
}

/** At the end of a run: the follow-up for jobs beyond jobLimit, the run metric and the terminal event. */
function endOf(ctx: RunContext, overall: { phase: string }): RunEnd {
  const { f } = ctx;
  const followUpJob = f.job.status.followUpJob;
  if (!TERMINAL.has(overall.phase)) return { followUpJob, events: [], metrics: [] };
  const events: PlannedEvent[] = [];
  const totals = totalsOf(ctx.parts);
  const more = ctx.parts.filter((p) => (p.jobsRemaining ?? 0) > 0).map((p) => p.name);
  let followUp: AuxCopyPlan["followUp"];
  if (more.length > 0 && !followUpJob) {
    // Beyond jobLimit: a follow-up run picks up the rest.
    followUp = { name: boundedName(followUpName(f.job.name), ""), copies: more };
    events.push({
      type: "Normal",
      reason: "FollowUpCreated",
      message: `${more.join(", ")}: jobs beyond jobLimit go to auxcopyjob ${followUp.name}`,
    });
  }
  events.push({
    type: overall.phase === "Completed" ? "Normal" : "Warning",
    reason: overall.phase,
    message: `copied ${totals.copied} of ${totals.selected} jobs`,
  });
  const metrics: MetricDelta[] = [
    {
      metric: "auxCopyRuns",
      labels: { namespace: f.job.namespace, policy: ctx.policy.name, phase: overall.phase },
      value: (f.now - (parseTime(ctx.started) ?? f.now)) / 1000,
      once: `run/${f.job.uid}`,
    },
  ];
  return { followUpJob: followUp?.name ?? followUpJob, followUp, events, metrics };
}

function runStatus(ctx: RunContext, overall: { phase: string; reason?: string }, followUpJob: string | undefined): AuxCopyJobStatus {
  const totals = totalsOf(ctx.parts);
  const history = ctx.fx.history;
  return {
    phase: overall.phase as AuxCopyJobStatus["phase"],
    reason: overall.reason,
    message:
      ctx.parts
        .filter((p) => p.phase !== "Completed")
        .map((p) => `${p.name}: ${p.message}`)
        .join("; ") || undefined,
    startTime: ctx.started,
    completionTime: TERMINAL.has(overall.phase) ? formatTime(ctx.f.now) : undefined,
    copies: ctx.parts,
    jobsSelected: totals.selected,
    jobsCopied: totals.copied,
    bytesCopied: totals.bytes,
    progress: `${totals.copied}/${totals.selected} jobs`,
    followUpJob,
    history: history.length ? history.slice(-100) : undefined,
  };
}

/** Started on the run's first reconcile; Queued when the job goes to Queued, or is queued for another reason. */
function runEvents(f: RunFacts, parts: CopyPart[], overall: { phase: string; reason?: string }): PlannedEvent[] {
  const st = f.job.status;
  const events: PlannedEvent[] = [];
  const names = parts.map((p) => p.name);
  if (!st.startTime)
    events.push({
      type: "Normal",
      reason: "Started",
      message: `aux copy to ${names.length} cop${names.length === 1 ? "y" : "ies"}: ${names.join(", ")}`,
    });
  if (overall.phase === "Queued" && (st.phase !== "Queued" || st.reason !== overall.reason))
    events.push({
      type: "Normal",
      reason: overall.reason === "OperationWindow" ? "OperationWindow" : "Queued",
      message: parts
        .filter((p) => p.phase === "Queued")
        .map((p) => `copy "${p.name}": ${p.message}`)
        .join("; "),
      // Once per version of the job: a reconcile on a cache that does not show the new status yet decides the same.
      once: `${f.job.uid}/queued/${f.job.resourceVersion ?? ""}/${overall.reason}`,
    });
  return events;
}

export function totalsOf(parts: CopyPart[]): { selected: number; copied: number; bytes: number } {
  return parts.reduce(
    (t, p) => ({
      selected: t.selected + (p.jobsSelected ?? 0),
      copied: t.copied + (p.jobsCopied ?? 0),
      bytes: t.bytes + (p.bytesCopied ?? 0),
    }),
    { selected: 0, copied: 0, bytes: 0 },
  );
}

/** The overall phase from the copies' parts. */
export function overallPhase(parts: CopyPart[]): { phase: string; reason?: string } {
  const phases = parts.map((p) => p.phase ?? "Pending");
  if (phases.length === 0) return { phase: "Completed", reason: "NothingToCopy" };
  if (phases.some((p) => p === "Running")) return { phase: "Running" };
  if (phases.some((p) => p === "Pending" || p === "Retrying"))
    return { phase: "Pending", reason: phases.includes("Retrying") ? "Retrying" : undefined };
  if (phases.some((p) => p === "Waiting"))
    return {
      phase: "Waiting",
      reason: parts.some((p) => p.phase === "Waiting" && p.reason === "LockHeld") ? "LockHeld" : "ResourcesUnavailable",
    };
  if (phases.some((p) => p === "Queued"))
    return {
      phase: "Queued",
      reason: parts.some((p) => p.phase === "Queued" && p.message?.startsWith("operation window")) ? "OperationWindow" : "ConflictingJob",
    };
  if (phases.every((p) => p === "Completed")) return { phase: "Completed" };
  if (phases.every((p) => p === "Failed")) return { phase: "Failed" };
  return { phase: "CompletedWithErrors" };
}

const IN_PROGRESS = new Set(["Pending", "Queued", "Waiting", "Running", "Suspended"]);

/**
 * Ready as kstatus reads it: Completed is Ready; a run under way (or suspended) is Ready=False and Reconciling; a run
 * that ended otherwise is Ready=False and Stalled. The phase events already tell each change: no Ready events.
 */
export function readyOf(st: Pick<AuxCopyJobStatus, "phase" | "reason" | "message" | "jobsCopied" | "jobsSelected">): ReadyPlan {
  const phase = st.phase ?? "Pending";
  const why = { reason: st.reason ?? phase, message: (st.message ?? phase).slice(0, 32_768) };
  const reconciling = IN_PROGRESS.has(phase);
  const stalled = !reconciling && phase !== "Completed";
  return {
    problems: phase === "Completed" ? [] : [why],
    ok: { reason: "Completed", message: `copied ${st.jobsCopied ?? 0} of ${st.jobsSelected ?? 0} jobs` },
    others: [
      reconciling
        ? { type: "Reconciling", status: "True", ...why }
        : { type: "Reconciling", status: "False", reason: phase, message: "the run has ended" },
      stalled
        ? { type: "Stalled", status: "True", ...why }
        : { type: "Stalled", status: "False", reason: phase, message: "the run has not failed" },
    ],
    events: false,
  };
}

/** `nightly` → `nightly-2`, `nightly-2` → `nightly-3`. */
export function followUpName(name: string): string {
  const m = /^(.*)-(\d+)$/.exec(name);
  return m ? `${m[1]}-${Number(m[2]) + 1}` : `${name}-2`;
}
