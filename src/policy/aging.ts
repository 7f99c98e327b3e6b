// Data aging of one copy as a plan (docs/retention.md): each copy ages its jobs by its own retention, daily at the
// policy's dataAging.at in its time zone, in a MediaAgent `age` pod that reads the copy's catalog and the catalogs of
// the copies filled from it (their needs hold jobs), stops at the mass-deletion breaker, forgets and prunes. Prune
// takes restic's exclusive lock, so a run waits while another Auxo pod works on the repository. A dry-run pod after
// each catalog scan previews the next run in status. Run pods are named by run number, and the number is recorded in
// status before its pod starts, so a reconcile on a stale cache never starts a run twice. Pure: facts and a time in,
// a plan out; the controller (src/controllers/dataaging/) gathers the facts and applies the plan.
import type { PolicyCopyStatus } from "../api/v1alpha1/index.ts";
import { Annotation, Label } from "./labels.ts";
import type { AgentOutcome } from "../mediaagent/protocol.ts";
import { formatTime, parseTime } from "./time.ts";
import { podName } from "./names.ts";
import type { AgentPodInput, AgingTask } from "../mediaagent/pod.ts";
import type { AgeResult } from "../mediaagent/protocol.ts";
import { type Condition, setCondition } from "./conditions.ts";
import { labelValue } from "./names.ts";
import type { MetricDelta, Plan, PlannedEvent } from "./plan.ts";
import { probeBackoffMs } from "./probe.ts";
import { checkTimeZone } from "./references.ts";
import { nextAgingRun, type RetentionOverride, type RetentionSpec } from "./retention.ts";
import { blockingWindow, type Window } from "./windows.ts";

export type AgingStatus = NonNullable<PolicyCopyStatus["dataAging"]>;

/** The status fields data aging owns on a copy (with its own field manager): its part and the DataAging condition. */
export interface AgingFields {
  dataAging: AgingStatus;
  conditions: Condition[];
}

export type AgingPlan = Plan<AgingFields, AgentPodInput> & {
  /** The run could not reach the library: ask for its probe now, for this reason. */
  probe?: string;
};

export const OFF = "data aging is off for this copy (the policy's dataAging.enabled or the copy's retention.enableDataAging)";
/** The furthest ahead a mass-aging confirmation may reach: a value left in Git must not disarm the breaker for good. */
export const MAX_CONFIRM_AHEAD_MS = 7 * 86_400_000;
export const CONFIRMATION_TOO_FAR =
  "spec.retention.confirmMassAgingUntil is more than 7 days ahead and is not honoured: confirm a time within the next 7 days";
/** How long a run waits for a lock another process holds before it tries again. */
const LOCK_RETRY_MS = 2 * 60_000;
/** The longest sleep while nothing is due: a changed clock or zone database is seen within the hour. */
const MAX_SLEEP_MS = 3600_000;

/** A pod the copy owns, as data aging reads it. */
export interface AgingPod {
  name: string;
  /** Its task label (age, scan, init, ...). */
  task: string;
  /** Pending or Running. */
  active: boolean;
  /** A preview (dry run). */
  dryRun: boolean;
  /** A preview's catalog scan time (its annotation). */
  catalogTime?: string;
  /** Its result once it ended. */
  result?: AgentOutcome<AgeResult>;
}

/** What every MediaAgent pod of the copy's data aging takes. */
export type AgingPodBase = Pick<AgentPodInput, "namespace" | "owner" | "image" | "target" | "downstream" | "placement">;

