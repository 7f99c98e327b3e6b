// Data verification of one copy (docs/verification.md): which jobs a run reads in full, and the run itself as a
// plan. A run is due on the copy's schedule, right after jobs land on the copy (afterCopy), or when a user asks; it
// runs in a MediaAgent `verify` pod inside the policy's DataVerification windows, within the library's streams, and
// never beside a prune (restic's exclusive lock; data aging waits for a verify pod in turn). The pod selects the jobs
// itself from the catalog and the job events beside the repository, so the operator never holds a list of jobs.
// A failed verification deletes nothing: the job is Bad on the copy until a Recopy repairs it and a later
// verification passes. Run pods are named by run number, recorded in status before the pod starts. Pure.
import type { AuxCopyJobStatus, PolicyCopySpec, PolicyCopyStatus } from "../api/v1alpha1/index.ts";
import type { AgentPodInput } from "../mediaagent/pod.ts";
import type { AgentOutcome, VerificationTask, VerifyResult } from "../mediaagent/protocol.ts";
import type { CatalogEntry } from "./catalog.ts";
import { type Condition, setCondition } from "./conditions.ts";
import { parseDuration } from "./duration.ts";
import { copiedSinceVerification, type JobRecord } from "./jobevents.ts";
import { Annotation, Label } from "./labels.ts";
import { labelValue, podName } from "./names.ts";
import type { MetricDelta, Plan, PlannedEvent } from "./plan.ts";
import { checkTimeZone } from "./references.ts";
import { formatTime, parseTime } from "./time.ts";
import { blockingWindow, type Window } from "./windows.ts";

// ---- which jobs a run verifies (run in the pod) ----

export interface VerificationRules {
  scope: "AllJobs" | "AllFulls";
  /** Only jobs that started on or after this day (yyyy-mm-dd, UTC). */
  onOrAfter?: string;
  /** A job verified this long ago is verified again (undefined: once is enough). */
  reverifyAfterMs?: number;
}

const valid = (e: CatalogEntry) => e.status === "completed" || e.status === "completedWithErrors";

/** Whether the copy's verification rules cover a job at all (scope and date). */
export function inScope(e: CatalogEntry, rules: VerificationRules): boolean {
  if (!valid(e)) return false;
  if (rules.scope === "AllFulls" && e.type !== "full" && e.type !== "synthfull") return false;
  if (rules.onOrAfter && Date.parse(e.startTime) < Date.parse(`${rules.onOrAfter}T00:00:00Z`)) return false;
  return true;
}

/**
 * The jobs a run verifies, in the order it reads them. "new" (a run after a copy): jobs never verified, and jobs
 * copied again since their latest verification (a Recopy). "due" (scheduled or asked for): those, then jobs whose
 * latest verification is older than reverifyAfter, oldest verification first.
 */
export function jobsToVerify(
  catalog: CatalogEntry[],
  records: ReadonlyMap<string, JobRecord>,
  rules: VerificationRules,
  mode: "new" | "due",
  now: number,
): CatalogEntry[] {
  const fresh: CatalogEntry[] = [];
  const stale: { e: CatalogEntry; at: string }[] = [];
  for (const e of catalog) {
    if (!inScope(e, rules)) continue;
    const r = records.get(e.jobId);
    const v = r?.lastVerification;
    if (!v || copiedSinceVerification(r)) fresh.push(e);
    else if (mode === "due" && rules.reverifyAfterMs !== undefined && now - Date.parse(v.at) >= rules.reverifyAfterMs)
      stale.push({ e, at: v.at });
  }
  const byStart = (a: CatalogEntry, b: CatalogEntry) => a.startTime.localeCompare(b.startTime);
  return [...fresh.sort(byStart), ...stale.sort((a, b) => a.at.localeCompare(b.at) || byStart(a.e, b.e)).map((s) => s.e)];
}

// ---- the run (operator) ----

export type VerificationStatus = NonNullable<PolicyCopyStatus["dataVerification"]>;
export type VerificationSpec = NonNullable<PolicyCopySpec["dataVerification"]>;
type Trigger = "Schedule" | "AfterCopy" | "Request";

export const OFF = "data verification is off for this copy (spec.dataVerification.enabled)";
export const NO_METADATA =
  "no data verification: its verdicts are kept beside the repository, and this copy's library (a REST server) has no place for them; verify this copy with restic check --read-data, or put it on a filesystem or S3 library";
