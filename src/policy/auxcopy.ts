// One target copy's part of an aux copy run: the phase switch. Each situation a part can be in (no such copy, its
// source not filled yet, parked, a pod that has not ended, a pod that ended, no pod for this attempt yet) is a named
// function that takes the part as the last status shows it and the facts gathered now, and says the part's next
// state, the pod to start, the events, metrics and when to look again. Pure: time comes in as `now` (ms).
//
// Attempts are counted in status and pod names carry the attempt and the pass, so a restarted operator neither loses
// nor repeats one; jobs a killed attempt finished are on the target, and the next attempt skips them.
import type { AuxCopyJobSpec, AuxCopyJobStatus } from "../api/v1alpha1/index.ts";
import { Label } from "./labels.ts";
import { formatTime, parseTime } from "./time.ts";
import type { OwnerReference } from "../kube/resources.ts";
import { podName } from "./names.ts";
import type { AgentPodInput, PodPlacement } from "../mediaagent/pod.ts";
import type { CopyResult } from "../mediaagent/protocol.ts";
import { labelValue } from "./names.ts";
import type { MetricDelta, PlannedEvent } from "./plan.ts";
import { probeBackoffMs } from "./probe.ts";
import { checkTimeZone } from "./references.ts";
import type { RepositoryAccess } from "./repository.ts";
import type { CopyRules } from "./selection.ts";
import { allocateStream, queuePosition } from "./streams.ts";
import { blockingWindow, type Window } from "./windows.ts";

export type CopyPart = NonNullable<AuxCopyJobStatus["copies"]>[number];
export type HistoryEntry = NonNullable<AuxCopyJobStatus["history"]>[number];

/** Failed attempts of one pass before the part fails (waits for a lock held by another process do not count). */
export const MAX_ATTEMPTS = 4;

export const TERMINAL = new Set(["Completed", "CompletedWithErrors", "Failed", "Killed"]);

export interface LibraryFacts {
  name: string;
  phase?: string;
  maxStreams: number;
}

/** A copy as the source or the target of a part. */
export interface CopySide {
  name: string;
  /** Undefined: its library does not exist. */
  library?: LibraryFacts;
  /** Why no pod may write or read its repository (shared, replaced, outside its namespace), if so. */
  refusal?: { reason: string; message: string };
  repositoryReady: boolean;
  /** A pod's access to its repository, with the repository ID the pod checks before it writes. */
  access?: RepositoryAccess;
  /** The copy's own mediaAgent settings. */
  placement?: PodPlacement;
}

export interface TargetCopy extends CopySide {
  /** The source in force (its sourceCopy, else the primary). */
  source: string;
  /** The message of a BackupsRequired hold on the copy: its aux copies wait. */
  hold?: string;
  rules: CopyRules;
}

/** A finished pod's result, typed by the agent protocol. */
export interface PodOutcome {
  ok: boolean;
  message: string;
  at?: string;
  data: Partial<CopyResult>;
}

export interface PodProgress {
  jobsDone?: number;
  jobsTotal?: number;
  bytesDone?: number;
  bytesTotal?: number;
  job?: string;
  backendError?: string;
}

/** The pod of the part's current attempt, as the cache shows it. */
export interface PartPod {
  name: string;
  uid?: string;
  createdAt?: number;
  /** Why it has not started, once it has been Pending a while. */
  stuck?: string;
  /** Set once it ended. */
  result?: PodOutcome;
  /** Read from its log in this reconcile (at most once a progress interval). */
  progress?: PodProgress;
  /** When its progress was last read. */
  progressReadAt?: number;
}

export interface TargetFacts {
  name: string;
  /** Undefined: no secondary copy of the policy has that name. */
  copy?: TargetCopy;
  /** Undefined: the source copy does not exist. */
  sourceCopy?: CopySide;
  /** A pruning data aging pod on the target's or the source's repository. */
  agingPod?: string;
  pod?: PartPod;
  /** Host names of ended Auxo pods, whose locks the next pod may remove. */
  deadHosts: string[];
}

