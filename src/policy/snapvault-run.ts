// A SnapVault run, decided from plain facts (docs/snapvault.md). A run starts on the schedule or on request (inside
// the storage policy's operation windows), cuts VolumeSnapshots of the selected PVCs, and copies every ready snapshot
// the destination lacks, oldest first, each through a volume restored from it and a MediaAgent pod that mounts it
// read-only, within the destination library's streams. Source faults (an offline volume, a hung driver, a snapshot
// that reports an error) cost the snapshot one attempt of its retry budget and leave it Retrying for later runs;
// destination faults park the copy and cost nothing. Snapshots whose source is gone are Missing at once. The run
// ends Completed, AvailableWithMissingSnaps (some snapshot of it is Missing) or Failed (the destination kept failing).
// Every reconcile also applies the source's retention to the snapshots Auxo cut (never before their copy is settled)
// and removes restored volumes and pods no copy needs. Pure: the plan says what to create and delete.
import { createHash } from "node:crypto";
import type { SnapshotEntry, SnapVaultSpec, SnapVaultStatus } from "../api/v1alpha1/index.ts";
import type { OwnerReference } from "../kube/resources.ts";
import type { AgentPodInput } from "../mediaagent/pod.ts";
import type { AgeResult, AgentOutcome, InitResult, SnapCopyResult } from "../mediaagent/protocol.ts";
import { parseDuration } from "./duration.ts";
import { Annotation, Label, MANAGED_BY } from "./labels.ts";
import { boundedName, labelValue, podName } from "./names.ts";
import type { MetricDelta, Plan, PlannedEvent, ReadyPlan } from "./plan.ts";
import type { Problem } from "./references.ts";
import type { RepositoryAccess } from "./repository.ts";
import { type RetryBudget, retryVerdict } from "./snapretry.ts";
import { vaultRetention } from "./snapvault-aging.ts";
import { snapJobId } from "./snaptags.ts";
import { formatTime, parseTime } from "./time.ts";
import { blockingWindow, type Window } from "./windows.ts";

export const MAX_LISTED = 100;
/** Copy pods of one run that may fail on the destination before the run is Failed (each waits twice as long). */
export const MAX_DESTINATION_FAILURES = 6;
/** A snapshot this plan cut is not in the cache yet: it is not "deleted" before this long. */
const CACHE_GRACE_MS = 60_000;
const COPY_DEADLINE_SECONDS = 6 * 3600;

type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; [k: string]: unknown };
  spec: Record<string, unknown>;
};

/** A VolumeSnapshot as the rules see it. */
export interface VsFacts {
  name: string;
  uid: string;
  pvc: string;
  origin: "Taken" | "Adopted";
  /** status.creationTime (the point in time), else the object's creation. */
  creationTime?: string;
  readyToUse: boolean;
  /** status.error.message */
  error?: string;
  restoreSize?: string;
  handle?: string;
  deleting: boolean;
  /** The source PVC's class and size while it exists (restored volumes use them). */
  storageClassName?: string;
  size?: string;
}

export interface PvcFacts {
  name: string;
  bound: boolean;
  storageClassName?: string;
  size?: string;
}

/** A volume restored from a snapshot for its copy (labelled with the SnapVault). */
export interface ClaimFacts {
  name: string;
  phase?: string;
  /** The provisioner's latest ProvisioningFailed message, once there is one. */
  failure?: string;
}

export interface ProgressFacts {
  bytesDone?: number;
  bytesTotal?: number;
  percent?: number;
}

export interface PodFacts {
  name: string;
  phase?: string;
  startedAt?: number;
  result?: AgentOutcome<SnapCopyResult & InitResult & AgeResult>;
  /** The kubelet's latest FailedMount message. */
  failedMount?: string;
  progress?: ProgressFacts;
}

export interface SnapVaultRunFacts {
  sv: {
    name: string;
    namespace: string;
    uid: string;
    createdAt?: string;
    spec: SnapVaultSpec;
    status: SnapVaultStatus;
    owner: OwnerReference;
    /** auxo.dev/run-requested */
    runRequested?: string;
    /** auxo.dev/repick-requested */
    repickRequested?: string;
  };
  /** Reference problems (library, Secret, policy): no run starts while there is one. */
  problems: Problem[];
  library?: { name: string; phase?: string; message?: string; maxStreams: number };
  /** The destination repository, for pods. */
  access?: RepositoryAccess;
  policy?: { timeZone?: string; operationWindows?: Window[] };
  /** PVCs Auxo snapshots (listed or selected) that exist. */
  pvcs: PvcFacts[];
  /** PVCs the SnapVault lists by name (a listed PVC that does not exist is a deleted source volume). */
  listed: string[];
  /** Every PVC of the namespace (restored volumes aside): whether a snapshot's PVC still exists. */
  pvcsPresent: string[];
  /** Pods the API server refused in this reconcile (quota, admission), with its words. */
  rejected?: { name: string; message: string }[];
  snapshots: VsFacts[];
  claims: ClaimFacts[];
  pods: PodFacts[];
  /** Live copy pods (aux copy and snap copy) on the destination library, this SnapVault's among them. */
  streamsInUse: number;
  /** Host names of this SnapVault's ended pods: their restic locks are dead. */
  deadHosts: string[];
  settings: { agentImage: string; retryBaseMs: number; budget: RetryBudget };
  now: number;
}

export interface SnapVaultPlan extends Plan<SnapVaultStatus, AgentPodInput> {
  status: SnapVaultStatus;
  ready: ReadyPlan;
  createSnapshots: Manifest[];
  deleteSnapshots: string[];
  createClaims: Manifest[];
  deleteClaims: string[];
  /** The library to probe now (a copy found it unreachable), and why. */
  probe?: string;
}