/** How long a run waits for a lock another process holds before it tries again. */
const LOCK_RETRY_MS = 2 * 60_000;
/** The longest sleep while nothing is due. */
const MAX_SLEEP_MS = 3600_000;
/** How often a running run's progress is read into status. */
export const PROGRESS_EVERY_MS = 10_000;
const HISTORY = 10;
const DAY_MS = 86_400_000;

/** A pod the copy owns, as data verification reads it. */
export interface VerifyPod {
  name: string;
  task: string;
  active: boolean;
  result?: AgentOutcome<VerifyResult>;
}

export interface VerificationFacts {
  now: number;
  copy: {
    name: string;
    namespace: string;
    generation?: number;
    createdAt?: string;
    spec?: VerificationSpec;
    /** status.dataVerification as the cache shows it. */
    status: VerificationStatus;
    conditions?: Condition[];
    repositoryReady: boolean;
    repositoryId?: string;
    /** When the catalog was last read (undefined: never, and nothing runs yet). */
    lastScanTime?: string;
    /** The newest job the latest scan found (jobs from clients and backup copies land so). */
    newestJob?: string;
    /** The verification-requested annotation. */
    requestedAt?: string;
    /** What the run records beside the repository say, while status has no runs of its own (a rebuilt cluster). */
    recovered?: NonNullable<PolicyCopyStatus["recovered"]>["dataVerification"];
  };
  policy?: { name: string; timeZone?: string; operationWindows?: Window[] };
  /** The condition that keeps every pod off the copy's repository. */
  refusal?: { reason: string; message: string };
  library?: { name: string; ready: boolean; maxStreams: number; streamsInUse: number };
  /** The pods the copy owns. */
  pods: VerifyPod[];
  /** A live pod that prunes the repository (data aging): verification waits for it. */
  pruning?: string;
  /** When an aux copy last put jobs on this copy (AuxCopyJob history). */
  copiedAt?: number;
  /** The running pod's progress (read from its log), if known. */
  progress?: { jobsDone?: number; jobsTotal?: number; job?: string };
  pod?: Pick<AgentPodInput, "namespace" | "owner" | "image" | "target" | "placement">;
  deadHosts: string[];
  rejected?: { name: string; message: string }[];
}

export interface VerificationFields {
  dataVerification: VerificationStatus;
  conditions: Condition[];
}

export type VerificationPlan = Plan<VerificationFields, AgentPodInput> & { probe?: string };

export const verifyPodName = (copy: string, n: number): string => podName(copy, "verify", String(n));

/** The pods of the latest earlier runs (at most 5): ended, their locks are provably dead. */
export const earlierVerifyPods = (copy: string, runs: number): string[] =>
  Array.from({ length: Math.min(runs, 5) }, (_, i) => verifyPodName(copy, runs - 1 - i));

interface Run {
  f: VerificationFacts;
  spec: VerificationSpec;
  st: VerificationStatus;
  t: number;
  runs: number;
  tz: string;
  policy: NonNullable<VerificationFacts["policy"]>;
  pod: NonNullable<VerificationFacts["pod"]>;
  runPod?: VerifyPod;
  labels: Record<string, string>;
  deletes: string[];
}

/** The DataVerification condition: False while jobs of the latest run failed verification. */
function fields(f: VerificationFacts, s: VerificationStatus): VerificationFields {
  const bad = s.lastRun?.failed ?? 0;
  const condition =
    s.message === OFF
      ? { type: "DataVerification", status: "True" as const, reason: "Disabled", message: OFF }
      : bad > 0
        ? {
            type: "DataVerification",
            status: "False" as const,
            reason: "JobsFailedVerification",
            message: `${bad} jobs failed verification in run ${s.lastRun?.run}: ${(s.lastRun?.failedJobs ?? []).slice(0, 5).join(", ")}; they are Bad on this copy (docs/verification.md: Recopy repairs them)`,
          }
        : {
            type: "DataVerification",
            status: "True" as const,
            reason: "Verified",
            message: s.message ?? "data verification runs on schedule",
          };
  const conditions = setCondition(f.copy.conditions, condition, f.copy.generation, f.now).filter((c) => c.type === "DataVerification");
  return { dataVerification: s, conditions };
}

