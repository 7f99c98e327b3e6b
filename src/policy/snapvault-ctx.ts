// What a SnapVault reconcile decides on and the context its rules share (policy/snapvault-run.ts decides a run,
// policy/snapvault-backup.ts the backup copies): the facts, the plan's parts, deterministic names, the bounded list of
// snapshots, and how a copy in flight (a restored volume and the MediaAgent pod that mounts it) stands. Pure.
import { createHash } from "node:crypto";
import type { SnapshotEntry, SnapVaultSpec, SnapVaultStatus } from "../api/v1alpha1/index.ts";
import type { OwnerReference } from "../kube/resources.ts";
import type { AgentPodInput, PodPlacement } from "../mediaagent/pod.ts";
import type { AgeResult, AgentOutcome, BackupCopyResult, InitResult, SnapCopyTask } from "../mediaagent/protocol.ts";
import { parseDuration } from "./duration.ts";
import { Label, MANAGED_BY } from "./labels.ts";
import { boundedName, labelValue, podName } from "./names.ts";
import type { MetricDelta, Plan, PlannedEvent, ReadyPlan } from "./plan.ts";
import type { Problem } from "./references.ts";
import type { RepositoryAccess } from "./repository.ts";
import type { RetryBudget } from "./snapretry.ts";
import { formatTime, parseTime } from "./time.ts";
import type { Window } from "./windows.ts";

export const MAX_LISTED = 100;
/** Copy pods of one run that may fail on the destination before the run is Failed (each waits twice as long). */
export const MAX_DESTINATION_FAILURES = 6;
/** A snapshot this plan cut is not in the cache yet: it is not "deleted" before this long. */
export const CACHE_GRACE_MS = 60_000;
export const COPY_DEADLINE_SECONDS = 6 * 3600;

export type Manifest = {
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
  /** What started the run that cut it (its auxo.dev/trigger annotation): spool keeps the newest Schedule one. */
  trigger?: "Schedule" | "Request";
  /** The run that cut it (its auxo.dev/run annotation). */
  run?: number;
}

export interface PvcFacts {
  name: string;
  bound: boolean;
  storageClassName?: string;
  size?: string;
  /** The PVC's auxo.dev/access-nodes annotation: node names for its backup copies. */
  accessNodes?: string[];
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
  result?: AgentOutcome<BackupCopyResult & InitResult & AgeResult>;
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
    /** auxo.dev/backup-copy-requested */
    backupCopyRequested?: string;
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
  /** Where backup copies go (spec.backupCopy): the storage policy's primary copy in force. */
  backupTarget?: BackupTargetFacts;
  /** The cluster's nodes (name and labels), when the operator may list them: access nodes that match none are said. */
  nodes?: { name: string; labels?: Record<string, string> }[];
  settings: { agentImage: string; retryBaseMs: number; budget: RetryBudget };
  now: number;
}

/** The storage policy's primary copy in force, as backup copies need it. */
export interface BackupTargetFacts {
  policy: string;
  /** The primary copy in force (status.primaryCopy, else spec.primaryCopy). */
  copy?: string;
  /** Why backup copies cannot be written now (no such copy, its repository not open, a refusal). */
  problem?: string;
  repositoryId?: string;
  access?: RepositoryAccess;
  library?: { name: string; phase?: string; message?: string; maxStreams: number };
  /** The copy's mediaAgent settings. */
  placement?: PodPlacement;
  /** Live copy pods (aux copy, snap copy and backup copy) on its library. */
  streamsInUse: number;
  /** A data aging run prunes the copy now (restic's exclusive lock): backup copies wait for it. */
  pruning?: boolean;
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
  /** A primary copy to scan now (backup copies landed on it): its catalog and the aux copies that follow see them. */
  rescan?: string;
}

export type Run = NonNullable<SnapVaultStatus["run"]>;
export type Entry = SnapshotEntry;