/** Another unfinished job of the same policy. */
export interface OtherJob {
  name: string;
  uid?: string;
  createdAt: string;
  phase?: string;
  /** False until the job has any status. */
  hasStatus: boolean;
  specCopies?: string[];
  parts: { name: string; phase?: string }[];
}

export interface RunFacts {
  job: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion?: string;
    createdAt: string;
    labels?: Record<string, string>;
    spec: AuxCopyJobSpec;
    status: AuxCopyJobStatus;
    /** The controller reference its pods carry. */
    owner: OwnerReference;
  };
  policy?: { name: string; primaryCopy: string; timeZone?: string; operationWindows?: Window[] };
  /** Names of the job's own pods (every attempt). */
  pods: string[];
  /** Per target copy, in name order. */
  targets: TargetFacts[];
  others: OtherJob[];
  /** Other jobs of the namespace with a part waiting for a stream: the queue. */
  streamQueue: { createdAt: string; name: string }[];
  /** Live copy pods: this job's, and by library (as target or source). */
  streams: { job: number; byLibrary: Record<string, number> };
  settings: { agentImage: string; retryBaseMs?: number; progressIntervalMs?: number; pendingGiveUpMs: number };
  now: number;
  /** Pods the API server refused in this reconcile (a second plan decides on them). */
  rejected?: { name: string; message: string }[];
}

/** What the parts of one reconcile add up to, besides their states. */
export interface PartEffects {
  pods: AgentPodInput[];
  deletePods: string[];
  events: PlannedEvent[];
  metrics: MetricDelta[];
  /** Libraries to probe now (a pod found its storage unreachable). */
  probes: { library: string; why: string }[];
  history: HistoryEntry[];
  /** Streams of pods this reconcile starts, by their libraries: the cache does not show them yet. */
  started: string[][];
  requeueAfterMs?: number;
}

/** What a part's decision reads besides its own facts. */
export interface RunContext {
  f: RunFacts;
  policy: NonNullable<RunFacts["policy"]>;
  targetNames: string[];
  previous: Map<string, CopyPart>;
  /** Parts decided so far in this reconcile. */
  parts: CopyPart[];
  /** When the run started (now, for its first reconcile). */
  started: string;
  fx: PartEffects;
}

const soon = (fx: PartEffects, ms: number) => (fx.requeueAfterMs = Math.min(fx.requeueAfterMs ?? ms, ms));
const settled = (phase: string | undefined) => phase === "Completed" || phase === "CompletedWithErrors" || phase === "Failed";

/** The pod of a part's attempt in a pass: deterministic, so a retried reconcile never starts it twice. */
export function partPodName(job: string, copy: string, pass: number, attempt: number): string {
  return podName(job, copy, ...(pass > 1 ? [`p${pass}`] : []), String(attempt));
}

/** The attempt and pass a part is at. */
export const attemptOf = (p: CopyPart): { attempt: number; pass: number } => ({ attempt: Math.max(p.attempts ?? 0, 1), pass: p.pass ?? 1 });

/** Failed attempts so far in this pass, lock waits not counted. */
const outOfAttempts = (prev: CopyPart, attempt: number) => attempt - (prev.lockWaits ?? 0) >= MAX_ATTEMPTS;