export function planVerification(f: VerificationFacts): VerificationPlan {
  const spec = f.copy.spec;
  // A copy that never verified has no part in status to clear.
  if (!spec?.enabled || !f.policy) return Object.keys(f.copy.status).length ? off(f) : {};
  if (f.refusal) return waitWithoutRun(f, `no data verification: ${f.refusal.message}`);
  if (!f.library?.ready || !f.copy.repositoryReady || !f.pod) return {};
  const badZone = checkTimeZone(f.policy.timeZone)[0];
  if (badZone) return waitWithoutRun(f, badZone.message);
  // Verdicts live beside the repository; a REST server library has no place for them.
  if (!f.pod.target.metadata) return waitWithoutRun(f, NO_METADATA);
  const st = f.copy.status;
  // The first scan says whether the library holds earlier runs' records (a rebuilt cluster): nothing runs before it.
  if (!f.copy.lastScanTime) return {};
  if (st.runs === undefined && f.copy.recovered) return rebuilt(f, f.copy.recovered);
  const runs = st.runs ?? 0;
  const r: Run = {
    f,
    spec,
    st,
    t: f.now,
    runs,
    tz: f.policy.timeZone ?? "UTC",
    policy: f.policy,
    pod: f.pod,
    runPod: f.pods.find((p) => p.task === "verify" && p.name === verifyPodName(f.copy.name, runs)),
    labels: { namespace: f.copy.namespace, policy: f.policy.name, copy: f.copy.name },
    deletes: f.pods.filter((p) => p.task === "verify" && p.name !== verifyPodName(f.copy.name, runs) && !p.active).map((p) => p.name),
  };
  const plan = runPodStep(r) ?? lockRetryStep(r) ?? dueStep(r);
  return r.deletes.length ? { ...plan, deletePods: [...r.deletes, ...(plan.deletePods ?? [])] } : plan;
}

/** A copy whose status lost its runs (a rebuilt cluster) starts from the run records beside its repository. */
function rebuilt(f: VerificationFacts, r: NonNullable<VerificationFacts["copy"]["recovered"]>): VerificationPlan {
  const message = `rebuilt from the run records beside the repository: ${r.runs} runs, the latest ended ${r.lastRunTime ?? "at an unknown time"}`;
  const last = r.lastRun;
  const s: VerificationStatus = {
    ...f.copy.status,
    runs: r.runs,
    phase: "Idle",
    message,
    lastRunTime: r.lastRunTime,
    lastRunStartTime: last?.startTime,
    ...(last?.trigger === "Schedule" && last.startTime ? { lastScheduledTime: last.startTime } : {}),
    // The jobs on the copy now were there before: only later ones are new to an afterCopy run.
    newestJobSeen: f.copy.newestJob,
    verifiedJobs: r.verifiedJobs,
    lastRun: last,
    history: r.history,
  };
  return {
    status: fields(f, s),
    events: [
      {
        type: "Normal",
        reason: "StatusRebuilt",
        message: `data verification ${message}`,
        once: `${f.copy.namespace}/${f.copy.name}/verification-rebuilt/${r.runs}`,
      },
    ],
    requeueAfterMs: 1000,
  };
}

function off(f: VerificationFacts): VerificationPlan {
  const st = f.copy.status;
  if (st.message === OFF && st.phase === "Idle" && !st.nextRunTime) return {};
  return { status: fields(f, { ...st, phase: "Idle", message: OFF, nextRunTime: undefined, progress: undefined }) };
}

function waitWithoutRun(f: VerificationFacts, message: string): VerificationPlan {
  const st = f.copy.status;
  return st.message === message ? {} : { status: fields(f, { ...st, phase: "Waiting", message, nextRunTime: undefined }) };
}

/** When the next scheduled run is due: `every` after the last run started (or after the copy was created). */
function scheduledAt(r: Run): number {
  const every = everyMs(r.spec);
  const last = parseTime(r.st.lastScheduledTime) ?? parseTime(r.f.copy.createdAt) ?? r.t;
  return last + every;
}

function everyMs(spec: VerificationSpec): number {
  try {
    return parseDuration("schedule.every", spec.schedule?.every ?? "24h");
  } catch {
    return DAY_MS; // the API validates the duration; an object from before that rule runs daily
  }
}