type Run = NonNullable<SnapVaultStatus["run"]>;
type Entry = SnapshotEntry;

export const initPodName = (sv: string): string => podName(sv, "init");
export const agePodName = (sv: string, run: number): string => podName(sv, "age", String(run));
export const copyPodName = (sv: string, uid: string, pods: number): string => podName(sv, "copy", uid.slice(0, 8), String(pods));
export const claimName = (sv: string, uid: string, pods: number): string => podName(sv, "restore", uid.slice(0, 8), String(pods));
/** Where a copy pod mounts the restored volume: one path per PVC, so that restic's parent is the PVC's previous copy. */
export const mountPathOf = (pvc: string): string => `/snapshots/${pvc}`;

const stamp = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace(/\.\d{3}Z$/, "")
    .replace(/[-:]/g, "")
    .replace("T", "-");

/**
 * The name of the VolumeSnapshot a run cuts of a PVC: from the run's due time (or its request token), not the clock,
 * so that a reconcile that decides again on a cache without the last status write names the same snapshot.
 */
export const snapshotName = (sv: string, pvc: string, runKey: string): string => boundedName(`${sv}-${pvc}`, `-${runKey}`).toLowerCase();

const hash8 = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 8);

const ACTIVE = new Set(["Pending", "Copying", "Retrying"]);
const time = (e: { creationTime?: string; lastAttemptTime?: string }) => parseTime(e.creationTime) ?? parseTime(e.lastAttemptTime) ?? 0;

/** Status lists at most 100 snapshots: those still to copy (oldest first), then the others (newest first). */
export function boundEntries(entries: Entry[]): Entry[] {
  return bound(entries).listed;
}

/**
 * The listed entries, and the creation time of the newest settled entry dropped: snapshots settled and created at or
 * before it are not taken up again when the caches show their VolumeSnapshot (status.settledThrough).
 */
function bound(entries: Entry[]): { listed: Entry[]; droppedThrough?: number } {
  const active = entries.filter((e) => ACTIVE.has(e.state)).sort((a, b) => time(a) - time(b) || a.name.localeCompare(b.name));
  const settled = entries.filter((e) => !ACTIVE.has(e.state)).sort((a, b) => time(b) - time(a) || a.name.localeCompare(b.name));
  const all = [...active, ...settled];
  const dropped = all.slice(MAX_LISTED).filter((e) => !ACTIVE.has(e.state));
  return { listed: all.slice(0, MAX_LISTED), droppedThrough: dropped.length ? Math.max(...dropped.map(time)) : undefined };
}

export function countStates(entries: Entry[]): NonNullable<SnapVaultStatus["counts"]> {
  const n = (s: string) => entries.filter((e) => e.state === s).length;
  return { pending: n("Pending"), copying: n("Copying"), copied: n("Copied"), retrying: n("Retrying"), missing: n("Missing") };
}

/** When the next scheduled run is due: `every` after the last run's start, at once for a SnapVault that never ran. */
export function nextRunAt(status: SnapVaultStatus, spec: SnapVaultSpec, createdAt: number): number {
  const every = parseDuration("spec.schedule.every", spec.schedule?.every ?? "1h");
  const last = parseTime(status.lastRunTime);
  return last === undefined ? createdAt : last + every;
}

class Ctx {
  readonly f: SnapVaultRunFacts;
  readonly now: number;
  readonly entries: Entry[];
  readonly events: PlannedEvent[] = [];
  readonly metrics: MetricDelta[] = [];
  readonly plan: Omit<SnapVaultPlan, "status" | "ready">;
  requeue: number | undefined;
  status: SnapVaultStatus;

  constructor(f: SnapVaultRunFacts) {
    this.f = f;
    this.now = f.now;
    this.status = { ...f.sv.status };
    this.entries = (f.sv.status.snapshots ?? []).map((e) => ({ ...e }));
    this.plan = { createSnapshots: [], deleteSnapshots: [], createClaims: [], deleteClaims: [], pods: [], deletePods: [] };
  }

  get sv() {
    return this.f.sv;
  }

  wake(ms: number): void {
    const d = Math.max(ms, 1000);
    this.requeue = this.requeue === undefined ? d : Math.min(this.requeue, d);
  }

  event(type: PlannedEvent["type"], reason: string, message: string, once?: string): void {
    this.events.push({ type, reason, message, once: once && `${this.sv.uid}/${once}` });
  }

  metric(m: Omit<MetricDelta, "labels"> & { labels?: Record<string, string> }): void {
    this.metrics.push({ ...m, labels: { namespace: this.sv.namespace, snapvault: this.sv.name, ...m.labels } });
  }
}