/** The next state of one target copy's part. */
export function planPart(ctx: RunContext, t: TargetFacts): CopyPart {
  const prev: CopyPart = ctx.previous.get(t.name) ?? { name: t.name };
  const part: CopyPart = { ...prev, name: t.name };
  if (part.phase === "Completed" || part.phase === "Failed") return part;
  const copy = t.copy;
  if (!copy) return notASecondaryCopy(part, ctx.policy.name);
  part.source = copy.source;
  if (sourceNotFilled(ctx, copy.source)) return waiting(part, `waiting for its source copy "${copy.source}" to be filled by this run`);
  const parked = whyParked(t, copy);
  if (parked) {
    if (parked.recheckMs) soon(ctx.fx, parked.recheckMs);
    if (parked.reason) part.reason = parked.reason;
    return waiting(part, parked.message);
  }
  const pod = t.pod;
  if (pod && !pod.result) return podNotEnded(ctx, t, prev, part, pod);
  if (pod?.result) return podEnded(ctx, t, prev, part, pod, pod.result);
  return noPodYet(ctx, t, prev, part);
}

function notASecondaryCopy(part: CopyPart, policy: string): CopyPart {
  return Object.assign(part, { phase: "Failed", message: `"${part.name}" is not a secondary copy of storage policy "${policy}"` });
}

function waiting(part: CopyPart, message: string): CopyPart {
  return Object.assign(part, { phase: "Waiting", message });
}

/** A cascade: the source is itself a target of this run, and its part is not done. */
function sourceNotFilled(ctx: RunContext, source: string): boolean {
  const upstream =
    ctx.parts.find((p) => p.name === source) ??
    ctx.previous.get(source) ??
    (ctx.targetNames.includes(source) ? { phase: "Pending" } : undefined);
  return upstream !== undefined && !settled(upstream.phase);
}

/** Why the part cannot work now though nothing failed: a missing or unready library or repository, a prune, a hold. */
function whyParked(t: TargetFacts, copy: TargetCopy): { message: string; reason?: string; recheckMs?: number } | undefined {
  const source = t.sourceCopy;
  if (!source || !copy.library || !source.library) return { message: `source copy "${copy.source}", or a library, does not exist` };
  // A library outage parks the copy instead of failing it; it resumes when the probe sees the library again.
  const down = [copy.library, source.library].find((l) => l.phase !== "Ready");
  if (down) return { message: `library "${down.name}" is ${down.phase ?? "not probed yet"}` };
  // Data aging prunes with restic's exclusive lock: a copy into or out of that repository waits for it.
  if (t.agingPod) return { message: `data aging runs on the repository (pod ${t.agingPod})`, recheckMs: 5000 };
  if (copy.hold !== undefined) return { message: copy.hold };
  // A repository shared with another copy, or replaced at its location, is never written or read for this copy.
  const refused = [copy, source].find((c) => c.refusal);
  if (refused?.refusal) return { message: `copy "${refused.name}": ${refused.refusal.message}`, reason: refused.refusal.reason };
  if (!copy.repositoryReady || !source.repositoryReady)
    return { message: `repository of "${copy.repositoryReady ? source.name : copy.name}" is not initialised yet` };
  return undefined;
}

/** The attempt's pod exists and has not ended: it runs, or it never got scheduled. */
function podNotEnded(ctx: RunContext, t: TargetFacts, prev: CopyPart, part: CopyPart, pod: PartPod): CopyPart {
  const { f, fx } = ctx;
  const { attempt } = attemptOf(prev);
  const stuck = pod.stuck;
  if (stuck)
    fx.events.push({
      type: "Warning",
      reason: "PodNotScheduled",
      message: `copy "${t.name}": ${stuck}`,
      once: `${f.job.uid}/pending/${pod.uid ?? pod.name}`,
    });
  if (stuck && f.now - (pod.createdAt ?? f.now) > f.settings.pendingGiveUpMs) {
    // A pod that never starts counts as a failed attempt: the run goes on (or ends) instead of waiting forever.
    fx.deletePods.push(pod.name);
    const retryAt = f.now + probeBackoffMs(attempt, f.settings.retryBaseMs);
    soon(fx, Math.max(retryAt - f.now, 1000));
    return Object.assign(part, {
      phase: outOfAttempts(prev, attempt) ? "Failed" : "Retrying",
      reason: "PodNotScheduled",
      attempts: attempt + 1,
      nextAttemptTime: formatTime(retryAt),
      message: stuck,
    });
  }
  return podRunning(ctx, t, prev, part, pod);
}