/** What starts a run now, if anything: a request, the schedule, or jobs that landed since the last run. */
function trigger(r: Run): { trigger: Trigger; mode: "new" | "due" } | { wake: number } {
  const { st, t, f } = r;
  const lastStart = parseTime(st.lastRunStartTime);
  // A request is answered once (status.lastRequest), whatever the precision of the time it names.
  const asked = parseTime(f.copy.requestedAt);
  if (asked !== undefined && asked <= t && f.copy.requestedAt !== st.lastRequest && (lastStart === undefined || asked >= lastStart - 1000))
    return { trigger: "Request", mode: "due" };
  const scheduled = r.spec.schedule?.suspend ? undefined : scheduledAt(r);
  if (scheduled !== undefined && scheduled <= t) return { trigger: "Schedule", mode: "due" };
  if (r.spec.afterCopy && landedSinceLastRun(r)) return { trigger: "AfterCopy", mode: "new" };
  return { wake: Math.min(scheduled !== undefined ? scheduled - t : MAX_SLEEP_MS, MAX_SLEEP_MS) };
}

/** Jobs landed on the copy since the last run started: an aux copy copied to it, or a scan found a newer job. */
function landedSinceLastRun(r: Run): boolean {
  const { st, f } = r;
  const lastStart = parseTime(st.lastRunStartTime);
  if (f.copy.newestJob && f.copy.newestJob !== st.newestJobSeen) return true;
  return f.copiedAt !== undefined && (lastStart === undefined || f.copiedAt >= lastStart);
}

/** The current run's pod: running (its progress), ended (its result goes to status), or done with (it goes). */
function runPodStep(r: Run): VerificationPlan | undefined {
  const pod = r.runPod;
  if (!pod) return undefined;
  const res = pod.result;
  if (!res) {
    const p = r.f.progress;
    const progress = p?.jobsTotal !== undefined ? { jobsDone: p.jobsDone ?? 0, jobsTotal: p.jobsTotal, job: p.job } : r.st.progress;
    const message = `verification run ${r.runs} in pod ${pod.name}${progress ? `: ${progress.jobsDone} of ${progress.jobsTotal} jobs read` : ""}`;
    const same = r.st.phase === "Running" && r.st.message === message;
    return { status: same ? undefined : write(r, { ...r.st, phase: "Running", message, progress }), requeueAfterMs: PROGRESS_EVERY_MS };
  }
  if (r.st.lastRunTime !== res.at && r.st.lockedRunTime !== res.at) return runEnded(r, res);
  r.deletes.push(pod.name);
  return undefined;
}

const write = (r: Run, s: VerificationStatus): VerificationFields => fields(r.f, s);
const runsMetric = (r: Run, result: string): MetricDelta => ({ metric: "verificationRuns", labels: { ...r.labels, result }, value: 1 });