export interface AgingFacts {
  now: number;
  copy: {
    name: string;
    namespace: string;
    generation?: number;
    createdAt?: string;
    /** status.dataAging as the cache shows it. */
    status: AgingStatus;
    conditions?: Condition[];
    repositoryReady: boolean;
    repositoryId?: string;
    lastScanTime?: string;
    /** The data-aging-requested annotation: a run asked for by hand. */
    requestedAt?: string;
    /** spec.retention.enableDataAging is not false. */
    enabled: boolean;
    retention?: RetentionSpec;
    overrides?: RetentionOverride[];
    confirmMassAgingUntil?: string;
    /** What the run records beside the repository say, while status has no runs of its own (a rebuilt cluster). */
    recovered?: NonNullable<PolicyCopyStatus["recovered"]>["dataAging"];
  };
  /** The copy's policy; undefined when it does not exist. */
  policy?: {
    name: string;
    timeZone?: string;
    schedule: { enabled?: boolean; at?: string; maxAgedShare?: number };
    operationWindows?: Window[];
  };
  /** The condition that keeps every pod off the copy's repository (shared, replaced, outside its namespace). */
  refusal?: { reason: string; message: string };
  libraryReady: boolean;
  /** The pods the copy owns. */
  pods: AgingPod[];
  /** Names of live pods at work on the copy's repository that do more than read it (agent/busy.ts). */
  repositoryPods: string[];
  /** Undefined without a policy or a library. */
  pod?: AgingPodBase;
  /** Hosts of ended Auxo pods: their locks may go (agent/pods.ts endedAgentHosts). */
  deadHosts: string[];
  /**
   * The copy's catalog was never read: a copy that never ran waits for it, because the first scan says whether the
   * library holds earlier runs' records (a rebuilt cluster) and a run numbered from 1 would hide them.
   */
  awaitingFirstScan?: boolean;
  /** First delay of a failed preview's back-off (default 30 s). */
  retryBaseMs?: number;
  /** Pods the API server refused on the first call of this plan. */
  rejected?: { name: string; message: string }[];
}

/** The pod of run `n` of a copy. */
export const runPodName = (copy: string, n: number): string => podName(copy, "age", String(n));

/** The pods of the latest earlier runs (at most 5): gone or ended, their locks are provably dead. */
export const earlierRunPods = (copy: string, runs: number): string[] =>
  Array.from({ length: Math.min(runs, 5) }, (_, i) => runPodName(copy, runs - 1 - i));

/** A preview pod, named by the catalog scan and the failures so far: a failed one is not recreated under its name. */
export const previewPodName = (copy: string, scanned: string, failures: number): string =>
  podName(copy, "age-preview", String(parseTime(scanned) ?? 0), ...(failures ? [String(failures)] : []));

/** What the steps share: the facts and what follows from them. */
interface Aging {
  f: AgingFacts;
  st: AgingStatus;
  t: number;
  runs: number;
  tz: string;
  policy: NonNullable<AgingFacts["policy"]>;
  pod: AgingPodBase;
  runPod?: AgingPod;
  previews: AgingPod[];
  due: number;
  nextRunTime: string;
  task: AgingTask;
  /** spec.retention.confirmMassAgingUntil lies beyond 7 days: not honoured. */
  confirmTooFar: boolean;
  labels: Record<string, string>;
  /** Pods done with, deleted whatever the step decides. */
  deletes: string[];
}

export function planDataAging(f: AgingFacts): AgingPlan {
  const st = f.copy.status;
  if (!f.policy || f.policy.schedule.enabled === false || !f.copy.enabled) return off(f);
  // Never forget or prune in a repository this copy does not own alone.
  if (f.refusal) return waitWithoutRun(f, `no data aging: ${f.refusal.message}`);
  if (!f.libraryReady || !f.copy.repositoryReady || !f.pod) return {}; // the library's or the copy's Ready says why
  // An unknown time zone: no day, window or calendar can be read in it, so no run (the policy's Ready says so).
  const badZone = checkTimeZone(f.policy.timeZone)[0];
  if (badZone) return waitWithoutRun(f, badZone.message); // a fixed policy wakes the copy
  if (st.runs === undefined && f.awaitingFirstScan) return {};
  if (st.runs === undefined && f.copy.recovered) return rebuilt(f, f.copy.recovered);
  const a = derive(f, f.policy, f.pod, st);
  const plan = runPodStep(a) ?? previewResultStep(a) ?? lockRetryStep(a) ?? (a.due > a.t ? notDueStep(a) : dueStep(a));
  return a.deletes.length ? { ...plan, deletePods: [...a.deletes, ...(plan.deletePods ?? [])] } : plan;
}