export function planSnapVaultRun(f: SnapVaultRunFacts): SnapVaultPlan {
  const c = new Ctx(f);
  const repoProblem = repository(c);
  merge(c);
  repick(c);
  let run = c.status.run;
  const running = run !== undefined && (run.phase === "Running" || run.phase === "Pending");
  // After a run, the destination's aging; the next run waits for it (it prunes under restic's exclusive lock).
  if (run && !running && run.aging === undefined) run = c.status.run = age(c, run);
  if (!running && (run === undefined || run.aging !== undefined) && f.problems.length === 0 && c.status.repositoryId) run = maybeStart(c);
  if (run && (run.phase === "Running" || run.phase === "Pending")) {
    run = c.status.run = step(c, run);
    // A run that ended now ages the destination at once.
    if (run.phase !== "Running" && run.phase !== "Pending") run = age(c, run);
  } else settleOutsideRun(c);
  c.status.run = run;
  sourceRetention(c);
  sweep(c);
  const { listed, droppedThrough } = bound(c.entries);
  c.status.snapshots = listed;
  if (droppedThrough !== undefined) c.status.settledThrough = formatTime(Math.max(droppedThrough, parseTime(c.status.settledThrough) ?? 0));
  c.status.counts = countStates(listed);
  c.status.phase = run?.phase;
  const next = nextRunAt(c.status, f.sv.spec, parseTime(f.sv.createdAt) ?? f.now);
  c.status.nextRunTime = f.sv.spec.schedule?.suspend ? undefined : formatTime(Math.max(next, f.now));
  if (!(run && (run.phase === "Running" || run.phase === "Pending")) && !f.sv.spec.schedule?.suspend && next > f.now) c.wake(next - f.now);
  for (const state of ["Pending", "Copying", "Copied", "Retrying", "Missing"] as const)
    c.metric({ metric: "snapVaultSnapshots", labels: { state }, value: listed.filter((e) => e.state === state).length });
  const problems = [...f.problems, ...(repoProblem ? [repoProblem] : [])];
  return {
    ...c.plan,
    status: prune(c.status),
    ready: {
      problems,
      ok: { reason: "DestinationReady", message: `destination repository ${c.status.repositoryId ?? ""} is ready`.replace("  ", " ") },
      unknown: c.status.repositoryId ? undefined : { reason: "RepositoryPending", message: "the destination repository is being opened" },
      others: mirrorCondition(c),
    },
    events: c.events,
    metrics: c.metrics,
    requeueAfterMs: c.requeue,
  };
}

/** Drops undefined fields: status is compared and applied whole. */
function prune<T extends object>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}

// ---- the destination repository ----

/** Opens (or creates) the destination repository once, with the init task, and records its ID. */
function repository(c: Ctx): Problem | undefined {
  const { f } = c;
  const name = initPodName(f.sv.name);
  const pod = f.pods.find((p) => p.name === name);
  if (c.status.repositoryId) {
    if (pod) c.plan.deletePods?.push(name);
    return undefined;
  }
  if (f.problems.length || !f.access || !f.library) return undefined;
  if (pod?.result) {
    const id = pod.result.data.id;
    if (pod.result.ok && id) {
      c.plan.deletePods?.push(name);
      c.status.repositoryId = id;
      c.status.initFailures = undefined;
      c.event("Normal", "RepositoryReady", `destination repository ${id} ${pod.result.data.created ? "created" : "opened"}`, `repo/${id}`);
      return undefined;
    }
    // The failed pod stays until its back-off passes: it holds the time of the failure.
    const failures = c.status.initFailures ?? 0;
    const retryAt = (parseTime(pod.result.at) ?? c.now) + backoff(f.settings.retryBaseMs, failures + 1);
    if (c.now >= retryAt) {
      c.plan.deletePods?.push(name);
      c.status.initFailures = failures + 1;
    } else c.wake(retryAt - c.now);
    return {
      reason: "RepositoryInitFailed",
      message: `opening the destination repository failed (retried at ${formatTime(retryAt)}): ${pod.result.message}`,
    };
  }
  if (!pod && f.library.phase === "Ready")
    c.plan.pods?.push({
      task: "init",
      namespace: f.sv.namespace,
      name,
      owner: f.sv.owner,
      image: f.settings.agentImage,
      target: f.access,
      deadlineSeconds: 600,
      labels: { [Label.snapVault]: labelValue(f.sv.name), [Label.targetLibrary]: labelValue(f.library.name) },
    });
  if (f.library.phase !== "Ready") c.wake(10_000);
  return undefined;
}

// ---- what the caches say of each snapshot ----

/** Adds the snapshots not listed yet; a snapshot to copy whose VolumeSnapshot is gone is Missing at once. */
function merge(c: Ctx): void {
  const byUid = new Map(c.f.snapshots.map((s) => [s.uid, s]));
  const known = new Set(c.entries.map((e) => e.uid).filter(Boolean));
  // A cut recorded twice (a decision taken on a status the cache had not caught up with, whose write then landed):
  // the entry that knows the snapshot is it; the other is no snapshot of its own and goes, rather than turn Missing.
  const named = new Set(c.entries.filter((e) => e.uid).map((e) => e.name));
  const keep = c.entries.filter((e) => {
    if (e.uid) return true;
    if (named.has(e.name)) return false;
    named.add(e.name);
    return true;
  });
  c.entries.splice(0, c.entries.length, ...keep);
  for (const e of c.entries) {
    let vs = e.uid ? byUid.get(e.uid) : undefined;
    if (!e.uid) {
      // Cut by this operator, not seen yet: the first snapshot of that name is it.
      vs = c.f.snapshots.find((s) => s.name === e.name && !known.has(s.uid));
      if (vs) {
        e.uid = vs.uid;
        known.add(vs.uid);
      }
    }
    if (vs) {
      if (vs.creationTime) e.creationTime = vs.creationTime;
      e.storageClassName ??= vs.storageClassName;
      continue;
    }
    if (!ACTIVE.has(e.state)) continue;
    if (!e.uid && c.now - time(e) < CACHE_GRACE_MS) continue;
    missing(c, e, "SourceSnapshotDeleted", `VolumeSnapshot ${e.name} was deleted before it was copied`);
  }
  // A VolumeSnapshot being deleted (its finalizers wait, e.g. for an offline array) is as good as gone; one in flight
  // is settled by its copy's step.
  for (const e of c.entries) {
    const vs = e.uid ? byUid.get(e.uid) : undefined;
    if (vs?.deleting && (e.state === "Pending" || e.state === "Retrying"))
      missing(c, e, "SourceSnapshotDeleted", `VolumeSnapshot ${e.name} is being deleted: it was not copied`);
  }
  // Settled snapshots the bounded status dropped: done, not to be taken up again.
  const settledThrough = parseTime(c.status.settledThrough) ?? -Infinity;
  for (const s of c.f.snapshots)
    if (!known.has(s.uid) && !s.deleting && !((parseTime(s.creationTime) ?? Infinity) <= settledThrough))
      c.entries.push({
        name: s.name,
        uid: s.uid,
        persistentVolumeClaim: s.pvc,
        origin: s.origin,
        creationTime: s.creationTime,
        storageClassName: s.storageClassName,
        state: "Pending",
      });
}