/** A run that ended: the result, the history, events and metrics once; the pod goes on the next pass. */
function runEnded(r: Run, res: AgentOutcome<VerifyResult>): VerificationPlan {
  const once = `${r.f.copy.namespace}/${r.f.copy.name}/verify/${r.runs}/${res.at ?? ""}`;
  const d = res.data;
  if (!res.ok && d.kind === "LockHeld") {
    const retryAt = (parseTime(res.at) ?? r.t) + LOCK_RETRY_MS;
    return {
      status: write(r, {
        ...r.st,
        lockedRunTime: res.at,
        phase: "Waiting",
        message: `${res.message}; trying again at ${formatTime(retryAt)}`,
        retryTime: formatTime(retryAt),
        progress: undefined,
      }),
      events: [{ type: "Warning", reason: "LockHeld", message: `data verification waits: ${res.message}`, once }],
      requeueAfterMs: 1000,
    };
  }
  // A run that read every job it chose, some of them damaged, is complete: those jobs are Bad.
  const completed = res.ok || (d.kind === "CorruptData" && typeof d.verified === "number");
  const failed = completed ? (d.failed ?? d.failedJobs?.length ?? 0) : 0;
  const result = !completed ? "Failed" : failed > 0 ? "CompletedWithFailures" : "Completed";
  const jobs = d.jobs ?? (d.verified ?? 0) + failed;
  const message = !completed
    ? `verification run ${r.runs} failed: ${res.message}`
    : `verification run ${r.runs} read ${jobs} jobs: ${d.verified ?? 0} passed, ${failed} failed${failed ? ` (${(d.failedJobs ?? []).slice(0, 5).join(", ")})` : ""}`;
  const lastRun = {
    run: r.runs,
    trigger: r.st.trigger,
    startTime: r.st.lastRunStartTime,
    completionTime: res.at,
    jobs,
    verified: d.verified ?? 0,
    failed,
    failedJobs: failed ? (d.failedJobs ?? []).slice(0, 20) : undefined,
    bytes: d.bytes,
    result,
    message: completed ? undefined : res.message.slice(0, 512),
  };
  const history = [
    {
      run: r.runs,
      trigger: r.st.trigger,
      startTime: r.st.lastRunStartTime,
      completionTime: res.at,
      jobs,
      verified: lastRun.verified,
      failed,
      result,
    },
    ...(r.st.history ?? []),
  ].slice(0, HISTORY);
  const events: PlannedEvent[] = [
    completed && failed === 0
      ? { type: "Normal", reason: "VerificationCompleted", message, once }
      : completed
        ? { type: "Warning", reason: "JobsFailedVerification", message: `${message}; they are Bad on this copy`, once }
        : { type: "Warning", reason: "VerificationFailed", message, once },
  ];
  const metrics: MetricDelta[] = [
    { ...runsMetric(r, result === "Failed" ? "failed" : "completed"), once },
    { metric: "verifiedJobs", labels: { ...r.labels, result: "ok" }, value: lastRun.verified, once: `${once}/ok` },
    { metric: "verifiedJobs", labels: { ...r.labels, result: "failed" }, value: failed, once: `${once}/failed` },
  ];
  return {
    status: write(r, {
      ...r.st,
      phase: "Idle",
      message,
      lastRunTime: res.at,
      retryTime: undefined,
      progress: undefined,
      lastRun,
      history,
      verifiedJobs: (r.st.verifiedJobs ?? 0) + jobs,
    }),
    events,
    metrics,
    requeueAfterMs: 1000,
    ...(!completed && d.kind === "Unreachable" ? { probe: `data verification: ${res.message}` } : {}),
  };
}

/** A run that found the repository locked by another process tries again at its retry time. */
function lockRetryStep(r: Run): VerificationPlan | undefined {
  const retryAt = r.st.phase === "Waiting" ? parseTime(r.st.retryTime) : undefined;
  return retryAt !== undefined && retryAt > r.t ? { requeueAfterMs: retryAt - r.t } : undefined;
}

function waiting(r: Run, message: string, requeueAfterMs: number, nextRunTime?: string, event?: string): VerificationPlan {
  const same = r.st.phase === "Waiting" && r.st.message === message;
  return {
    status: same ? undefined : write(r, { ...r.st, phase: "Waiting", message, ...(nextRunTime ? { nextRunTime } : {}) }),
    events: event && !same ? [{ type: "Normal", reason: event, message: `data verification waits: ${message}` }] : [],
    requeueAfterMs,
  };
}