function derive(f: AgingFacts, policy: NonNullable<AgingFacts["policy"]>, pod: AgingPodBase, st: AgingStatus): Aging {
  const t = f.now;
  const runs = st.runs ?? 0;
  const tz = policy.timeZone ?? "UTC";
  const agePods = f.pods.filter((p) => p.task === "age");
  const last = parseTime(st.lastRunTime) ?? parseTime(f.copy.createdAt) ?? t;
  const scheduled = nextAgingRun(last, policy.schedule.at ?? "12:00", tz);
  // A run asked for by hand (a time later than the last run) comes before the scheduled one.
  const asked = parseTime(f.copy.requestedAt);
  const due = asked !== undefined && asked > last ? Math.min(asked, scheduled) : scheduled;
  const until = parseTime(f.copy.confirmMassAgingUntil) ?? 0;
  // A confirmation reaches at most 7 days ahead; one further out is not honoured (and says so).
  const confirmed = until > t && until <= t + MAX_CONFIRM_AHEAD_MS;
  return {
    f,
    st,
    t,
    runs,
    tz,
    policy,
    pod,
    runPod: agePods.find((p) => p.name === runPodName(f.copy.name, runs)),
    previews: agePods.filter((p) => p.dryRun),
    due,
    nextRunTime: formatTime(due),
    task: {
      retention: f.copy.retention,
      overrides: f.copy.overrides,
      timeZone: tz,
      maxSharePercent: confirmed ? 100 : (policy.schedule.maxAgedShare ?? 50),
    },
    confirmTooFar: until > t + MAX_CONFIRM_AHEAD_MS,
    labels: { namespace: f.copy.namespace, policy: policy.name, copy: f.copy.name },
    deletes: [],
  };
}

/** The status fields with the DataAging condition: False while the mass-deletion breaker holds the copy. */
function fields(f: AgingFacts, s: AgingStatus): AgingFields {
  const condition =
    s.phase === "Stopped"
      ? { type: "DataAging", status: "False" as const, reason: "MassDeletion", message: s.message ?? "" }
      : {
          type: "DataAging",
          status: "True" as const,
          reason: s.message === OFF ? "Disabled" : "Enabled",
          message: s.message ?? "data aging runs on schedule",
        };
  const conditions = setCondition(f.copy.conditions, condition, f.copy.generation, f.now).filter((c) => c.type === "DataAging");
  return { dataAging: s, conditions };
}

const write = (a: Aging, s: AgingStatus): AgingFields => fields(a.f, s);

function off(f: AgingFacts): AgingPlan {
  return { status: fields(f, { ...f.copy.status, phase: "Idle", message: OFF, nextRunTime: undefined, preview: undefined }) };
}

/** A copy whose status lost its runs (a rebuilt cluster) starts from the run records beside its repository. */
function rebuilt(f: AgingFacts, r: NonNullable<AgingFacts["copy"]["recovered"]>): AgingPlan {
  const message = `rebuilt from the run records beside the repository: ${r.runs} runs, the latest ended ${r.lastRunTime ?? "at an unknown time"}`;
  const s: AgingStatus = {
    ...f.copy.status,
    runs: r.runs,
    lastRunTime: r.lastRunTime,
    lastAgedJobs: r.lastAgedJobs,
    lastAgedBytes: r.lastAgedBytes,
    lastReclaimedBytes: r.lastReclaimedBytes,
    agedJobs: r.agedJobs,
    phase: r.result === "stopped" ? "Stopped" : "Idle",
    message: r.result === "stopped" && r.message ? r.message : message,
  };
  return {
    status: fields(f, s),
    events: [
      {
        type: "Normal",
        reason: "StatusRebuilt",
        message: `data aging ${message}`,
        once: `${f.copy.namespace}/${f.copy.name}/aging-rebuilt/${r.runs}`,
      },
    ],
    requeueAfterMs: 1000,
  };
}

/** No run can be planned (a refused repository, an unknown time zone): say why once. */
function waitWithoutRun(f: AgingFacts, message: string): AgingPlan {
  const st = f.copy.status;
  return st.message === message ? {} : { status: fields(f, { ...st, phase: "Waiting", message, nextRunTime: undefined }) };
}