function missing(c: Ctx, e: Entry, reason: string, message: string): void {
  e.state = "Missing";
  e.reason = reason;
  e.lastError = message;
  e.run = c.status.run?.number ?? e.run;
  c.event(
    "Warning",
    "SnapshotMissing",
    `${e.name} (PVC ${e.persistentVolumeClaim}) is Missing: ${reason}: ${message}`,
    `missing/${e.uid ?? e.name}`,
  );
}

// ---- starting a run ----

function maybeStart(c: Ctx): Run | undefined {
  const { f, now } = c;
  const spec = f.sv.spec;
  const asked = f.sv.runRequested !== undefined && f.sv.runRequested !== "" && f.sv.runRequested !== c.status.lastRequest;
  const dueAt = nextRunAt(c.status, spec, parseTime(f.sv.createdAt) ?? now);
  const due = !spec.schedule?.suspend && now >= dueAt;
  if (!asked && !due) return c.status.run;
  const blocked = blockingWindow(f.policy?.operationWindows, "SnapCopy", now, f.policy?.timeZone);
  if (blocked) {
    c.wake(blocked.endsAt - now);
    c.event(
      "Normal",
      "RunQueued",
      `operation window "${blocked.window.name}" blocks snap copies until ${formatTime(blocked.endsAt)}`,
      `window/${blocked.endsAt}`,
    );
    return c.status.run;
  }
  const number = (c.status.runs ?? 0) + 1;
  c.status.runs = number;
  c.status.lastRunTime = formatTime(now);
  if (asked) c.status.lastRequest = f.sv.runRequested;
  const run: Run = { number, trigger: asked ? "Request" : "Schedule", startTime: formatTime(now), phase: "Running", copied: 0, bytes: 0 };
  c.status.run = run;
  c.event(
    "Normal",
    "RunStarted",
    `run ${number} started (${run.trigger === "Request" ? `requested: ${f.sv.runRequested}` : "scheduled"})`,
    `run/${number}`,
  );
  timeLimits(c, number);
  // A request's snapshots are named by its token and run number (a token may come back later, for another run).
  cut(c, number, asked ? `q${hash8(`${f.sv.runRequested}/${number}`)}` : stamp(dueAt));
  return run;
}

/** A new re-pick request re-arms the Missing snapshots whose VolumeSnapshot still exists. */
function repick(c: Ctx): void {
  const token = c.f.sv.repickRequested;
  if (!token || token === c.status.lastRepick) return;
  c.status.lastRepick = token;
  const exists = new Set(c.f.snapshots.map((s) => s.uid));
  let n = 0;
  for (const e of c.entries)
    if (e.state === "Missing" && e.uid && exists.has(e.uid)) {
      Object.assign(e, { state: "Pending", reason: undefined, attempts: undefined, firstAttemptTime: undefined });
      n++;
    }
  c.event("Normal", "Repicked", `${n} Missing snapshot(s) re-armed for copying (request ${token})`, `repick/${token}`);
}

/** Retrying snapshots past the time limit are Missing before the run tries them again. */
function timeLimits(c: Ctx, run: number): void {
  for (const e of c.entries) {
    if (e.state !== "Retrying") continue;
    const v = retryVerdict(e.attempts ?? 0, parseTime(e.firstAttemptTime), c.now, c.f.settings.budget);
    if (v.state === "Missing") {
      e.run = run;
      missing(c, e, v.reason, v.message);
    }
  }
}

/** Cuts a VolumeSnapshot of every selected PVC; a listed PVC that is gone is a Missing snapshot of this run. */
function cut(c: Ctx, run: number, runKey: string): void {
  const { f, now } = c;
  const spec = f.sv.spec.source;
  const exists = new Map(f.pvcs.map((p) => [p.name, p]));
  const names = [...new Set([...f.listed, ...f.pvcs.map((p) => p.name)])].sort();
  const cutNames: string[] = [];
  for (const pvc of names) {
    const name = snapshotName(f.sv.name, pvc, runKey);
    // Already cut: this run was decided before, on a status the cache had not caught up with (names are the run's).
    if (c.entries.some((e) => e.name === name)) continue;
    const p = exists.get(pvc);
    if (!p) {
      const e: Entry = {
        name,
        persistentVolumeClaim: pvc,
        origin: "Taken",
        creationTime: formatTime(now),
        state: "Pending",
        attempts: 0,
        cutBy: run,
      };
      c.entries.push(e);
      e.run = run;
      missing(c, e, "SourceVolumeDeleted", `PVC ${pvc} does not exist: no snapshot was cut`);
      continue;
    }
    if (!p.bound) {
      c.event("Warning", "SourceNotBound", `PVC ${pvc} is not bound yet: no snapshot of it in run ${run}`, `unbound/${pvc}/${run}`);
      continue;
    }
    c.plan.createSnapshots.push({
      apiVersion: "snapshot.storage.k8s.io/v1",
      kind: "VolumeSnapshot",
      metadata: {
        name,
        namespace: f.sv.namespace,
        labels: { [Label.managedBy]: MANAGED_BY, [Label.snapVault]: labelValue(f.sv.name), [Label.pvc]: labelValue(pvc) },
        annotations: { [Annotation.snapVault]: f.sv.name, [Annotation.run]: String(run) },
        ownerReferences: [{ ...f.sv.owner, controller: true, blockOwnerDeletion: false }],
      },
      spec: {
        source: { persistentVolumeClaimName: pvc },
        ...(spec.volumeSnapshotClassName ? { volumeSnapshotClassName: spec.volumeSnapshotClassName } : {}),
      },
    });
    c.entries.push({ name, persistentVolumeClaim: pvc, origin: "Taken", creationTime: formatTime(now), state: "Pending", cutBy: run });
    cutNames.push(name);
  }
  // One event per run, not per snapshot: an object's events are rate-limited (burst 25, one per 5 minutes), and the
  // Warnings about single snapshots must not be crowded out by routine news.
  if (cutNames.length)
    c.event(
      "Normal",
      "SnapshotsCut",
      `run ${run} cut ${cutNames.length} VolumeSnapshot(s): ${cutNames.join(", ")}`.slice(0, 1000),
      `cut/${run}`,
    );
}