export const initPodName = (sv: string): string => podName(sv, "init");
export const agePodName = (sv: string, run: number): string => podName(sv, "age", String(run));
export const copyPodName = (sv: string, uid: string, pods: number): string => podName(sv, "copy", uid.slice(0, 8), String(pods));
export const claimName = (sv: string, uid: string, pods: number): string => podName(sv, "restore", uid.slice(0, 8), String(pods));
/** A backup copy's pod and restored volume (a volume of its own: the vault copy may be reading the other). */
export const backupPodName = (sv: string, uid: string, pods: number): string => podName(sv, "bcopy", uid.slice(0, 8), String(pods));
export const backupClaimName = (sv: string, uid: string, pods: number): string => podName(sv, "brestore", uid.slice(0, 8), String(pods));
/** Where a copy pod mounts the restored volume: one path per PVC, so that restic's parent is the PVC's previous copy. */
export const mountPathOf = (pvc: string): string => `/snapshots/${pvc}`;

export const stamp = (ms: number) =>
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

export const hash8 = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 8);

export const ACTIVE = new Set(["Pending", "Copying", "Retrying"]);
/** Still to do for the snapshot: its copy, or its backup copy. */
export const stillToDo = (e: Entry): boolean => ACTIVE.has(e.state) || (e.backupCopy !== undefined && ACTIVE.has(e.backupCopy.state));
export const time = (e: { creationTime?: string; lastAttemptTime?: string }) =>
  parseTime(e.creationTime) ?? parseTime(e.lastAttemptTime) ?? 0;

/** Status lists at most 100 snapshots: those still to copy (oldest first), then the others (newest first). */
export function boundEntries(entries: Entry[]): Entry[] {
  return bound(entries).listed;
}

/**
 * The listed entries, and the creation time of the newest settled entry dropped: snapshots settled and created at or
 * before it are not taken up again when the caches show their VolumeSnapshot (status.settledThrough).
 */