/** The current run's pod: running, ended (its result goes to status), or done with (it goes). */
function runPodStep(a: Aging): AgingPlan | undefined {
  const pod = a.runPod;
  if (!pod) return undefined;
  const r = pod.result;
  if (!r) {
    const running = `data aging run ${a.runs} in pod ${pod.name}`;
    return a.st.phase === "Running" ? {} : { status: write(a, { ...a.st, phase: "Running", message: running }) }; // its end wakes us
  }
  if (a.st.lastRunTime !== r.at && a.st.lockedRunTime !== r.at) return runEnded(a, r);
  a.deletes.push(pod.name);
  return undefined;
}

type Outcome = { status: Partial<AgingStatus>; events: PlannedEvent[]; metrics: MetricDelta[]; probe?: string };

/** A run that ended: its result goes to status (metrics and events once), then, on the next pass, the pod goes. */
function runEnded(a: Aging, r: AgentOutcome<AgeResult>): AgingPlan {
  const once = `${a.f.copy.namespace}/${a.f.copy.name}/age/${a.runs}/${r.at ?? ""}`;
  const o = r.ok
    ? aged(a, r)
    : r.data.kind === "MassDeletion"
      ? breakerStopped(a, r)
      : r.data.kind === "LockHeld"
        ? lockHeld(a, r)
        : failed(a, r);
  const next: AgingStatus = { ...a.st, lastRunTime: r.at, ...o.status };
  const unread = (a.pod.downstream ?? []).filter((x) => x.unreachable).map((x) => x.name);
  if (r.ok && unread.length)
    next.message = `${next.message}; held every job for ${unread.map((n) => `"${n}"`).join(", ")}, which cannot be read now`;
  next.preview = undefined; // the catalog changed (or a person must look): preview again
  return {
    status: write(a, next),
    events: o.events.map((e) => ({ ...e, once })),
    metrics: o.metrics.map((m) => ({ ...m, once })),
    requeueAfterMs: 1000,
    ...(o.probe ? { probe: o.probe } : {}),
  };
}

const runsMetric = (a: Aging, result: string): MetricDelta => ({ metric: "agingRuns", labels: { ...a.labels, result }, value: 1 });

/** A run that aged jobs after the copy's last scan makes the copy controller read its catalog again (policycopy.ts). */
function aged(a: Aging, r: AgentOutcome<AgeResult>): Outcome {
  const d = r.data;
  const n = d.aged ?? 0;
  const message = `aged ${n} jobs, freed ${d.reclaimedBytes ?? 0} bytes`;
  return {
    status: {
      phase: "Idle",
      message,
      lastAgedJobs: n,
      lastAgedBytes: d.agedBytes ?? 0,
      lastReclaimedBytes: d.reclaimedBytes ?? 0,
      agedJobs: (a.st.agedJobs ?? 0) + n,
    },
    events: [{ type: "Normal", reason: "DataAgingCompleted", message }],
    metrics: [
      { metric: "agedJobs", labels: a.labels, value: n },
      { metric: "reclaimedBytes", labels: a.labels, value: d.reclaimedBytes ?? 0 },
      runsMetric(a, "completed"),
    ],
  };
}

function breakerStopped(a: Aging, r: AgentOutcome<AgeResult>): Outcome {
  const message = `${r.message}; set spec.retention.confirmMassAgingUntil to a time later than now to let runs before it age more`;
  return {
    status: { phase: "Stopped", message },
    events: [{ type: "Warning", reason: "MassDeletion", message }],
    metrics: [runsMetric(a, "stopped")],
  };
}

/** Another process holds a lock Auxo cannot prove is its own and dead: wait and run again, never unlock it. */
function lockHeld(a: Aging, r: AgentOutcome<AgeResult>): Outcome {
  const retryAt = (parseTime(r.at) ?? a.t) + LOCK_RETRY_MS;
  return {
    status: {
      lastRunTime: a.st.lastRunTime,
      lockedRunTime: r.at,
      phase: "Waiting",
      message: `${r.message}; trying again at ${formatTime(retryAt)}`,
      retryTime: formatTime(retryAt),
    },
    events: [{ type: "Warning", reason: "LockHeld", message: `data aging waits: ${r.message}` }],
    metrics: [],
  };
}