// ---- a running run ----

const backoff = (base: number, failures: number) => Math.min(base * 2 ** Math.max(0, failures - 1), 30 * 60_000);

function step(c: Ctx, run: Run): Run {
  const { f, now } = c;
  const r: Run = { ...run };
  const vs = new Map(f.snapshots.map((s) => [s.uid, s]));
  const pods = new Map(f.pods.map((p) => [p.name, p]));
  const claims = new Map(f.claims.map((p) => [p.name, p]));
  const staging = parseDuration("spec.stagingTimeout", f.sv.spec.stagingTimeout ?? "5m");
  const copying = c.entries.filter((e) => e.state === "Copying");
  let waiting: string | undefined;

  // Copies in flight first: their pods' results and faults.
  for (const e of copying) {
    const s = e.uid ? vs.get(e.uid) : undefined;
    const podN = copyPodName(f.sv.name, e.uid ?? "", e.pods ?? 0);
    const claimN = claimName(f.sv.name, e.uid ?? "", e.pods ?? 0);
    const pod = pods.get(podN);
    const claim = claims.get(claimN);
    const started = parseTime(e.lastAttemptTime) ?? now;
    if (pod?.result?.ok) {
      const d = pod.result.data;
      Object.assign(e, { state: "Copied", reason: undefined, lastError: undefined, copiedAs: d.snapshotId, bytes: d.bytes, run: r.number });
      if (!d.already) r.copied = (r.copied ?? 0) + 1;
      r.bytes = (r.bytes ?? 0) + (d.already ? 0 : (d.bytes ?? 0));
      // No event per copy (status lists it, with its restic ID): the run's end sums them up.
      if (!d.already) c.metric({ metric: "snapVaultBytes", value: d.bytes ?? 0, once: podN });
      continue;
    }
    if (pod?.result && !pod.result.ok) {
      if (pod.result.data.sourceFault) sourceFault(c, e, r.number, pod.result.message, podN);
      else {
        // The destination's fault (or the pod's): the snapshot waits, the run retries the copy later.
        r.destinationFailures = (r.destinationFailures ?? 0) + 1;
        r.retryAt = formatTime(now + backoff(f.settings.retryBaseMs, r.destinationFailures));
        waiting = `copy of ${e.name} failed on the destination: ${pod.result.message}`;
        Object.assign(e, { state: "Pending", lastError: pod.result.message });
        c.event("Warning", "DestinationFault", `${waiting} (no attempt counted; retry at ${r.retryAt})`, `dest/${podN}`);
        c.plan.probe = waiting;
      }
      continue;
    }
    if (s?.deleting || (!s && e.uid)) {
      missing(c, e, "SourceSnapshotDeleted", `VolumeSnapshot ${e.name} was deleted during its copy`);
      continue;
    }
    if (claim?.failure && /code = NotFound/.test(claim.failure)) {
      missing(c, e, "SourceSnapshotDeleted", `the storage no longer has the snapshot: ${claim.failure}`);
      continue;
    }
    if (claim?.failure && /Unavailable|DeadlineExceeded/i.test(claim.failure)) {
      sourceFault(c, e, r.number, `restoring the volume failed: ${claim.failure}`, claimN);
      continue;
    }
    // The kubelet's view of the restored claim lagging behind (it was created before the pod) is no fault of the
    // source: it retries the mount. Other mount failures (the storage refusing) cost an attempt.
    if (pod?.failedMount && !/persistentvolumeclaim "[^"]+" not found/i.test(pod.failedMount)) {
      sourceFault(c, e, r.number, `mounting the restored volume failed: ${pod.failedMount}`, podN);
      continue;
    }
    if (pod?.phase !== "Running" && now - started >= staging) {
      const why =
        claim?.failure ??
        pod?.failedMount ??
        (claim?.phase === "Bound" ? "the copy pod did not start" : "the restored volume is not bound");
      sourceFault(c, e, r.number, `not ready after ${f.sv.spec.stagingTimeout ?? "5m"}: ${why}`, podN);
      continue;
    }
    if (!pod && !claim && now - started >= CACHE_GRACE_MS) {
      // Both gone before a result (deleted by hand): start the copy again. Not just after they were created: the
      // caches may not show them yet, and a second pod for the same snapshot would copy it twice.
      Object.assign(e, { state: "Pending" });
      continue;
    }
    c.wake(pod?.phase === "Running" ? 2000 : 3000);
  }

  // Then new copies, oldest snapshot first, as far as the library, the window and the streams allow.
  const todo = c.entries
    .filter((e) => (e.state === "Pending" || e.state === "Retrying") && e.run !== r.number && e.uid)
    .sort((a, b) => time(a) - time(b) || a.name.localeCompare(b.name));
  const lib = f.library;
  const retryAt = parseTime(r.retryAt);
  const blocked = blockingWindow(f.policy?.operationWindows, "SnapCopy", now, f.policy?.timeZone);
  let streams = lib ? lib.maxStreams - f.streamsInUse : 0;
  let notReady = false;
  for (const e of todo) {
    const s = vs.get(e.uid as string);
    if (!s) continue;
    if (s.error) {
      sourceFault(c, e, r.number, `VolumeSnapshot ${s.name} is not ready: ${s.error}`, `vs/${s.uid}/${e.attempts ?? 0}`);
      continue;
    }
    if (!s.readyToUse) {
      if (now - Math.max(parseTime(r.startTime) ?? now, time(e)) >= staging)
        sourceFault(
          c,
          e,
          r.number,
          `VolumeSnapshot ${s.name} is not ready after ${f.sv.spec.stagingTimeout ?? "5m"}`,
          `vs/${s.uid}/${e.attempts ?? 0}`,
        );
      else notReady = true;
      continue;
    }
    if (f.problems.length || !c.status.repositoryId || !f.access || !lib) {
      waiting = f.problems[0]?.message ?? "the destination repository is not open yet";
      continue;
    }
    if (lib.phase !== "Ready") {
      waiting = `destination library ${lib.name} is ${lib.phase ?? "Pending"}${lib.message ? `: ${lib.message}` : ""}`;
      continue;
    }
    if (blocked) {
      waiting = `operation window "${blocked.window.name}" blocks snap copies until ${formatTime(blocked.endsAt)}`;
      c.wake(blocked.endsAt - now);
      continue;
    }
    if (retryAt !== undefined && retryAt > now) {
      waiting ??= `a copy failed on the destination; retrying at ${r.retryAt}`;
      c.wake(retryAt - now);
      continue;
    }
    if (streams <= 0) {
      waiting = `all ${lib.maxStreams} streams of library ${lib.name} are in use`;
      continue;
    }
    const podN = copyPodName(f.sv.name, s.uid, (e.pods ?? 0) + 1);
    const refused = f.rejected?.find((x) => x.name === podN);
    if (refused) {
      // Neither the source's fault nor the snapshot's: like a destination fault, it waits and costs no attempt.
      r.destinationFailures = (r.destinationFailures ?? 0) + 1;
      r.retryAt = formatTime(now + backoff(f.settings.retryBaseMs, r.destinationFailures));
      waiting = refused.message;
      c.event("Warning", "PodRejected", `copy of ${e.name}: ${refused.message}`, `rejected/${podN}/${r.destinationFailures}`);
      continue;
    }
    streams--;
    startCopy(c, e, s);
  }

  // Snapshots cut by this run that the cache does not show yet are still to come (merge() gives up on them).
  const left = c.entries.some((e) => e.state === "Copying" || ((e.state === "Pending" || e.state === "Retrying") && e.run !== r.number));
  if (c.entries.some((e) => !e.uid && e.state === "Pending")) notReady = true;
  if ((r.destinationFailures ?? 0) >= MAX_DESTINATION_FAILURES && !c.entries.some((e) => e.state === "Copying")) {
    return end(c, r, "Failed", `the destination failed ${r.destinationFailures} times in this run: ${waiting ?? ""}`.trim());
  }
  if (!left) {
    const missed = c.entries.filter((e) => e.state === "Missing" && e.run === r.number);
    return missed.length
      ? end(
          c,
          r,
          "AvailableWithMissingSnaps",
          `${r.copied ?? 0} copied, ${missed.length} missing: ${missed
            .map((e) => `${e.name} (${e.reason})`)
            .join(", ")
            .slice(0, 900)}`,
        )
      : end(c, r, "Completed", `${r.copied ?? 0} snapshot(s) copied, ${r.bytes ?? 0} bytes`);
  }
  r.waiting = waiting;
  if (waiting || notReady) c.wake(waiting?.includes("streams") ? 5000 : 3000);
  c.status.current = current(c);
  return r;
}