/** Running: its live progress, over what the part's ended pods copied. */
function podRunning(ctx: RunContext, t: TargetFacts, prev: CopyPart, part: CopyPart, pod: PartPod): CopyPart {
  const { f, fx } = ctx;
  const { attempt } = attemptOf(prev);
  const source = (t.copy as TargetCopy).source;
  part.phase = "Running";
  part.reason = pod.stuck ? "PodNotScheduled" : undefined;
  part.attempts = attempt;
  part.startTime ??= formatTime(f.now);
  const pr = pod.progress;
  if (pr) {
    const jobs = prev.settledJobsCopied ?? 0;
    const bytes = prev.settledBytesCopied ?? 0;
    if (pr.jobsTotal !== undefined) part.jobsSelected = jobs + pr.jobsTotal;
    if (pr.jobsDone !== undefined) part.jobsCopied = jobs + pr.jobsDone;
    if (pr.bytesDone !== undefined) part.bytesCopied = bytes + pr.bytesDone;
    if (pr.bytesTotal !== undefined) part.bytesTotal = bytes + pr.bytesTotal;
    part.currentJob = pr.job;
    // restic is retrying its storage: probe both libraries now, so an outage shows (and parks the part) soon.
    if (pr.backendError) probeBoth(fx, t, `copy pod ${pod.name}: ${pr.backendError}`);
    const secs = (f.now - (parseTime(part.startTime) ?? f.now)) / 1000;
    if (secs > 0 && pr.bytesDone) {
      part.throughput = Math.round(pr.bytesDone / secs);
      if (pr.bytesTotal && part.throughput > 0) part.etaSeconds = Math.round((pr.bytesTotal - pr.bytesDone) / part.throughput);
    }
  }
  part.message = pod.stuck ?? `copying from "${source}" (attempt ${attempt})`;
  // At most one log read per pod per interval: the status write a read causes wakes the controller again.
  const interval = f.settings.progressIntervalMs ?? 2000;
  soon(fx, Math.max(100, interval - (f.now - (pod.progressReadAt ?? 0))));
  return part;
}

function probeBoth(fx: PartEffects, t: TargetFacts, why: string): void {
  for (const l of [t.copy?.library, t.sourceCopy?.library]) if (l) fx.probes.push({ library: l.name, why });
}

/** The attempt's pod ended: take its result, then go on to the next pass, complete, wait for a lock, retry or fail. */
function podEnded(ctx: RunContext, t: TargetFacts, prev: CopyPart, part: CopyPart, pod: PartPod, r: PodOutcome): CopyPart {
  const copiedNow = takeResult(ctx, t, prev, part, pod, r);
  if (r.ok) return podSucceeded(ctx, t, prev, part, r, copiedNow);
  if (r.data.kind === "Unreachable") probeBoth(ctx.fx, t, `copy pod ${pod.name}: ${r.message}`);
  if (r.data.kind === "LockHeld") return lockHeld(ctx, t, prev, part, r);
  return podFailed(ctx, t, prev, part, r);
}