function failed(a: Aging, r: AgentOutcome<AgeResult>): Outcome {
  const message = `data aging failed: ${r.message}`;
  return {
    status: { phase: "Idle", message },
    events: [{ type: "Warning", reason: "DataAgingFailed", message }],
    metrics: [runsMetric(a, "failed")],
    ...(r.data.kind === "Unreachable" ? { probe: `data aging: ${r.message}` } : {}),
  };
}

/** Ended previews: a failure counts once (previews back off), a new result goes to status, a recorded one goes. */
function previewResultStep(a: Aging): AgingPlan | undefined {
  for (const p of a.previews) {
    const r = p.result;
    if (!r) continue;
    if (!r.ok && a.st.lastPreviewFailureTime !== r.at) {
      const failures = (a.st.previewFailures ?? 0) + 1;
      return {
        status: write(a, { ...a.st, previewFailures: failures, lastPreviewFailureTime: r.at ?? formatTime(a.t) }),
        requeueAfterMs: 1000,
      };
    }
    if (r.ok && a.st.preview?.catalogTime !== p.catalogTime) {
      const d = r.data;
      const preview = {
        at: a.nextRunTime,
        jobs: d.aged ?? 0,
        bytes: d.agedBytes ?? 0,
        breakerWouldStop: !!d.breaker?.stop,
        catalogTime: p.catalogTime,
      };
      const s = { ...a.st, nextRunTime: a.nextRunTime, previewFailures: undefined, lastPreviewFailureTime: undefined, preview };
      return { status: write(a, s), requeueAfterMs: 1000 };
    }
    a.deletes.push(p.name);
  }
  return undefined;
}

/** A run that found the repository locked by another process tries again at its retry time. */
function lockRetryStep(a: Aging): AgingPlan | undefined {
  const retryAt = a.st.phase === "Waiting" ? parseTime(a.st.retryTime) : undefined;
  return retryAt !== undefined && retryAt > a.t && a.due <= a.t ? { requeueAfterMs: retryAt - a.t } : undefined;
}

/** Not due yet: the preview of the next run (once per catalog scan, backing off after failures), then the next run time. */
function notDueStep(a: Aging): AgingPlan {
  const { st, t } = a;
  const failures = st.previewFailures ?? 0;
  const previewAt = failures ? (parseTime(st.lastPreviewFailureTime) ?? t) + probeBackoffMs(failures, a.f.retryBaseMs) : t;
  const scanned = a.f.copy.lastScanTime;
  const newScan = !!scanned && st.preview?.catalogTime !== scanned;
  const sleep = Math.min(a.due - t, MAX_SLEEP_MS);
  const pods: AgentPodInput[] = [];
  // The preview waits for the copy's other work (a scan reads only, so it does not count).
  if (newScan && a.previews.length === 0 && previewAt <= t && !a.f.pods.some((p) => p.active && p.task !== "scan")) {
    const name = previewPodName(a.f.copy.name, scanned, failures);
    const refused = a.f.rejected?.find((r) => r.name === name);
    if (refused) return previewRejected(a, name, refused.message, failures);
    pods.push(previewPod(a, name, scanned));
  } else if (newScan && previewAt > t) {
    // A failing preview backs off; the run itself does not wait for it.
    const status = st.nextRunTime !== a.nextRunTime ? write(a, { ...st, nextRunTime: a.nextRunTime }) : undefined;
    return { status, requeueAfterMs: Math.min(previewAt - t, a.due - t) };
  }
  if (a.confirmTooFar && st.message !== CONFIRMATION_TOO_FAR)
    return {
      pods,
      status: write(a, { ...st, nextRunTime: a.nextRunTime, message: CONFIRMATION_TOO_FAR }),
      events: [{ type: "Warning", reason: "ConfirmationTooFar", message: CONFIRMATION_TOO_FAR }],
      requeueAfterMs: sleep,
    };
  const settled = st.nextRunTime === a.nextRunTime && (st.phase === "Idle" || st.phase === "Stopped");
  const status = settled ? undefined : write(a, { ...st, phase: st.phase === "Stopped" ? "Stopped" : "Idle", nextRunTime: a.nextRunTime });
  return { pods, status, requeueAfterMs: sleep };
}