/** Outside a run nothing is copying: a copy left Copying (status written by a run that since ended) goes back to Pending. */
function settleOutsideRun(c: Ctx): void {
  for (const e of c.entries) if (e.state === "Copying") e.state = "Pending";
  c.status.current = undefined;
}

function end(c: Ctx, r: Run, phase: Run["phase"], message: string): Run {
  const done: Run = { ...r, phase, endTime: formatTime(c.now), message, waiting: undefined, retryAt: undefined };
  c.status.current = undefined;
  const type = phase === "Completed" ? "Normal" : "Warning";
  c.event(
    type,
    phase === "Completed" ? "RunCompleted" : phase === "Failed" ? "RunFailed" : "RunAvailableWithMissingSnaps",
    `run ${r.number}: ${message}`,
    `end/${r.number}`,
  );
  c.metric({ metric: "snapVaultRuns", labels: { phase }, value: 1, once: `run/${r.number}` });
  return done;
}

/** A source fault: one attempt of the snapshot's budget; Retrying for a later run, or Missing once it is used up. */
function sourceFault(c: Ctx, e: Entry, run: number, message: string, once: string): void {
  e.attempts = (e.attempts ?? 0) + 1;
  e.firstAttemptTime ??= formatTime(c.now);
  e.lastAttemptTime = formatTime(c.now);
  e.lastError = message.slice(0, 1000);
  e.run = run;
  const v = retryVerdict(e.attempts, parseTime(e.firstAttemptTime), c.now, c.f.settings.budget);
  if (v.state === "Missing") {
    missing(c, e, v.reason, `${v.message}; last error: ${message}`.slice(0, 1000));
    return;
  }
  e.state = "Retrying";
  e.reason = "SourceFault";
  c.event(
    "Warning",
    "SnapshotRetrying",
    `${e.name} (PVC ${e.persistentVolumeClaim}): ${message}; ${v.message}`.slice(0, 1000),
    `retry/${once}`,
  );
}