/** Counts, history, metrics and job states from an ended pod; returns the jobs it copied. */
function takeResult(ctx: RunContext, t: TargetFacts, prev: CopyPart, part: CopyPart, pod: PartPod, r: PodOutcome): number {
  const { f, fx } = ctx;
  const d = r.data;
  addHistory(ctx, t.name, r);
  const jobs = prev.settledJobsCopied ?? 0;
  const bytes = prev.settledBytesCopied ?? 0;
  // A pod that died without a result leaves only its last progress as the count of what it finished.
  const copiedNow = d.copied ?? Math.max(0, (part.jobsCopied ?? jobs) - jobs);
  const bytesNow = d.bytes ?? Math.max(0, (part.bytesCopied ?? bytes) - bytes);
  // The job events beside the repository give the exact count, also after a killed pod (never below what the pods
  // said they copied: an event lost to a storage outage must not lower the count).
  part.settledJobsCopied = Math.max(d.runCopied ?? 0, jobs + copiedNow);
  part.settledBytesCopied = bytes + bytesNow;
  part.jobsCopied = part.settledJobsCopied;
  part.bytesCopied = part.settledBytesCopied;
  const labels = { namespace: f.job.namespace, policy: ctx.policy.name, copy: t.name };
  // A reconcile on a cache that does not show this result in status yet sees the pod again: count it once.
  const once = pod.uid ?? pod.name;
  fx.metrics.push({ metric: "copiedJobs", labels, value: copiedNow, once }, { metric: "copiedBytes", labels, value: bytesNow, once });
  fx.metrics.push({ metric: "copyBacklog", labels, value: d.remaining ?? 0 });
  if (d.lagSeconds !== undefined) {
    part.lagSeconds = d.lagSeconds;
    fx.metrics.push({ metric: "copyLag", labels, value: d.lagSeconds });
  }
  if (d.selected !== undefined) part.jobsSelected = jobs + d.selected;
  // A Recopy of a job Bad on the target salvaged damaged packs first (restic repair packs removed them): say so.
  if (d.repairedPacks?.length) {
    part.repairedPacks = (prev.repairedPacks ?? 0) + d.repairedPacks.length;
    fx.events.push({
      type: "Warning",
      reason: "PacksRepaired",
      message: `copy ${t.name}: salvaged ${d.repairedPacks.length} damaged pack(s) (${d.repairedPacks.map((p) => p.slice(0, 12)).join(", ")}) before copying Bad jobs again; their intact blobs were kept`,
      once: `${once}/repaired`,
    });
  }
  // States as the pod's selection saw them, before it copied: what it copied is Available now.
  if (d.counts && r.ok) {
    const moved = d.selected ?? 0;
    part.jobStates = {
      ...d.counts,
      Available: d.counts.Available + moved,
      ToBeCopied: Math.max(0, d.counts.ToBeCopied + d.counts.PartiallyCopied - moved),
      PartiallyCopied: 0,
    };
  } else if (d.counts) part.jobStates = d.counts;
  part.jobsRemaining = d.remaining;
  part.currentJob = undefined;
  part.etaSeconds = undefined;
  return copiedNow;
}

/**
 * The run's history: the jobs this pod copied or could not copy (bounded; the job events keep all). Added by content,
 * so a reconcile on a cache without the last write adds them again rather than losing them.
 */
function addHistory(ctx: RunContext, copy: string, r: PodOutcome): void {
  const history = ctx.fx.history;
  const at = r.at ?? formatTime(ctx.f.now);
  const seen = new Set(history.map((h) => `${h.copy}/${h.jobId}/${h.time}`));
  const add = (jobId: string, result: "Copied" | "Failed") => {
    if (seen.has(`${copy}/${jobId}/${at}`)) return;
    history.push({ jobId, copy, result, time: at, ...(result === "Failed" ? { message: r.message.slice(0, 200) } : {}) });
  };
  for (const j of r.data.copiedJobs ?? []) add(String(j), "Copied");
  if (!r.ok) for (const j of r.data.failedJobs ?? []) add(String(j), "Failed");
}