/** Nothing running: wait for what is due, then windows, a prune and the library's streams, then the run. */
function dueStep(r: Run): VerificationPlan {
  const { st, t } = r;
  // A run recorded as starting gets its pod, unless a prune started meanwhile.
  if (st.phase === "Starting") {
    if (r.f.pruning)
      return { status: write(r, { ...st, message: `data aging pod ${r.f.pruning} prunes the repository` }), requeueAfterMs: 10_000 };
    return startRun(r);
  }
  const why = trigger(r);
  const nextRunTime = r.spec.schedule?.suspend ? undefined : formatTime(scheduledAt(r));
  if ("wake" in why) {
    const settled = st.phase === "Idle" && st.nextRunTime === nextRunTime;
    return {
      status: settled ? undefined : write(r, { ...st, phase: "Idle", nextRunTime, retryTime: undefined }),
      requeueAfterMs: why.wake,
    };
  }
  const blocked = blockingWindow(r.policy.operationWindows, "DataVerification", t, r.tz);
  if (blocked)
    return waiting(
      r,
      `operation window "${blocked.window.name}" until ${formatTime(blocked.endsAt)}`,
      Math.max(blocked.endsAt - t, 1000),
      nextRunTime,
      "OperationWindow",
    );
  if (r.f.pruning) return waiting(r, `data aging pod ${r.f.pruning} prunes the repository`, 10_000, nextRunTime);
  const lib = r.f.library as NonNullable<VerificationFacts["library"]>;
  if (lib.streamsInUse >= lib.maxStreams)
    return waiting(r, `all ${lib.maxStreams} streams of library ${lib.name} are in use`, 10_000, nextRunTime);
  // The run is recorded before its pod exists (a stale cache then names the same pod), then the pod starts.
  const started: VerificationStatus = {
    ...st,
    runs: r.runs + 1,
    phase: "Starting",
    trigger: why.trigger,
    mode: why.mode,
    message: `verification run ${r.runs + 1} starting (${why.trigger})`,
    lastRunStartTime: formatTime(t),
    ...(why.trigger === "Schedule" ? { lastScheduledTime: formatTime(t) } : {}),
    ...(why.trigger === "Request" ? { lastRequest: r.f.copy.requestedAt } : {}),
    newestJobSeen: r.f.copy.newestJob ?? st.newestJobSeen,
    nextRunTime: why.trigger === "Schedule" && !r.spec.schedule?.suspend ? formatTime(t + everyMs(r.spec)) : nextRunTime,
    retryTime: undefined,
    lockedRunTime: undefined,
    progress: undefined,
  };
  return { status: write(r, started), requeueAfterMs: 500 };
}

function startRun(r: Run): VerificationPlan {
  const name = verifyPodName(r.f.copy.name, r.runs);
  const refused = r.f.rejected?.find((x) => x.name === name);
  if (!refused) return { pods: [runPod(r, name)], requeueAfterMs: PROGRESS_EVERY_MS };
  const once = `${r.f.copy.namespace}/${name}/rejected`;
  return {
    status: write(r, {
      ...r.st,
      phase: "Idle",
      message: `verification run ${r.runs} failed: ${refused.message}`,
      lastRunTime: formatTime(r.t),
    }),
    events: [{ type: "Warning", reason: "PodRejected", message: `verification run ${r.runs}: ${refused.message}`, once }],
    metrics: [{ ...runsMetric(r, "failed"), once }],
  };
}

function runPod(r: Run, name: string): AgentPodInput {
  const task: VerificationTask = {
    scope: r.spec.scope ?? "AllJobs",
    ...(r.spec.onOrAfter ? { onOrAfter: r.spec.onOrAfter } : {}),
    ...(r.spec.reverifyAfterDays ? { reverifyAfterMs: r.spec.reverifyAfterDays * DAY_MS } : {}),
    mode: r.st.mode === "new" ? "new" : "due",
    at: formatTime(r.t),
    run: r.runs,
    trigger: r.st.trigger,
    startTime: r.st.lastRunStartTime,
  };
  const lib = r.f.library as NonNullable<VerificationFacts["library"]>;
  return {
    ...r.pod,
    task: "verify",
    name,
    target: { ...r.pod.target, repositoryId: r.f.copy.repositoryId },
    verification: task,
    locks: { deadHosts: r.f.deadHosts },
    deadlineSeconds: 12 * 3600,
    // A verify pod reads the library: it takes one of its streams, like a copy (agent/busy.ts STREAM_TASKS).
    labels: { [Label.copy]: labelValue(r.f.copy.name), [Label.targetLibrary]: labelValue(lib.name) },
    annotations: { [Annotation.copy]: r.f.copy.name },
  };
}

/** When an aux copy last put jobs on `copy` (AuxCopyJob history, and parts that ended having copied jobs). */
export function copiedToAt(copy: string, jobs: { status?: AuxCopyJobStatus }[]): number | undefined {
  let latest: number | undefined;
  const later = (t: number | undefined) => {
    if (t !== undefined && (latest === undefined || t > latest)) latest = t;
  };
  for (const j of jobs) {
    for (const h of j.status?.history ?? []) if (h.result === "Copied" && h.copy === copy) later(parseTime(h.time));
    for (const p of j.status?.copies ?? []) if ((p.settledJobsCopied ?? 0) > 0 && p.name === copy) later(parseTime(p.completionTime));
  }
  return latest;
}