function startCopy(c: Ctx, e: Entry, s: VsFacts): void {
  const { f } = c;
  const pods = (e.pods ?? 0) + 1;
  const uid = s.uid;
  const claim = claimName(f.sv.name, uid, pods);
  const source = f.pvcs.find((p) => p.name === s.pvc);
  const storageClassName = f.sv.spec.source.storageClassName ?? s.storageClassName ?? e.storageClassName ?? source?.storageClassName;
  const labels = {
    [Label.managedBy]: MANAGED_BY,
    [Label.snapVault]: labelValue(f.sv.name),
    [Label.volumeSnapshotUid]: uid,
  };
  c.plan.createClaims.push({
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      name: claim,
      namespace: f.sv.namespace,
      labels,
      ownerReferences: [{ ...f.sv.owner, controller: true, blockOwnerDeletion: false }],
    },
    spec: {
      accessModes: ["ReadWriteOnce"],
      ...(storageClassName ? { storageClassName } : {}),
      resources: { requests: { storage: s.restoreSize ?? s.size ?? source?.size ?? "1Gi" } },
      dataSource: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: s.name },
    },
  });
  // Its snap job has missing snaps already: the copy says so, for extended retention (docs/snapvault.md).
  const job = e.cutBy === undefined ? [] : c.entries.filter((x) => x.cutBy === e.cutBy && x.state === "Missing");
  const lib = f.library as NonNullable<SnapVaultRunFacts["library"]>;
  c.plan.pods?.push({
    task: "snapcopy",
    namespace: f.sv.namespace,
    name: copyPodName(f.sv.name, uid, pods),
    owner: f.sv.owner,
    image: f.settings.agentImage,
    target: { ...(f.access as RepositoryAccess), repositoryId: c.status.repositoryId },
    claims: [{ name: "snapshot", claimName: claim, mountPath: mountPathOf(s.pvc) }],
    snapshot: {
      path: mountPathOf(s.pvc),
      jobId: snapJobId(f.sv.namespace, s.name, uid),
      status: job.length ? "completedWithErrors" : "completed",
      client: f.sv.namespace,
      subclient: s.pvc,
      snapVault: f.sv.name,
      volumeSnapshot: { name: s.name, uid, handle: s.handle, creationTime: s.creationTime ?? e.creationTime ?? formatTime(c.now) },
    },
    locks: { deadHosts: f.deadHosts },
    deadlineSeconds: COPY_DEADLINE_SECONDS,
    labels: { [Label.snapVault]: labelValue(f.sv.name), [Label.targetLibrary]: labelValue(lib.name), [Label.volumeSnapshotUid]: uid },
    annotations: { [Annotation.volumeSnapshot]: s.name },
  });
  Object.assign(e, { state: "Copying", pods, lastAttemptTime: formatTime(c.now) });
}

function current(c: Ctx): SnapVaultStatus["current"] {
  const copying = c.entries.filter((e) => e.state === "Copying").sort((a, b) => time(a) - time(b));
  for (const e of copying) {
    const pod = c.f.pods.find((p) => p.name === copyPodName(c.f.sv.name, e.uid ?? "", e.pods ?? 0));
    const p = pod?.progress;
    const secs = pod?.startedAt !== undefined ? (c.now - pod.startedAt) / 1000 : undefined;
    return {
      snapshot: e.name,
      persistentVolumeClaim: e.persistentVolumeClaim,
      bytesDone: p?.bytesDone,
      bytesTotal: p?.bytesTotal,
      percent: p?.percent,
      bytesPerSecond: p?.bytesDone !== undefined && secs && secs > 0 ? Math.round(p.bytesDone / secs) : undefined,
      startTime: pod?.startedAt !== undefined ? formatTime(pod.startedAt) : undefined,
    };
  }
  return undefined;
}

// ---- the source's retention and hygiene ----

/**
 * Snapshots Auxo cut are deleted by the source's retention (days, recovery points per PVC), never before their copy
 * is settled (Copied or Missing) and never while a restored volume of them exists. Adopted snapshots are never deleted.
 */
function sourceRetention(c: Ctx): void {
  const { f, now } = c;
  const days = f.sv.spec.source.retention?.days ?? 7;
  const points = f.sv.spec.source.retention?.recoveryPoints ?? 0;
  const byUid = new Map(c.entries.filter((e) => e.uid).map((e) => [e.uid as string, e]));
  const inUse = new Set(c.entries.filter((e) => e.state === "Copying").map((e) => e.uid));
  const taken = f.snapshots.filter((s) => s.origin === "Taken" && !s.deleting);
  const byPvc = new Map<string, VsFacts[]>();
  for (const s of taken) byPvc.set(s.pvc, [...(byPvc.get(s.pvc) ?? []), s]);
  for (const list of byPvc.values()) {
    list.sort((a, b) => (parseTime(b.creationTime) ?? 0) - (parseTime(a.creationTime) ?? 0));
    list.forEach((s, i) => {
      const e = byUid.get(s.uid);
      const settled = e && (e.state === "Copied" || e.state === "Missing");
      if (!settled || inUse.has(s.uid)) return;
      const t = parseTime(s.creationTime);
      const old = days >= 0 && t !== undefined && now - t >= days * 86_400_000;
      const beyond = points > 0 && i >= points;
      if (!old && !beyond) return;
      c.plan.deleteSnapshots.push(s.name);
      c.event(
        "Normal",
        "SnapshotDeleted",
        `deleted VolumeSnapshot ${s.name} by the source's retention (${old ? `older than ${days} days` : `beyond ${points} recovery points`}); its copy is ${e.state}`,
        `del/${s.uid}`,
      );
    });
  }
}