function podSucceeded(ctx: RunContext, t: TargetFacts, prev: CopyPart, part: CopyPart, r: PodOutcome, copiedNow: number): CopyPart {
  const spec = ctx.f.job.spec;
  const { pass } = attemptOf(prev);
  // Scalable resource allocation: jobs that reached the source while this pass ran are picked up by another pass,
  // until one finds nothing new (not with doNotPickNewBackups, nor past the job limit).
  if (copiedNow > 0 && !r.data.remaining && spec.scalableResourceAllocation !== false && !spec.doNotPickNewBackups) {
    soon(ctx.fx, 500);
    return Object.assign(part, {
      phase: "Pending",
      pass: pass + 1,
      attempts: 0,
      message: `pass ${pass} copied ${copiedNow} jobs; looking for new ones`,
    });
  }
  Object.assign(part, {
    phase: "Completed",
    jobsSelected: part.settledJobsCopied,
    jobsFailed: 0,
    bytesTotal: part.settledBytesCopied,
    message: `copied ${part.settledJobsCopied} jobs from "${(t.copy as TargetCopy).source}"`,
  });
  part.completionTime = r.at;
  ctx.fx.events.push({ type: "Normal", reason: "CopyCompleted", message: `copy "${t.name}": ${part.message}` });
  return part;
}

/**
 * Another process holds a lock Auxo cannot prove is its own and dead: wait and try again, without counting it as a
 * failed attempt (the run's running-time limit still bounds the wait).
 */
function lockHeld(ctx: RunContext, t: TargetFacts, prev: CopyPart, part: CopyPart, r: PodOutcome): CopyPart {
  const { f, fx } = ctx;
  const { attempt } = attemptOf(prev);
  const waits = (prev.lockWaits ?? 0) + 1;
  const retryAt = (parseTime(r.at) ?? f.now) + Math.min(probeBackoffMs(Math.min(waits, 4), f.settings.retryBaseMs), 5 * 60_000);
  Object.assign(part, {
    phase: "Waiting",
    reason: "LockHeld",
    attempts: attempt + 1,
    lockWaits: waits,
    nextAttemptTime: formatTime(retryAt),
    message: `${r.message}; trying again at ${formatTime(retryAt)}`,
  });
  if (waits === 1) fx.events.push({ type: "Warning", reason: "LockHeld", message: `copy "${t.name}": ${r.message}` });
  soon(fx, Math.max(retryAt - f.now, 1000));
  return part;
}

/** A failed attempt: retried after back-off (the count is in status before the next pod exists), or the part fails. */
function podFailed(ctx: RunContext, t: TargetFacts, prev: CopyPart, part: CopyPart, r: PodOutcome): CopyPart {
  const { f, fx } = ctx;
  const { attempt } = attemptOf(prev);
  const kind = r.data.kind;
  if (r.data.retryable === false || outOfAttempts(prev, attempt)) {
    Object.assign(part, {
      phase: "Failed",
      reason: kind,
      jobsFailed: Math.max(0, (part.jobsSelected ?? 0) - (part.jobsCopied ?? 0)),
      message: `attempt ${attempt}: ${r.message}`,
    });
    part.completionTime = r.at;
    fx.events.push({ type: "Warning", reason: "CopyFailed", message: `copy "${t.name}" failed: ${r.message}` });
    return part;
  }
  const retryAt = (parseTime(r.at) ?? f.now) + probeBackoffMs(attempt, f.settings.retryBaseMs);
  Object.assign(part, {
    phase: "Retrying",
    reason: kind,
    attempts: attempt + 1,
    nextAttemptTime: formatTime(retryAt),
    message: `attempt ${attempt} failed (${r.message}); retrying at ${formatTime(retryAt)}`,
  });
  fx.events.push({ type: "Warning", reason: "CopyRetrying", message: `copy "${t.name}": ${part.message}` });
  soon(fx, Math.max(retryAt - f.now, 1000));
  return part;
}