function previewRejected(a: Aging, name: string, message: string, failures: number): AgingPlan {
  const s = { ...a.st, nextRunTime: a.nextRunTime, previewFailures: failures + 1, lastPreviewFailureTime: formatTime(a.t), message };
  return {
    status: write(a, s),
    events: [{ type: "Warning", reason: "PodRejected", message: `data aging preview: ${message}`, once: `${a.f.copy.namespace}/${name}` }],
    requeueAfterMs: probeBackoffMs(failures + 1, a.f.retryBaseMs),
  };
}

/** Due: operation windows first, then the repository must be free (prune is exclusive), then the run. */
function dueStep(a: Aging): AgingPlan {
  const { st, t } = a;
  const blocked = blockingWindow(a.policy.operationWindows, "DataAging", t, a.tz);
  if (blocked) {
    const message = `operation window "${blocked.window.name}" until ${formatTime(blocked.endsAt)}`;
    return {
      status: write(a, { ...st, phase: "Waiting", message, nextRunTime: a.nextRunTime }),
      events: st.message === message ? [] : [{ type: "Normal", reason: "OperationWindow", message: `data aging waits: ${message}` }],
      requeueAfterMs: Math.max(blocked.endsAt - t, 1000),
    };
  }
  const runName = runPodName(a.f.copy.name, a.runs);
  const using = a.f.repositoryPods.filter((n) => n !== runName);
  if (using.length) {
    const message = `waiting for pod ${using[0]} to finish with the repository`;
    return { status: write(a, { ...st, phase: "Waiting", message, nextRunTime: a.nextRunTime }), requeueAfterMs: 10_000 };
  }
  // The run is recorded before its pod exists (a stale cache then names the same pod), then the pod starts.
  if (st.phase === "Starting" || (st.phase === "Running" && !a.runPod)) return startRun(a, runName);
  const started = { ...st, runs: a.runs + 1, phase: "Starting", message: `data aging run ${a.runs + 1} starting` };
  return { status: write(a, { ...started, nextRunTime: a.nextRunTime, retryTime: undefined }), requeueAfterMs: 500 };
}

function startRun(a: Aging, name: string): AgingPlan {
  const refused = a.f.rejected?.find((r) => r.name === name);
  if (!refused) return { pods: [runPod(a, name)] };
  // The API refuses the pod: a failed run, reported; the next run is the next scheduled one.
  const once = `${a.f.copy.namespace}/${name}/rejected`;
  return {
    status: write(a, { ...a.st, phase: "Idle", message: `data aging failed: ${refused.message}`, lastRunTime: formatTime(a.t) }),
    events: [{ type: "Warning", reason: "PodRejected", message: `data aging run ${a.runs}: ${refused.message}`, once }],
    metrics: [{ ...runsMetric(a, "failed"), once }],
  };
}

function runPod(a: Aging, name: string): AgentPodInput {
  return {
    ...a.pod,
    task: "age",
    name,
    target: { ...a.pod.target, repositoryId: a.f.copy.repositoryId },
    // The decision time is the operator's: a pod whose clock is off refuses instead of ageing by it.
    aging: { ...a.task, at: formatTime(a.t), run: a.runs },
    // Locks of Auxo's ended pods (earlier runs, killed copies) may go; any other lock is waited for.
    locks: { deadHosts: a.f.deadHosts },
    deadlineSeconds: 6 * 3600,
    labels: { [Label.copy]: labelValue(a.f.copy.name) },
    annotations: { [Annotation.copy]: a.f.copy.name },
  };
}

function previewPod(a: Aging, name: string, scanned: string): AgentPodInput {
  return {
    ...a.pod,
    task: "age",
    name,
    aging: { ...a.task, dryRun: true, at: a.nextRunTime },
    deadlineSeconds: 3600,
    labels: { [Label.copy]: labelValue(a.f.copy.name), [Label.dryRun]: "true" },
    annotations: { [Annotation.catalogTime]: scanned, [Annotation.copy]: a.f.copy.name },
  };
}