/** Restored volumes and pods that no copy in flight needs go (after a result, a failure, a restart). */
function sweep(c: Ctx): void {
  const { f } = c;
  const wanted = new Set<string>();
  for (const e of c.entries)
    if (e.state === "Copying" && e.uid) {
      wanted.add(copyPodName(f.sv.name, e.uid, e.pods ?? 0));
      wanted.add(claimName(f.sv.name, e.uid, e.pods ?? 0));
    }
  const run = c.status.run;
  if (run && run.aging === undefined) wanted.add(agePodName(f.sv.name, run.number));
  const init = initPodName(f.sv.name);
  for (const p of f.pods)
    if (!wanted.has(p.name) && p.name !== init && !c.plan.deletePods?.includes(p.name)) c.plan.deletePods?.push(p.name);
  for (const cl of f.claims) if (!wanted.has(cl.name)) c.plan.deleteClaims.push(cl.name);
}

/** Mirror with a source PVC gone: it keeps every copy of it, and says so. */
function mirrorCondition(c: Ctx): ReadyPlan["others"] {
  if ((c.f.sv.spec.mode ?? "Vault") !== "Mirror") return undefined;
  const present = new Set(c.f.pvcsPresent);
  const gone = [
    ...new Set(c.entries.filter((e) => e.state === "Copied" && !present.has(e.persistentVolumeClaim)).map((e) => e.persistentVolumeClaim)),
  ];
  return [
    gone.length
      ? {
          type: "SourceVolumesGone",
          status: "True",
          reason: "KeepingCopies",
          message: `PVC(s) ${gone.join(", ")} no longer exist: the mirror keeps all their copies`,
        }
      : { type: "SourceVolumesGone", status: "False", reason: "AllPresent", message: "every mirrored PVC exists" },
  ];
}

// ---- the destination's aging ----

/**
 * Ages the destination once after a run (not after a Failed one): a Vault by its retention, a Mirror forgets the
 * copies of snapshots deleted while their PVC exists and a newer copy of it is there. Returns the run with `aging` set
 * once it is done (or nothing was to do); until then a pod runs and the next run waits.
 */
function age(c: Ctx, run: Run): Run {
  const { f } = c;
  if (run.phase === "Failed") return { ...run, aging: "skipped: the run failed" };
  if (!f.access || !c.status.repositoryId || f.library?.phase !== "Ready")
    return { ...run, aging: "skipped: the destination is not ready" };
  const mirror = (f.sv.spec.mode ?? "Vault") === "Mirror";
  let forgetJobs: string[] | undefined;
  if (mirror) {
    const present = new Set(f.snapshots.map((s) => s.uid));
    const pvcs = new Set(f.pvcsPresent);
    const copied = c.entries.filter((e) => e.state === "Copied" && e.uid && e.reason !== "Forgotten");
    forgetJobs = copied
      .filter((e) => !present.has(e.uid as string) && pvcs.has(e.persistentVolumeClaim))
      .filter((e) =>
        copied.some((n) => n.persistentVolumeClaim === e.persistentVolumeClaim && present.has(n.uid as string) && time(n) > time(e)),
      )
      .map((e) => snapJobId(f.sv.namespace, e.name, e.uid as string));
    if (forgetJobs.length === 0) return { ...run, aging: "nothing to forget", aged: 0 };
  }
  const name = agePodName(f.sv.name, run.number);
  const pod = f.pods.find((p) => p.name === name);
  if (pod?.result) {
    const d = pod.result.data;
    c.plan.deletePods?.push(name);
    if (!pod.result.ok) {
      c.event("Warning", "AgingFailed", `aging the destination after run ${run.number} failed: ${pod.result.message}`, `agefail/${name}`);
      return { ...run, aging: `failed: ${pod.result.message}`.slice(0, 1000), aged: 0 };
    }
    if (mirror)
      for (const e of c.entries)
        if (e.uid && forgetJobs?.includes(snapJobId(f.sv.namespace, e.name, e.uid)))
          Object.assign(e, { reason: "Forgotten", copiedAs: undefined });
    const aged = d.aged ?? 0;
    if (aged)
      c.event(
        "Normal",
        "CopiesAged",
        `${aged} copies aged on the destination after run ${run.number}${d.agedJobs?.length ? `: ${d.agedJobs.join(", ")}` : ""}`.slice(
          0,
          1000,
        ),
        `aged/${name}`,
      );
    return {
      ...run,
      aging: mirror ? `${aged} copies of deleted snapshots forgotten` : `${aged} copies aged by the vault's retention`,
      aged,
    };
  }
  if (!pod)
    c.plan.pods?.push({
      task: "age",
      namespace: f.sv.namespace,
      name,
      owner: f.sv.owner,
      image: f.settings.agentImage,
      target: { ...f.access, repositoryId: c.status.repositoryId },
      aging: {
        retention: mirror ? undefined : vaultRetention(f.sv.spec.retention),
        forgetJobs,
        timeZone: f.policy?.timeZone ?? "UTC",
        maxSharePercent: mirror ? 100 : 50,
        at: formatTime(c.now),
      },
      locks: { deadHosts: f.deadHosts },
      deadlineSeconds: 3600,
      labels: { [Label.snapVault]: labelValue(f.sv.name), [Label.targetLibrary]: labelValue(f.library.name) },
    });
  c.wake(3000);
  return run;
}