/** No pod for this attempt yet: it starts unless an older job, a back-off, the time zone, a window or streams hold it. */
function noPodYet(ctx: RunContext, t: TargetFacts, prev: CopyPart, part: CopyPart): CopyPart {
  const { f, fx } = ctx;
  const ahead = olderJobAhead(f, t.name);
  if (ahead) return Object.assign(part, { phase: "Queued", message: `queued behind auxcopyjob ${ahead}, which copies to "${t.name}"` });
  const retryAt = parseTime(prev.nextAttemptTime);
  if (retryAt !== undefined && retryAt > f.now) {
    part.phase = prev.reason === "LockHeld" ? "Waiting" : "Retrying";
    soon(fx, retryAt - f.now);
    return part;
  }
  // An unknown time zone: its windows and calendars cannot be read, so no copy pod starts.
  const badZone = checkTimeZone(ctx.policy.timeZone)[0];
  if (badZone) return waiting(part, badZone.message);
  // An operation window: no new copy pod starts inside it; running ones go on.
  const blocked = blockingWindow(ctx.policy.operationWindows, "AuxCopy", f.now, ctx.policy.timeZone ?? "UTC");
  if (blocked) {
    soon(fx, Math.max(blocked.endsAt - f.now, 1000));
    return Object.assign(part, {
      phase: "Queued",
      message: `operation window "${blocked.window.name}" until ${formatTime(blocked.endsAt)}`,
    });
  }
  const noStream = streamRefusal(ctx, t);
  if (noStream) {
    const position = queuePosition({ createdAt: f.job.createdAt, name: f.job.name }, f.streamQueue);
    soon(fx, 5000); // a freed stream also wakes it (the other job's status changes)
    return Object.assign(part, {
      phase: "Waiting",
      queuePosition: position,
      message: `waiting for a stream: ${noStream}; position ${position} in the queue`,
    });
  }
  part.queuePosition = undefined;
  const { attempt } = attemptOf(prev);
  if ((prev.attempts ?? 0) < attempt) {
    // Record the attempt before its pod exists: a stale cache after a restart must not start another.
    soon(fx, 500);
    return Object.assign(part, { phase: "Pending", attempts: attempt, message: `starting attempt ${attempt}` });
  }
  const rejected = f.rejected?.find((p) => p.name === partPodName(f.job.name, t.name, attemptOf(prev).pass, attempt));
  return rejected ? podRejected(ctx, t, prev, part, rejected.message) : startPod(ctx, t, prev, part);
}

/**
 * An older unfinished job of the policy with a part for the same copy goes first: two copies into one repository at
 * once could both copy the same job.
 */
function olderJobAhead(f: RunFacts, copy: string): string | undefined {
  const me = { name: f.job.name, createdAt: f.job.createdAt };
  return f.others
    .filter((o) => o.uid !== f.job.uid && !TERMINAL.has(o.phase ?? "") && older(o, me))
    .find(
      (o) =>
        o.parts.some((c) => c.name === copy && c.phase !== "Completed" && c.phase !== "Failed") ||
        (!o.hasStatus && (!o.specCopies || o.specCopies.includes(copy))),
    )?.name;
}

/** Creation order, then name: which of two conflicting jobs goes first. */
export function older(a: { createdAt: string; name: string }, b: { createdAt: string; name: string }): boolean {
  return a.createdAt !== b.createdAt ? a.createdAt < b.createdAt : a.name < b.name;
}

/** A stream: under the job's cap and every library's maxStreams, counting all copy pods of the namespace. */
function streamRefusal(ctx: RunContext, t: TargetFacts): string | undefined {
  const { f, fx } = ctx;
  const libs = [t.copy?.library, t.sourceCopy?.library].filter((l): l is LibraryFacts => l !== undefined);
  const verdict = allocateStream({
    jobStreams: f.job.spec.streams,
    jobInUse: f.streams.job + fx.started.length,
    libraries: libs
      .filter((l, i) => libs.findIndex((x) => x.name === l.name) === i)
      .map((l) => ({
        name: l.name,
        maxStreams: l.maxStreams,
        inUse: fx.started.filter((c) => c.includes(l.name)).length + (f.streams.byLibrary[l.name] ?? 0),
      })),
  });
  return verdict.ok ? undefined : verdict.message;
}