export function bound(entries: Entry[], awaiting: (e: Entry) => boolean = () => false): { listed: Entry[]; droppedThrough?: number } {
  const active = (e: Entry) => stillToDo(e) || awaiting(e);
  const todo = entries.filter(active).sort((a, b) => time(a) - time(b) || a.name.localeCompare(b.name));
  const settled = entries.filter((e) => !active(e)).sort((a, b) => time(b) - time(a) || a.name.localeCompare(b.name));
  const all = [...todo, ...settled];
  const dropped = all.slice(MAX_LISTED).filter((e) => !active(e));
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

export class Ctx {
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
    this.entries.forEach((e) => {
      if (e.backupCopy) e.backupCopy = { ...e.backupCopy };
    });
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

export const backoff = (base: number, failures: number): number => Math.min(base * 2 ** Math.max(0, failures - 1), 30 * 60_000);

/** How a copy in flight stands: its pod's result, a fault of the restore or the mount, or still on its way. */
export type Flight =
  | { kind: "done"; result: Partial<BackupCopyResult> }
  | { kind: "destination"; message: string }
  | { kind: "source"; message: string; once: string }
  | { kind: "missing"; message: string }
  | { kind: "restart" }
  | { kind: "wait"; running: boolean };

/**
 * A copy in flight (a vault or mirror copy, or a backup copy): `pod` and `claim` are its pod and restored volume,
 * `started` when its pod was asked for. The same rules for both: the pod's result decides; a snapshot gone is Missing;
 * a restore the storage refuses, a mount that fails (but not the kubelet's lagging view of the claim) or nothing
 * running after the staging timeout is a source fault; both objects gone a minute after they were asked for start it
 * again.
 */
export function flight(
  c: Ctx,
  e: Entry,
  s: VsFacts | undefined,
  pod: PodFacts | undefined,
  claim: ClaimFacts | undefined,
  started: number,
  names: { pod: string; claim: string },
): Flight {
  const { f, now } = c;
  if (pod?.result?.ok) return { kind: "done", result: pod.result.data };
  if (pod?.result && !pod.result.ok)
    return pod.result.data.sourceFault
      ? { kind: "source", message: pod.result.message, once: names.pod }
      : { kind: "destination", message: pod.result.message };
  if (s?.deleting || (!s && e.uid)) return { kind: "missing", message: `VolumeSnapshot ${e.name} was deleted during its copy` };
  if (claim?.failure && /code = NotFound/.test(claim.failure))
    return { kind: "missing", message: `the storage no longer has the snapshot: ${claim.failure}` };
  if (claim?.failure && /Unavailable|DeadlineExceeded/i.test(claim.failure))
    return { kind: "source", message: `restoring the volume failed: ${claim.failure}`, once: names.claim };
  // The kubelet's view of the restored claim lagging behind (it was created before the pod) is no fault of the
  // source: it retries the mount. Other mount failures (the storage refusing) cost an attempt.
  if (pod?.failedMount && !/persistentvolumeclaim "[^"]+" not found/i.test(pod.failedMount))
    return { kind: "source", message: `mounting the restored volume failed: ${pod.failedMount}`, once: names.pod };
  const staging = parseDuration("spec.stagingTimeout", f.sv.spec.stagingTimeout ?? "5m");
  if (pod?.phase !== "Running" && now - started >= staging) {
    const why =
      claim?.failure ?? pod?.failedMount ?? (claim?.phase === "Bound" ? "the copy pod did not start" : "the restored volume is not bound");
    return { kind: "source", message: `not ready after ${f.sv.spec.stagingTimeout ?? "5m"}: ${why}`, once: names.pod };
  }
  // Both gone before a result (deleted by hand): start the copy again. Not just after they were created: the caches
  // may not show them yet, and a second pod for the same snapshot would copy it twice.
  if (!pod && !claim && now - started >= CACHE_GRACE_MS) return { kind: "restart" };
  return { kind: "wait", running: pod?.phase === "Running" };
}

/** The PVC restored from a snapshot for one copy pod: read-only use, owned by the SnapVault, labelled for the sweep. */
export function restoreClaim(c: Ctx, e: Entry, s: VsFacts, name: string): Manifest {
  const { f } = c;
  const source = f.pvcs.find((p) => p.name === s.pvc);
  const storageClassName = f.sv.spec.source.storageClassName ?? s.storageClassName ?? e.storageClassName ?? source?.storageClassName;
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {
      name,
      namespace: f.sv.namespace,
      labels: { [Label.managedBy]: MANAGED_BY, [Label.snapVault]: labelValue(f.sv.name), [Label.volumeSnapshotUid]: s.uid },
      ownerReferences: [{ ...f.sv.owner, controller: true, blockOwnerDeletion: false }],
    },
    spec: {
      accessModes: ["ReadWriteOnce"],
      ...(storageClassName ? { storageClassName } : {}),
      resources: { requests: { storage: s.restoreSize ?? s.size ?? source?.size ?? "1Gi" } },
      dataSource: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: s.name },
    },
  };
}

/** The job a VolumeSnapshot's copies become, and its point in time (the copy pod's task). */
export function snapshotTask(c: Ctx, e: Entry, s: VsFacts, jobId: string): SnapCopyTask {
  const { f } = c;
  // Its snap job has missing snaps already: the copy says so, for extended retention (docs/snapvault.md).
  const job = e.cutBy === undefined ? [] : c.entries.filter((x) => x.cutBy === e.cutBy && x.state === "Missing");
  return {
    path: mountPathOf(s.pvc),
    jobId,
    status: job.length ? "completedWithErrors" : "completed",
    client: f.sv.namespace,
    subclient: s.pvc,
    snapVault: f.sv.name,
    volumeSnapshot: { name: s.name, uid: s.uid, handle: s.handle, creationTime: s.creationTime ?? e.creationTime ?? formatTime(c.now) },
  };
}