/** The API refuses the pod itself (quota, admission, invalid settings): a failed attempt with the server's words. */
function podRejected(ctx: RunContext, t: TargetFacts, prev: CopyPart, part: CopyPart, message: string): CopyPart {
  const { f, fx } = ctx;
  const { attempt } = attemptOf(prev);
  const retryAt = f.now + probeBackoffMs(attempt, f.settings.retryBaseMs);
  const last = outOfAttempts(prev, attempt);
  // Its stream stays counted in this reconcile: the other parts decide as they did when the pod was still planned.
  fx.started.push(streamLibraries(t));
  Object.assign(part, {
    phase: last ? "Failed" : "Retrying",
    reason: "PodRejected",
    attempts: last ? attempt : attempt + 1,
    nextAttemptTime: last ? undefined : formatTime(retryAt),
    message: `attempt ${attempt}: ${message}`,
  });
  if (last) part.completionTime = formatTime(f.now);
  fx.events.push({ type: "Warning", reason: "PodRejected", message: `copy "${t.name}": ${message}` });
  if (!last) soon(fx, Math.max(retryAt - f.now, 1000));
  return part;
}

const streamLibraries = (t: TargetFacts) => [t.copy?.library?.name ?? "", t.sourceCopy?.library?.name ?? ""];

function startPod(ctx: RunContext, t: TargetFacts, prev: CopyPart, part: CopyPart): CopyPart {
  const { f, fx } = ctx;
  const { attempt } = attemptOf(prev);
  fx.pods.push(copyPodInput(ctx, t, prev));
  fx.started.push(streamLibraries(t));
  Object.assign(part, {
    phase: "Running",
    reason: undefined,
    message: `copying from "${(t.copy as TargetCopy).source}" (attempt ${attempt})`,
    startTime: part.startTime ?? formatTime(f.now),
  });
  soon(fx, f.settings.progressIntervalMs ?? 2000);
  return part;
}

function copyPodInput(ctx: RunContext, t: TargetFacts, prev: CopyPart): AgentPodInput {
  const { job, settings } = ctx.f;
  const copy = t.copy as TargetCopy;
  const source = t.sourceCopy as CopySide;
  const { attempt, pass } = attemptOf(prev);
  const spec = job.spec;
  return {
    task: "copy",
    namespace: job.namespace,
    name: partPodName(job.name, t.name, pass, attempt),
    owner: job.owner,
    image: settings.agentImage,
    target: { ...(copy.access as RepositoryAccess) },
    source: { ...(source.access as RepositoryAccess) },
    plan: {
      rules: copy.rules,
      cutoff: spec.doNotPickNewBackups ? ctx.started : undefined,
      runStart: ctx.started,
      skipVerificationFailed: spec.skipVerificationFailedJobs,
      limit: spec.jobLimit ?? 1000,
      mostRecentFull: spec.useMostRecentFull,
    },
    // Locks of Auxo pods that ended (a killed attempt's) may go; any other lock is waited for (docs/job-metadata.md).
    locks: { deadHosts: t.deadHosts },
    deadlineSeconds: 6 * 3600,
    placement: placementOf(spec, spec.mediaAgent?.from === "Source" ? source.placement : copy.placement),
    labels: {
      [Label.targetLibrary]: labelValue((copy.library as LibraryFacts).name),
      [Label.sourceLibrary]: labelValue((source.library as LibraryFacts).name),
      [Label.copy]: labelValue(t.name),
      [Label.source]: labelValue(copy.source),
      [Label.auxCopyJob]: labelValue(job.name),
      [Label.attempt]: String(attempt),
    },
  };
}

/** Where a copy pod runs: the chosen copy's mediaAgent settings, with the job's node selector on top. */
export function placementOf(spec: AuxCopyJobSpec, base: PodPlacement | undefined): PodPlacement | undefined {
  const extra = spec.mediaAgent?.nodeSelector;
  if (!extra) return base;
  return { ...base, nodeSelector: { ...base?.nodeSelector, ...extra } };
}
