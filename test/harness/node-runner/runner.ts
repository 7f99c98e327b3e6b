// The local node runner: a dev/test stand-in for the kubelet of one Node. It binds pods that fit the node (and
// whose claims are bound, as the scheduler waits), runs every container's command as a host process inside a
// private mount namespace (volumes bind-mounted at their mountPath; CSI volumes published by their driver first, as
// the kubelet does, and unpublished once the pod's processes are gone), reports pod and container status, keeps
// logs (served to `kubectl logs`), and kills process groups when pods are deleted or run past activeDeadlineSeconds.
// It is not a container runtime: there are no images, no cgroups, no network namespaces. docs/local-world.md lists
// what it does and does not do.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { isConflict, isNotFound, KubeError, type KubeRest, type Obj } from "../kube-rest.ts";
import { freePort } from "../net.ts";
import type { Pki } from "../pki.ts";
import { groupAlive, killGroup } from "../proc.ts";
import { CsiClient, CsiError } from "../csi/client.ts";
import { mountPointsUnder, readMounts } from "../mounts.ts";
import {
  ContainerConfigError,
  type ContainerExit,
  commandLine,
  finalPhase,
  projectKeys,
  resolveEnv,
  restartBackoffMs,
  safeRelative,
  schedulable,
  shouldRestart,
  terminatedState,
  terminationMessage,
} from "./podspec.ts";
import {
  type ClaimSource,
  claimBound,
  driverNotRegistered,
  publishFailureIsFinal,
  resolveClaim,
  setUpFailed,
  unboundClaimsMessage,
  waitsForBinding,
} from "./volumes.ts";

export interface NodeRunnerOptions {
  client: KubeRest;
  pki: Pki;
  /**
   * State folder: pod scratch space, volumes (CSI volumes are published under `pods/<pod>/volumes/kubernetes.io~csi/`),
   * logs, stand-in claim data (`claims/`). Whatever is still mounted under it when the runner starts is unmounted.
   */
  dir: string;
  nodeName?: string;
  /**
   * Host folders whose `bin` goes in front of PATH for pod processes (where `auxo`, node and restic live). Each
   * root is bind-mounted into the pod's namespace at a staging point, so that no volume (an emptyDir at /tmp, say)
   * can hide it.
   */
  toolDirs?: { root: string; bin: string }[];
  /** Commands for images, for containers that give no command (the runner has no image entrypoints). */
  entrypoints?: Record<string, string[]>;
  /** The API server, exported to pods as KUBERNETES_SERVICE_HOST/PORT so in-cluster clients reach it. */
  apiServer: { host: string; port: number };
  /** Multiplies restart back-off delays (tests use a small factor). */
  restartBackoffScale?: number;
  labels?: Record<string, string>;
  /**
   * The CSI drivers registered on the node: driver name → its unix socket (what the kubelet learns from plugin
   * registration). A PersistentVolume of another driver fails to mount with the kubelet's message.
   */
  csiDrivers?: Record<string, string>;
}

/** A pod volume as the containers see it: a host folder (or file) to bind at each mountPath. */
interface VolumeSource {
  src: string;
  /** Read-only for every container (a read-only claim or CSI publish), whatever its volumeMount says. */
  readOnly?: boolean;
}

/** A CSI volume published (or perhaps published: a publish that failed uncertainly) for a pod. */
interface CsiPublished {
  driver: string;
  volumeId: string;
  pvName: string;
  targetPath: string;
}

interface Mount {
  src: string;
  dst: string;
  readOnly: boolean;
  file: boolean;
}

interface ContainerRun {
  name: string;
  init: boolean;
  spec: Obj;
  child?: ChildProcess;
  pid?: number;
  startedAt?: string;
  restartCount: number;
  waiting?: { reason: string; message?: string };
  last?: Obj; // lastState.terminated
  exit?: ContainerExit; // set when the container has stopped for good
  logFile: string;
  termFile: string;
  /** Staging folders of tool mounts, removed from the host once the container has exited. */
  toolStages: string[];
}

interface PodRun {
  uid: string;
  namespace: string;
  name: string;
  pod: Obj;
  dir: string;
  containers: ContainerRun[];
  startTime: string;
  phase: "Pending" | "Running" | "Succeeded" | "Failed";
  reason?: string;
  message?: string;
  stopping: boolean;
  deadline?: NodeJS.Timeout;
  initDone: boolean;
  /** CSI volumes to unpublish at teardown, by target path. */
  csi: Map<string, CsiPublished>;
  /** The volume preparation under way, if any: teardown waits for it, so no publish lands after an unpublish. */
  preparing?: Promise<unknown>;
  /** The teardown of the pod's CSI volumes, once started: true when every one is unpublished. */
  teardown?: Promise<boolean>;
}

/** Gives a volume's files to `gid` (recursively); writable volumes become group-writable with the setgid bit. */
function chownGroup(p: string, gid: number, writable: boolean): void {
  const st = lstatSync(p);
  if (st.isSymbolicLink()) return;
  chownSync(p, st.uid, gid);
  if (st.isDirectory()) {
    if (writable) chmodSync(p, 0o2775);
    for (const f of readdirSync(p)) chownGroup(path.join(p, f), gid, writable);
  } else if (writable) {
    chmodSync(p, st.mode | 0o060);
  }
}

/** A folder for staging mounts that no destination covers (so that mounting destinations cannot hide it). */
export function stagingRoot(destinations: string[], fallback: string): string {
  const covered = (p: string) => destinations.some((d) => p === d || p.startsWith(`${d.replace(/\/$/, "")}/`) || d === "/");
  const candidates = ["/run/auxo-local-node", "/var/tmp/auxo-local-node", "/dev/shm/auxo-local-node", path.join(fallback, "stage")];
  return candidates.find((c) => !covered(c)) ?? (candidates[3] as string);
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The mount points under `dir` in this process's mount namespace, deepest first. */
function mountsUnder(dir: string): string[] {
  return mountPointsUnder(
    readMounts().map((m) => m.mountPoint),
    dir,
  );
}

/**
 * Lazily unmounts (`umount -l`) every mount point under `dir`, deepest first, and returns those it unmounted: what a
 * killed runner left mounted (its pods' CSI volumes) before the folder is reused or removed.
 */
export function unmountUnder(dir: string): string[] {
  const done: string[] = [];
  for (const p of mountsUnder(dir)) {
    try {
      execFileSync("umount", ["-l", p], { stdio: "ignore" });
      done.push(p);
    } catch {
      // gone with a parent meanwhile
    }
  }
  return done;
}

/** Removes a folder of the runner's, unless something is still mounted beneath it (its data is not ours to delete). */
function removeTree(dir: string): string[] {
  const mounted = existsSync(dir) ? mountsUnder(dir) : [];
  if (mounted.length === 0) rmSync(dir, { recursive: true, force: true });
  return mounted;
}

export class NodeRunner {
  readonly nodeName: string;
  readonly dir: string;
  kubeletPort = 0;
  private readonly opts: NodeRunnerOptions;
  private readonly kube: KubeRest;
  private readonly runs = new Map<string, PodRun>(); // by pod uid
  private readonly queue = new Map<string, Promise<void>>(); // per-pod serialisation
  private server?: https.Server;
  private heartbeat?: NodeJS.Timeout;
  private stopped = false;
  /** Process groups of every container started and not yet reaped: stop() ends them all, whatever their pod. */
  private readonly groups = new Set<number>();
  private watchStop?: () => void;
  private loop?: Promise<void>;
  private lastStatusBeat = 0;
  /** Errors the runner met (reported by tests when something goes wrong). */
  readonly errors: string[] = [];
  /** One client per registered CSI driver, made on first use. */
  private readonly csiClients = new Map<string, CsiClient>();
  /** Pods left unbound because a claim waits for binding: their re-check timer (by pod uid). */
  private readonly unschedulable = new Map<string, { attempt: number; timer?: NodeJS.Timeout }>();
  /** Resolves when stop() begins, so back-off waits and abandoned calls end at once. */
  private readonly stopSignal: Promise<void>;
  private signalStop: () => void = () => {};

  constructor(opts: NodeRunnerOptions) {
    this.opts = opts;
    this.kube = opts.client;
    this.nodeName = opts.nodeName ?? "auxo-local";
    this.dir = opts.dir;
    this.stopSignal = new Promise((r) => (this.signalStop = r));
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    // A runner killed before (a killed `make run` reuses its folder) may have left its pods' CSI volumes mounted.
    for (const p of unmountUnder(this.dir)) this.error("start", new Error(`unmounted ${p}, left by an earlier runner`));
    await this.startKubeletServer();
    await this.registerNode();
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat().catch((e) => this.error("heartbeat", e)), 10_000);
    this.loop = this.watchLoop();
  }

  /**
   * Stops taking pods first (no pod starts and no container spawns once `stopped` is set: the check and the spawn
   * happen in one tick), then ends every process it started, including ones started while it was stopping (a
   * reconcile's pod whose env was still being read): a process left behind would outlive the world, as a non-root
   * MediaAgent loses its parent-death signal when it changes user.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.signalStop();
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const w of this.unschedulable.values()) clearTimeout(w.timer);
    this.watchStop?.();
    await this.loop;
    await Promise.all([...this.runs.values()].map((r) => this.killPod(r, 2)));
    // Work already queued for a pod (a sync, a deadline) may still be running: let it end, then sweep.
    await Promise.allSettled([...this.queue.values()]);
    await Promise.all([...this.runs.values()].map((r) => this.killPod(r, 0)));
    for (const pid of this.groups) killGroup(pid, "SIGKILL");
    while ([...this.groups].some(groupAlive)) await sleep(50);
    // The processes are gone: unpublish what is still published, each call with a short deadline so that a hung
    // driver cannot hold the stop; what could not be unpublished is logged (the next start unmounts it).
    await Promise.all(
      [...this.runs.values()].map(async (r) => {
        await Promise.race([r.preparing, sleep(3000)]);
        if (!(await this.unpublishOnce(r, 3000))) {
          for (const v of r.csi.values()) this.error("stop", new Error(`left CSI volume ${v.pvName} published at ${v.targetPath}`));
        }
      }),
    );
    for (const c of this.csiClients.values()) c.close();
    this.csiClients.clear();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private error(where: string, err: unknown): void {
    const msg = `${where}: ${err instanceof Error ? err.message : String(err)}`;
    this.errors.push(msg);
    if (this.errors.length > 200) this.errors.shift();
  }

  // ---------------------------------------------------------------- node registration and heartbeats

  private labels(): Record<string, string> {
    return {
      "kubernetes.io/hostname": this.nodeName,
      "kubernetes.io/os": "linux",
      "kubernetes.io/arch": os.arch() === "x64" ? "amd64" : os.arch(),
      "auxo.dev/local-node": "true",
      ...this.opts.labels,
    };
  }

  private nodeStatus(): Obj {
    const t = now();
    const cond = (type: string, status: string, reason: string, message: string) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: t,
      lastTransitionTime: t,
    });
    return {
      capacity: { cpu: String(os.cpus().length), memory: `${Math.floor(os.totalmem() / 1024)}Ki`, pods: "110" },
      allocatable: { cpu: String(os.cpus().length), memory: `${Math.floor(os.totalmem() / 1024)}Ki`, pods: "110" },
      conditions: [
        cond("Ready", "True", "KubeletReady", "local node runner is ready"),
        cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "no memory pressure"),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "no PID pressure"),
      ],
      addresses: [
        { type: "InternalIP", address: "127.0.0.1" },
        { type: "Hostname", address: this.nodeName },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: this.kubeletPort } },
      nodeInfo: {
        machineID: "",
        systemUUID: "",
        bootID: "",
        kernelVersion: os.release(),
        osImage: "auxo local node runner",
        containerRuntimeVersion: "auxo-local://host-processes",
        kubeletVersion: "v0.0.0-auxo-local",
        kubeProxyVersion: "",
        operatingSystem: "linux",
        architecture: os.arch() === "x64" ? "amd64" : os.arch(),
      },
    };
  }

  private async registerNode(): Promise<void> {
    const node = { apiVersion: "v1", kind: "Node", metadata: { name: this.nodeName, labels: this.labels() } };
    try {
      await this.kube.create("/api/v1/nodes", node);
    } catch (err) {
      if (!isConflict(err)) throw err;
      await this.kube.patch(`/api/v1/nodes/${this.nodeName}`, { metadata: { labels: this.labels() }, spec: { taints: null } });
    }
    await this.kube.patch(`/api/v1/nodes/${this.nodeName}/status`, { status: this.nodeStatus() }, "merge");
    this.lastStatusBeat = Date.now();
  }

  /** Renews the node Lease every beat and the Ready condition every minute, as the kubelet does. */
  private async beat(): Promise<void> {
    const leasePath = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.nodeName}`;
    const spec = { holderIdentity: this.nodeName, leaseDurationSeconds: 40, renewTime: new Date().toISOString().replace("Z", "000Z") };
    try {
      await this.kube.patch(leasePath, { spec }, "merge");
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.kube.create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
        metadata: { name: this.nodeName },
        spec,
      });
    }
    if (Date.now() - this.lastStatusBeat > 60_000) {
      await this.kube.patch(`/api/v1/nodes/${this.nodeName}/status`, { status: this.nodeStatus() }, "merge");
      this.lastStatusBeat = Date.now();
    }
  }

  // ---------------------------------------------------------------- watching pods

  private async watchLoop(): Promise<void> {
    let backoff = 200;
    while (!this.stopped) {
      try {
        const list = await this.kube.get("/api/v1/pods");
        const seen = new Set<string>();
        for (const pod of list.items as Obj[]) {
          seen.add(pod.metadata.uid);
          this.enqueue({ ...pod, apiVersion: "v1", kind: "Pod" });
        }
        // Pods that vanished while the watch was down: stop what still runs.
        for (const run of this.runs.values()) {
          if (!seen.has(run.uid)) this.enqueueGone(run);
        }
        let rv: string = list.metadata.resourceVersion;
        backoff = 200;
        for (;;) {
          if (this.stopped) return;
          let expired = false;
          const w = this.kube.watch("/api/v1/pods", rv, (type, obj) => {
            if (type === "ERROR") {
              if (obj.code === 410) expired = true;
              else expired = true; // any watch error: relist to be safe
              return;
            }
            rv = obj.metadata?.resourceVersion ?? rv;
            if (type === "BOOKMARK") return;
            if (type === "DELETED") {
              const run = this.runs.get(obj.metadata.uid);
              if (run) this.enqueueGone(run);
              return;
            }
            this.enqueue(obj);
          });
          this.watchStop = w.stop;
          await w.done;
          if (expired) break;
        }
      } catch (err) {
        if (this.stopped) return;
        this.error("watch", err);
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  private serial(uid: string, fn: () => Promise<void>): void {
    const prev = this.queue.get(uid) ?? Promise.resolve();
    const next = prev.then(fn).catch((err) => this.error(`pod ${uid}`, err));
    this.queue.set(uid, next);
    void next.then(() => {
      if (this.queue.get(uid) === next) this.queue.delete(uid);
    });
  }

  private enqueue(pod: Obj): void {
    if (this.stopped) return;
    this.serial(pod.metadata.uid, () => this.sync(pod));
  }

  private enqueueGone(run: PodRun): void {
    this.serial(run.uid, async () => {
      await this.killPod(run, 0);
      await this.forget(run);
    });
  }

  /**
   * Once a pod's processes are gone: its CSI volumes unpublished (waiting as long as that takes, as the kubelet
   * does), then its folder removed. False when the runner stopped first (stop() makes a last attempt).
   */
  private async forget(run: PodRun): Promise<boolean> {
    if (!(await this.unpublishAll(run))) return false;
    this.runs.delete(run.uid);
    const mounted = removeTree(run.dir);
    if (mounted.length > 0)
      this.error(`pod ${run.namespace}/${run.name}`, new Error(`kept ${run.dir}: still mounted ${mounted.join(", ")}`));
    return true;
  }

  private async sync(pod: Obj): Promise<void> {
    const uid: string = pod.metadata.uid;
    // A runner that is stopping binds and starts no pod (queued work may still reach here).
    if (this.stopped && !this.runs.has(uid)) return;
    if (!pod.spec.nodeName) {
      if (!schedulable(pod, { name: this.nodeName, labels: this.labels() })) return;
      if (await this.claimsWaitForBinding(pod)) return this.leaveUnscheduled(pod);
      this.forgetUnschedulable(uid);
      try {
        await this.bind(pod);
      } catch (err) {
        // As a scheduler does: a bind that failed (an API server too slow under load) is tried again, else the pod
        // would wait for an event that never comes.
        this.error(`pod ${pod.metadata.namespace}/${pod.metadata.name}`, err);
        this.bindAgainLater(pod);
      }
      return;
    }
    this.forgetUnschedulable(uid);
    if (pod.spec.nodeName !== this.nodeName) return;
    const run = this.runs.get(uid);
    if (pod.metadata.deletionTimestamp) {
      const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30;
      if (run) {
        await this.event(pod, "Normal", "Killing", "Stopping the pod's processes");
        await this.killPod(run, grace);
        // The pod object stays until its volumes are unpublished, as the kubelet waits.
        if (!(await this.forget(run))) return;
      }
      // The kubelet confirms a graceful deletion by deleting with grace period 0, once nothing runs.
      await this.kube.deleteIfExists(`/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`, {
        apiVersion: "v1",
        kind: "DeleteOptions",
        gracePeriodSeconds: 0,
        preconditions: { uid },
      });
      return;
    }
    if (run) {
      run.pod = pod;
      return;
    }
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") return;
    if (phase === "Running") {
      // Bound here and running, but not by this process: the runner restarted and the processes are gone.
      await this.patchStatus(pod, {
        phase: "Failed",
        reason: "NodeRunnerRestarted",
        message: "The local node runner restarted while this pod ran; its processes are gone.",
      });
      return;
    }
    this.startPod(pod);
  }

  /**
   * True when a claim of the pod waits for binding (a class, data source or volume named, not Bound yet): the
   * scheduler does not bind such a pod. A missing claim does not hold the pod here; the mount reports it.
   */
  private async claimsWaitForBinding(pod: Obj): Promise<boolean> {
    for (const v of (pod.spec.volumes ?? []) as Obj[]) {
      if (!v.persistentVolumeClaim) continue;
      const pvc = await this.getClaim(pod.metadata.namespace, v.persistentVolumeClaim.claimName).catch(() => undefined);
      if (pvc && waitsForBinding(pvc)) return true;
    }
    return false;
  }

  /**
   * The scheduler's answer to a pod whose claims are unbound: one Warning FailedScheduling event and the
   * PodScheduled=False condition, then re-checks with back-off (the runner watches pods, not claims) until bound.
   */
  private async leaveUnscheduled(pod: Obj): Promise<void> {
    const uid: string = pod.metadata.uid;
    let w = this.unschedulable.get(uid);
    if (!w) {
      w = { attempt: 0 };
      this.unschedulable.set(uid, w);
      const message = unboundClaimsMessage();
      await this.event(pod, "Warning", "FailedScheduling", message, "default-scheduler");
      await this.patchStatus(pod, {
        conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message, lastTransitionTime: now() }],
      });
    }
    if (w.timer || this.stopped) return;
    const entry = w;
    entry.timer = setTimeout(
      () => {
        entry.timer = undefined;
        void this.recheck(pod.metadata.namespace, pod.metadata.name, uid).catch((err) => this.error(`pod ${uid}`, err));
      },
      Math.min(500 * 2 ** entry.attempt++, 5000),
    );
  }

  private async recheck(namespace: string, name: string, uid: string): Promise<void> {
    if (this.stopped) return;
    let pod: Obj | undefined;
    try {
      pod = await this.kube.get(`/api/v1/namespaces/${namespace}/pods/${name}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (!pod || pod.metadata.uid !== uid) this.forgetUnschedulable(uid);
    else this.enqueue({ ...pod, apiVersion: "v1", kind: "Pod" });
  }

  private forgetUnschedulable(uid: string): void {
    const w = this.unschedulable.get(uid);
    if (!w) return;
    clearTimeout(w.timer);
    this.unschedulable.delete(uid);
  }

  private bindAgainLater(pod: Obj): void {
    const timer = setTimeout(() => {
      if (this.stopped) return;
      this.kube
        .get(`/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`)
        .then((fresh: Obj) => {
          if (fresh.metadata.uid === pod.metadata.uid && !fresh.spec.nodeName) this.enqueue({ ...fresh, apiVersion: "v1", kind: "Pod" });
        })
        .catch(() => undefined); // gone, or the server still away: the watch brings it back
    }, 1000);
    timer.unref();
  }

  private async bind(pod: Obj): Promise<void> {
    try {
      await this.kube.create(`/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/binding`, {
        apiVersion: "v1",
        kind: "Binding",
        metadata: { name: pod.metadata.name, uid: pod.metadata.uid },
        target: { apiVersion: "v1", kind: "Node", name: this.nodeName },
      });
      await this.event(
        pod,
        "Normal",
        "Scheduled",
        `Successfully assigned ${pod.metadata.namespace}/${pod.metadata.name} to ${this.nodeName}`,
        "default-scheduler",
      );
    } catch (err) {
      // A pod created just before its namespace began to terminate can no longer be bound: a scheduler skips it too.
      const terminating = err instanceof Error && /because it is being terminated/.test(err.message);
      if (!isConflict(err) && !isNotFound(err) && !terminating) throw err;
    }
  }

  // ---------------------------------------------------------------- running a pod

  private startPod(pod: Obj): void {
    const uid: string = pod.metadata.uid;
    const dir = path.join(this.dir, "pods", `${pod.metadata.namespace}_${pod.metadata.name}_${uid}`);
    mkdirSync(path.join(dir, "logs"), { recursive: true });
    const mk = (c: Obj, init: boolean): ContainerRun => {
      const cdir = path.join(dir, "containers", c.name);
      mkdirSync(cdir, { recursive: true });
      return {
        name: c.name,
        init,
        spec: c,
        restartCount: 0,
        logFile: path.join(dir, "logs", `${c.name}.log`),
        termFile: path.join(cdir, "termination-log"),
        toolStages: [],
        waiting: { reason: init ? "PodInitializing" : "ContainerCreating" },
      };
    };
    const run: PodRun = {
      uid,
      namespace: pod.metadata.namespace,
      name: pod.metadata.name,
      pod,
      dir,
      containers: [...(pod.spec.initContainers ?? []).map((c: Obj) => mk(c, true)), ...pod.spec.containers.map((c: Obj) => mk(c, false))],
      startTime: pod.status?.startTime ?? now(),
      phase: "Pending",
      stopping: false,
      initDone: !(pod.spec.initContainers?.length > 0),
      csi: new Map(),
    };
    this.runs.set(uid, run);
    const ads = pod.spec.activeDeadlineSeconds;
    if (typeof ads === "number") {
      const left = Date.parse(run.startTime) + ads * 1000 - Date.now();
      run.deadline = setTimeout(() => this.serial(uid, () => this.deadlineExceeded(run)), Math.max(0, left));
    }
    void this.runPod(run).catch((err) => this.error(`pod ${run.namespace}/${run.name}`, err));
  }

  private async deadlineExceeded(run: PodRun): Promise<void> {
    if (run.stopping || run.phase === "Succeeded" || run.phase === "Failed") return;
    run.reason = "DeadlineExceeded";
    run.message = `Pod was active on the node longer than the specified deadline`;
    await this.event(run.pod, "Normal", "DeadlineExceeded", run.message);
    await this.killPod(run, run.pod.spec.terminationGracePeriodSeconds ?? 30);
    run.phase = "Failed";
    await this.report(run);
    void this.unpublishAll(run);
  }

  private async runPod(run: PodRun): Promise<void> {
    await this.report(run);
    // Volumes first; a missing Secret, ConfigMap or claim, or a CSI publish that fails, keeps the pod Pending and
    // is retried, like the kubelet. An event whenever the cause changes: the user sees the current one.
    let mounts: Map<string, VolumeSource> | undefined;
    let reported: string | undefined;
    for (let attempt = 0; !mounts; attempt++) {
      if (run.stopping) return;
      try {
        const preparing = this.prepareVolumes(run);
        run.preparing = preparing.catch(() => undefined);
        mounts = await preparing;
      } catch (err) {
        if (run.stopping) return;
        const message = err instanceof Error ? err.message : String(err);
        for (const c of run.containers) c.waiting = { reason: "ContainerCreating", message };
        if (message !== reported) await this.event(run.pod, "Warning", "FailedMount", message);
        reported = message;
        await this.report(run);
        await Promise.race([sleep(Math.min(1000 * 2 ** attempt, 10_000)), this.stopSignal]);
      }
    }
    if (run.stopping) return;
    for (const c of run.containers.filter((c) => c.init)) {
      const ok = await this.runContainer(run, c, mounts);
      if (!ok) return this.finish(run);
    }
    run.initDone = true;
    const main = run.containers.filter((c) => !c.init);
    await Promise.all(main.map((c) => this.runContainer(run, c, mounts)));
    await this.finish(run);
  }

  /** The pod's containers have stopped for good: its phase, then (in the background) its CSI volumes' teardown. */
  private async finish(run: PodRun): Promise<void> {
    if (run.stopping || run.phase === "Failed" || run.phase === "Succeeded") return;
    clearTimeout(run.deadline);
    const exits = run.containers.filter((c) => c.exit).map((c) => c.exit as ContainerExit);
    run.phase = finalPhase(exits);
    await this.report(run);
    void this.unpublishAll(run);
  }

  /** Runs one container until it stops for good; true when it ended with exit code 0. */
  private async runContainer(run: PodRun, c: ContainerRun, mounts: Map<string, VolumeSource>): Promise<boolean> {
    const restartPolicy = c.init && run.pod.spec.restartPolicy === "Always" ? "OnFailure" : run.pod.spec.restartPolicy;
    for (;;) {
      if (run.stopping) return false;
      let env: Map<string, string>;
      let argv: string[];
      try {
        await this.fetchEnvSources(run, c.spec);
        env = resolveEnv(run.pod, c.spec, {
          secret: (n) => this.cachedData(run, "secrets", n),
          configMap: (n) => this.cachedData(run, "configmaps", n),
        });
        argv = commandLine(c.spec, env, this.opts.entrypoints ?? {});
      } catch (err) {
        if (!(err instanceof ContainerConfigError)) throw err;
        if (c.waiting?.message !== err.message) {
          c.waiting = { reason: "CreateContainerConfigError", message: err.message };
          await this.event(run.pod, "Warning", "Failed", `Error: ${err.message}`);
          await this.report(run);
        }
        await new Promise((r) => setTimeout(r, 2000));
        continue;
      }
      const exit = await this.spawnContainer(run, c, env, argv, mounts);
      if (run.stopping) {
        c.exit = exit;
        return false;
      }
      if (!shouldRestart(restartPolicy, exit.exitCode)) {
        c.exit = exit;
        await this.report(run);
        return exit.exitCode === 0;
      }
      c.last = terminatedState(exit);
      c.restartCount++;
      c.child = undefined;
      c.waiting = { reason: "CrashLoopBackOff", message: `back-off restarting failed container ${c.name}` };
      await this.report(run);
      await new Promise((r) => setTimeout(r, restartBackoffMs(c.restartCount, this.opts.restartBackoffScale ?? 1)));
    }
  }

  private async spawnContainer(
    run: PodRun,
    c: ContainerRun,
    env: Map<string, string>,
    argv: string[],
    volumes: Map<string, VolumeSource>,
  ): Promise<ContainerExit> {
    const mounts: Mount[] = [];
    for (const vm of c.spec.volumeMounts ?? []) {
      const vol = volumes.get(vm.name);
      if (!vol) throw new Error(`volumeMount ${vm.name} names no volume`);
      let src = vol.src;
      if (vm.subPath) {
        if (!safeRelative(vm.subPath)) throw new Error(`subPath ${vm.subPath} leaves its volume`);
        src = path.join(src, vm.subPath);
        if (!existsSync(src)) mkdirSync(src, { recursive: true });
      }
      mounts.push({ src, dst: vm.mountPath, readOnly: vm.readOnly === true || vol.readOnly === true, file: statSync(src).isFile() });
    }
    writeFileSync(c.termFile, "");
    chmodSync(c.termFile, 0o666); // as the kubelet's: a non-root container writes its own message
    mounts.push({ src: c.termFile, dst: c.spec.terminationMessagePath ?? "/dev/termination-log", readOnly: false, file: true });
    const workdir = c.spec.workingDir ?? path.join(run.dir, "containers", c.name);
    // A private UTS namespace gives the pod its own hostname, as a container has.
    const script: string[] = ["set -e", `hostname ${q(run.pod.spec.hostname ?? run.name)}`];
    // Two phases, because a mount can hide the source of another (an emptyDir at /tmp hides a runner folder under
    // /tmp): first every source is bind-mounted to a staging point outside all destinations, then staging points
    // go to their destinations, parents before children.
    const stageRoot = stagingRoot(
      mounts.map((m) => m.dst),
      run.dir,
    );
    const staged = mounts.map((m, i) => ({ ...m, stage: path.join(stageRoot, `${run.uid}-${c.name}-${i}`) }));
    for (const m of staged) {
      script.push(m.file ? `mkdir -p ${q(stageRoot)}; : > ${q(m.stage)}` : `mkdir -p ${q(m.stage)}`);
      script.push(`mount --bind ${q(m.src)} ${q(m.stage)}`);
    }
    // Tools are staged before any destination is mounted (a volume could hide them) and stay mounted at their staging points for the life of the process: PATH points there.
    const toolPath: string[] = [];
    (this.opts.toolDirs ?? []).forEach((t, i) => {
      const stage = path.join(stageRoot, `${run.uid}-${c.name}-tool-${i}`);
      script.push(`mkdir -p ${q(stage)}`, `mount --bind ${q(t.root)} ${q(stage)}`, `mount -o remount,bind,ro ${q(stage)}`);
      toolPath.push(path.join(stage, t.bin));
      c.toolStages.push(stage);
    });
    for (const m of [...staged].sort((a, b) => a.dst.split("/").length - b.dst.split("/").length)) {
      // A mount point must exist; missing ones are created (empty) on the host, outside the namespace too.
      script.push(m.file ? `[ -e ${q(m.dst)} ] || { mkdir -p "$(dirname ${q(m.dst)})"; : > ${q(m.dst)}; }` : `mkdir -p ${q(m.dst)}`);
      script.push(`mount --bind ${q(m.stage)} ${q(m.dst)}`);
      if (m.readOnly) script.push(`mount -o remount,bind,ro ${q(m.dst)}`);
    }
    // Only after a successful unmount is the staging point removed (never the source behind it).
    for (const m of staged) script.push(`umount ${q(m.stage)} && ${m.file ? "rm -f" : "rmdir"} ${q(m.stage)}`);
    script.push(`mkdir -p ${q(workdir)}`, `cd ${q(workdir)}`);
    const sc = { ...run.pod.spec.securityContext, ...c.spec.securityContext };
    if (sc.runAsUser !== undefined || sc.runAsGroup !== undefined) {
      const groups = [sc.fsGroup, ...(sc.supplementalGroups ?? [])].filter((g) => g !== undefined);
      const ids = [`--reuid=${sc.runAsUser ?? 0}`, `--regid=${sc.runAsGroup ?? sc.runAsUser ?? 0}`];
      ids.push(groups.length > 0 ? `--groups=${groups.join(",")}` : "--clear-groups");
      script.push(`exec setpriv ${ids.join(" ")} -- "$@"`);
    } else {
      script.push(`exec "$@"`);
    }
    const processEnv: Record<string, string> = {
      PATH: [...toolPath, process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin"].join(":"),
      HOME: "/root",
      HOSTNAME: run.name,
      KUBERNETES_SERVICE_HOST: this.opts.apiServer.host,
      KUBERNETES_SERVICE_PORT: String(this.opts.apiServer.port),
      KUBERNETES_SERVICE_PORT_HTTPS: String(this.opts.apiServer.port),
      ...Object.fromEntries(env),
    };
    // Stopping (the runner or this pod) while the container was being prepared: it must not start. Nothing awaits
    // between this check and the spawn, so stop() sees every process that did start.
    if (this.stopped || run.stopping) {
      return { name: c.name, exitCode: 137, startedAt: now(), finishedAt: now(), message: "not started: the pod is stopping" };
    }
    const fd = openSync(c.logFile, "a");
    c.startedAt = now();
    const child = spawn(
      "setpriv",
      [
        "--pdeathsig",
        "SIGKILL",
        "--",
        "unshare",
        "--mount",
        "--uts",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        script.join("\n"),
        "sh",
        ...argv,
      ],
      { env: processEnv, detached: true, stdio: ["ignore", fd, fd] },
    );
    closeSync(fd);
    c.child = child;
    c.pid = child.pid;
    const group = child.pid;
    if (group !== undefined) {
      this.groups.add(group);
      child.once("exit", () => {
        // The group may outlive its leader for a moment: forget it only once it is gone.
        killGroup(group, "SIGKILL");
        this.groups.delete(group);
      });
    }
    c.waiting = undefined;
    run.phase = run.phase === "Pending" && !c.init ? "Running" : run.phase;
    const startedAt = c.startedAt;
    const exited = new Promise<ContainerExit>((resolve) => {
      child.once("exit", (code, signal) => {
        resolve({
          name: c.name,
          exitCode: code ?? 128 + (signal === "SIGKILL" ? 9 : 15),
          signal: signal ?? undefined,
          startedAt,
          finishedAt: now(),
        });
      });
      child.once("error", (err) => resolve({ name: c.name, exitCode: 128, startedAt, finishedAt: now(), message: err.message }));
    });
    await this.event(run.pod, "Normal", "Started", `Started container ${c.name}`);
    await this.report(run);
    const exit = await exited;
    // Whatever the container left running in its group goes with it, as with a container's cgroup.
    if (c.pid) killGroup(c.pid, "SIGKILL");
    // The namespace is gone with its processes; its empty mount points on the host go too.
    for (const stage of c.toolStages.splice(0)) {
      try {
        rmdirSync(stage);
      } catch {
        // still mounted elsewhere or not empty: leave it
      }
    }
    let file: string | undefined;
    try {
      file = readFileSync(c.termFile, "utf8");
    } catch {
      file = undefined;
    }
    exit.message ??= terminationMessage(c.spec.terminationMessagePolicy, file, exit.exitCode, this.readLog(c.logFile, 80));
    return exit;
  }

  /** SIGTERM to every container's process group, SIGKILL after `graceSeconds`. */
  private async killPod(run: PodRun, graceSeconds: number): Promise<void> {
    run.stopping = true;
    clearTimeout(run.deadline);
    const pids = run.containers.map((c) => c.pid).filter((p): p is number => p !== undefined && groupAlive(p));
    for (const pid of pids) killGroup(pid, "SIGTERM");
    const deadline = Date.now() + graceSeconds * 1000;
    while (pids.some(groupAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const pid of pids) killGroup(pid, "SIGKILL");
    while (pids.some(groupAlive)) await new Promise((r) => setTimeout(r, 50));
  }

  // ---------------------------------------------------------------- volumes and env sources

  private cache = new Map<string, Record<string, string> | null>(); // `${uid}/${kind}/${name}`

  private cachedData(run: PodRun, kind: "secrets" | "configmaps", name: string): Record<string, string> | undefined {
    return this.cache.get(`${run.uid}/${kind}/${name}`) ?? undefined;
  }

  private async readData(namespace: string, kind: "secrets" | "configmaps", name: string): Promise<Record<string, string> | undefined> {
    try {
      const obj = await this.kube.get(`/api/v1/namespaces/${namespace}/${kind}/${name}`);
      if (kind === "secrets") {
        return Object.fromEntries(
          Object.entries((obj.data ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
        );
      }
      return { ...(obj.data ?? {}) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async fetchEnvSources(run: PodRun, container: Obj): Promise<void> {
    const refs: ["secrets" | "configmaps", string][] = [];
    for (const f of container.envFrom ?? []) {
      if (f.secretRef) refs.push(["secrets", f.secretRef.name]);
      if (f.configMapRef) refs.push(["configmaps", f.configMapRef.name]);
    }
    for (const e of container.env ?? []) {
      if (e.valueFrom?.secretKeyRef) refs.push(["secrets", e.valueFrom.secretKeyRef.name]);
      if (e.valueFrom?.configMapKeyRef) refs.push(["configmaps", e.valueFrom.configMapKeyRef.name]);
    }
    for (const [kind, name] of refs) {
      this.cache.set(`${run.uid}/${kind}/${name}`, (await this.readData(run.namespace, kind, name)) ?? null);
    }
  }

  private writeFiles(dir: string, files: { path: string; content: string | Buffer; mode: number }[]): void {
    mkdirSync(dir, { recursive: true });
    for (const f of files) {
      if (!safeRelative(f.path)) throw new Error(`volume item path ${f.path} leaves its volume`);
      const target = path.join(dir, f.path);
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, f.content, { mode: f.mode });
    }
  }

  /** Makes every volume of the pod a host folder (or file); throws with the kubelet's message when one can't be. */
  private async prepareVolumes(run: PodRun): Promise<Map<string, VolumeSource>> {
    const out = await this.prepareVolumeDirs(run);
    // fsGroup, as the kubelet applies it: volumes belong to the group, writable ones get the setgid bit. A claim
    // mounted read-only is left alone (it cannot be chowned, and the kubelet skips it).
    const fsGroup: number | undefined = run.pod.spec.securityContext?.fsGroup;
    if (fsGroup !== undefined) {
      for (const v of (run.pod.spec.volumes ?? []) as Obj[]) {
        const vol = out.get(v.name);
        if (!vol || v.hostPath || (v.persistentVolumeClaim && vol.readOnly)) continue;
        const writable = v.emptyDir !== undefined || v.persistentVolumeClaim !== undefined;
        chownGroup(vol.src, fsGroup, writable);
      }
    }
    return out;
  }

  private async prepareVolumeDirs(run: PodRun): Promise<Map<string, VolumeSource>> {
    const out = new Map<string, VolumeSource>();
    const ns = run.namespace;
    for (const v of (run.pod.spec.volumes ?? []) as Obj[]) {
      const dir = path.join(run.dir, "volumes", v.name);
      if (v.emptyDir) {
        mkdirSync(dir, { recursive: true });
        out.set(v.name, { src: dir });
      } else if (v.secret || v.configMap) {
        const kind = v.secret ? "secrets" : "configmaps";
        const name = v.secret ? v.secret.secretName : v.configMap.name;
        const src = v.secret ?? v.configMap;
        const data = await this.readData(ns, kind, name);
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        if (!data) {
          if (src.optional) {
            out.set(v.name, { src: dir });
            continue;
          }
          throw new Error(`MountVolume.SetUp failed for volume "${v.name}" : ${v.secret ? "secret" : "configmap"} "${name}" not found`);
        }
        this.writeFiles(dir, projectKeys(data, src.items, src.defaultMode));
        out.set(v.name, { src: dir });
      } else if (v.projected) {
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        for (const s of v.projected.sources as Obj[]) {
          if (s.serviceAccountToken) {
            const sa = run.pod.spec.serviceAccountName ?? "default";
            const tr = await this.kube.create(`/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
              apiVersion: "authentication.k8s.io/v1",
              kind: "TokenRequest",
              spec: {
                audiences: s.serviceAccountToken.audience ? [s.serviceAccountToken.audience] : undefined,
                expirationSeconds: s.serviceAccountToken.expirationSeconds ?? 3607,
                boundObjectRef: { apiVersion: "v1", kind: "Pod", name: run.name, uid: run.uid },
              },
            });
            this.writeFiles(dir, [{ path: s.serviceAccountToken.path, content: tr.status.token, mode: v.projected.defaultMode ?? 0o644 }]);
          } else if (s.secret || s.configMap) {
            const kind = s.secret ? "secrets" : "configmaps";
            const ref = s.secret ?? s.configMap;
            const data = await this.readData(ns, kind, ref.name);
            if (!data) {
              if (ref.optional) continue;
              throw new Error(
                `MountVolume.SetUp failed for volume "${v.name}" : ${kind === "secrets" ? "secret" : "configmap"} "${ref.name}" not found`,
              );
            }
            this.writeFiles(dir, projectKeys(data, ref.items, v.projected.defaultMode));
          } else if (s.downwardAPI) {
            this.writeFiles(dir, this.downward(run.pod, s.downwardAPI.items, v.projected.defaultMode));
          } else {
            throw new Error(`volume ${v.name}: unsupported projected source ${Object.keys(s).join(",")}`);
          }
        }
        out.set(v.name, { src: dir });
      } else if (v.downwardAPI) {
        rmSync(dir, { recursive: true, force: true });
        this.writeFiles(dir, this.downward(run.pod, v.downwardAPI.items, v.downwardAPI.defaultMode));
        out.set(v.name, { src: dir });
      } else if (v.persistentVolumeClaim) {
        out.set(v.name, await this.claimVolume(run, v));
      } else if (v.hostPath) {
        const p: string = v.hostPath.path;
        const type: string = v.hostPath.type ?? "";
        if (type === "DirectoryOrCreate") mkdirSync(p, { recursive: true });
        else if (type === "FileOrCreate" && !existsSync(p)) {
          mkdirSync(path.dirname(p), { recursive: true });
          writeFileSync(p, "");
        } else if (!existsSync(p) && type !== "") {
          throw new Error(`MountVolume.SetUp failed for volume "${v.name}" : hostPath type check failed: ${p} does not exist`);
        } else if (!existsSync(p)) mkdirSync(p, { recursive: true });
        out.set(v.name, { src: p });
      } else {
        throw new Error(
          `volume ${v.name}: the local node runner does not support ${Object.keys(v)
            .filter((k) => k !== "name")
            .join(",")}`,
        );
      }
    }
    return out;
  }

  private downward(pod: Obj, items: Obj[], defaultMode?: number) {
    return items.map((it) => {
      const fp: string = it.fieldRef?.fieldPath ?? "";
      let content: string;
      if (fp === "metadata.labels" || fp === "metadata.annotations") {
        const m = pod.metadata[fp.slice(9)] ?? {};
        content = Object.entries(m)
          .map(([k, val]) => `${k}=${JSON.stringify(val)}`)
          .join("\n");
      } else if (fp === "metadata.namespace") content = pod.metadata.namespace;
      else if (fp === "metadata.name") content = pod.metadata.name;
      else if (fp === "metadata.uid") content = pod.metadata.uid;
      else throw new Error(`downwardAPI: unsupported fieldPath ${fp}`);
      return { path: it.path, content, mode: it.mode ?? defaultMode ?? 0o644 };
    });
  }

  private async getClaim(namespace: string, claim: string): Promise<Obj> {
    try {
      return await this.kube.get(`/api/v1/namespaces/${namespace}/persistentvolumeclaims/${claim}`);
    } catch (err) {
      if (isNotFound(err)) throw new Error(`persistentvolumeclaim "${claim}" not found`, { cause: err });
      throw err;
    }
  }

  /** The claim's source for the containers (volumes.ts resolveClaim says which); a CSI volume is published first. */
  private async claimVolume(run: PodRun, v: Obj): Promise<VolumeSource> {
    const pvc = await this.getClaim(run.namespace, v.persistentVolumeClaim.claimName);
    let pv: Obj | undefined;
    if (claimBound(pvc)) {
      try {
        pv = await this.kube.get(`/api/v1/persistentvolumes/${pvc.spec.volumeName}`);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    const source = resolveClaim({ pvc, pv, volume: v, podDir: run.dir, claimsDir: path.join(this.dir, "claims") });
    switch (source.kind) {
      case "unbound":
      case "failed":
        throw new Error(source.message);
      case "host":
      case "standIn":
        mkdirSync(source.path, { recursive: true });
        return { src: source.path, readOnly: source.readOnly };
      case "csi":
        await this.publish(run, source);
        return { src: source.request.target_path, readOnly: source.readOnly };
    }
  }

  private csiClient(driver: string): CsiClient | undefined {
    let client = this.csiClients.get(driver);
    const socket = this.opts.csiDrivers?.[driver];
    if (!client && socket) {
      client = new CsiClient(socket);
      this.csiClients.set(driver, client);
    }
    return client;
  }

  /**
   * NodePublishVolume at the pod's target path (the driver creates the target; the runner its parent, as the
   * kubelet). Recorded before the call, so that teardown unpublishes a volume whose publish failed uncertainly.
   */
  private async publish(run: PodRun, source: Extract<ClaimSource, { kind: "csi" }>): Promise<void> {
    const client = this.csiClient(source.driver);
    if (!client) throw new Error(setUpFailed(source.pvName, driverNotRegistered(source.driver)));
    if (run.stopping) throw new Error("the pod is stopping");
    const target = source.request.target_path;
    const known = run.csi.has(target);
    run.csi.set(target, { driver: source.driver, volumeId: source.request.volume_id, pvName: source.pvName, targetPath: target });
    mkdirSync(path.dirname(target), { recursive: true, mode: 0o750 });
    try {
      await client.call("Node", "NodePublishVolume", source.request, 15_000);
    } catch (err) {
      if (!known && publishFailureIsFinal(err instanceof CsiError ? err.code : undefined)) run.csi.delete(target);
      throw new Error(setUpFailed(source.pvName, err instanceof Error ? err.message : String(err)), { cause: err });
    }
  }

  /** The pod's CSI volumes unpublished, retried with back-off until done or the runner stops (false then). */
  private unpublishAll(run: PodRun): Promise<boolean> {
    run.teardown ??= (async () => {
      await Promise.race([run.preparing, this.stopSignal]);
      for (let attempt = 0; ; attempt++) {
        if (this.stopped) return false;
        if (await this.unpublishOnce(run, 15_000)) return true;
        await Promise.race([sleep(Math.min(1000 * 2 ** attempt, 10_000)), this.stopSignal]);
      }
    })();
    return run.teardown;
  }

  /** One NodeUnpublishVolume for each CSI volume still published for the pod; true when none is left. */
  private async unpublishOnce(run: PodRun, timeoutMs: number): Promise<boolean> {
    await Promise.all(
      [...run.csi.values()].map(async (v) => {
        const client = this.csiClient(v.driver);
        try {
          if (!client) throw new Error(driverNotRegistered(v.driver));
          const call = client.call("Node", "NodeUnpublishVolume", { volume_id: v.volumeId, target_path: v.targetPath }, timeoutMs);
          // Stopping: give up waiting at once (stop() tries again with a short deadline).
          const stopped = this.stopped ? undefined : this.stopSignal.then(() => Promise.reject(new Error("the runner is stopping")));
          await (stopped ? Promise.race([call, stopped]) : call);
          run.csi.delete(v.targetPath);
          // The driver removed the target; its parent (the kubelet's per-volume folder) goes too.
          for (const dir of [v.targetPath, path.dirname(v.targetPath)]) {
            try {
              rmdirSync(dir);
            } catch {
              // already gone, or not empty: left for removeTree's check
            }
          }
        } catch (err) {
          this.error(`UnmountVolume.TearDown failed for volume "${v.pvName}" of pod ${run.namespace}/${run.name}`, err);
        }
      }),
    );
    return run.csi.size === 0;
  }

  // ---------------------------------------------------------------- status, events, logs

  private statusOf(run: PodRun): Obj {
    const cs = (c: ContainerRun): Obj => {
      let state: Obj;
      if (c.exit)
        state = {
          terminated: terminatedState(c.exit, run.reason === "DeadlineExceeded" && c.exit.exitCode !== 0 ? "DeadlineExceeded" : undefined),
        };
      else if (c.waiting || !c.child) state = { waiting: c.waiting ?? { reason: "PodInitializing" } };
      else state = { running: { startedAt: c.startedAt } };
      const s: Obj = {
        name: c.name,
        image: c.spec.image ?? "",
        imageID: "",
        containerID: c.pid ? `auxo-local://${c.pid}` : undefined,
        ready: state.running !== undefined,
        started: state.running !== undefined,
        restartCount: c.restartCount,
        state,
      };
      if (c.last) s.lastState = { terminated: c.last };
      return s;
    };
    const main = run.containers.filter((c) => !c.init);
    const ready = run.phase === "Running" && main.every((c) => c.child && !c.exit && !c.waiting);
    const t = now();
    const cond = (type: string, ok: boolean, reason?: string) => ({ type, status: ok ? "True" : "False", lastTransitionTime: t, reason });
    return {
      phase: run.phase,
      reason: run.reason ?? null,
      message: run.message ?? null,
      hostIP: "127.0.0.1",
      hostIPs: [{ ip: "127.0.0.1" }],
      podIP: "127.0.0.1",
      podIPs: [{ ip: "127.0.0.1" }],
      startTime: run.startTime,
      conditions: [cond("PodScheduled", true), cond("Initialized", run.initDone), cond("ContainersReady", ready), cond("Ready", ready)],
      initContainerStatuses: run.containers.filter((c) => c.init).map(cs),
      containerStatuses: main.map(cs),
    };
  }

  private async report(run: PodRun): Promise<void> {
    await this.patchStatus(run.pod, this.statusOf(run));
  }

  private async patchStatus(pod: Obj, status: Obj): Promise<void> {
    try {
      await this.kube.patch(
        `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/status`,
        { metadata: { uid: pod.metadata.uid }, status },
        "merge",
      );
    } catch (err) {
      if (!isNotFound(err) && !isConflict(err)) throw err;
    }
  }

  private async event(pod: Obj, type: string, reason: string, message: string, component = "kubelet"): Promise<void> {
    const t = new Date().toISOString();
    try {
      await this.kube.create(`/api/v1/namespaces/${pod.metadata.namespace}/events`, {
        metadata: { generateName: `${pod.metadata.name}.` },
        involvedObject: {
          apiVersion: "v1",
          kind: "Pod",
          namespace: pod.metadata.namespace,
          name: pod.metadata.name,
          uid: pod.metadata.uid,
        },
        type,
        reason,
        message,
        source: component === "kubelet" ? { component, host: this.nodeName } : { component },
        firstTimestamp: t,
        lastTimestamp: t,
        count: 1,
      });
    } catch (err) {
      // A namespace being deleted refuses new events; the kubelet drops those too.
      if (!(err instanceof KubeError && err.status === 403 && /being terminated/.test(err.message))) this.error("event", err);
    }
  }

  private readLog(file: string, tailLines?: number): string {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      return "";
    }
    if (tailLines === undefined) return text;
    const lines = text.split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    return lines.slice(-tailLines).join("\n") + (lines.length > 0 ? "\n" : "");
  }

  private findRun(namespace: string, name: string): PodRun | undefined {
    for (const r of this.runs.values()) if (r.namespace === namespace && r.name === name) return r;
    return undefined;
  }

  /** A container's log (all of it, every restart), as `kubectl logs` shows it. */
  logs(namespace: string, pod: string, container?: string): string {
    const run = this.findRun(namespace, pod);
    if (!run) throw new Error(`pod ${namespace}/${pod} is not on node ${this.nodeName}`);
    const c = container ? run.containers.find((x) => x.name === container) : run.containers.find((x) => !x.init);
    if (!c) throw new Error(`pod ${namespace}/${pod} has no container ${container}`);
    return this.readLog(c.logFile);
  }

  /** Host pid of a running container (its process group), for tests that check processes. */
  pidOf(namespace: string, pod: string, container?: string): number | undefined {
    const run = this.findRun(namespace, pod);
    const c = container ? run?.containers.find((x) => x.name === container) : run?.containers.find((x) => !x.init);
    return c?.pid;
  }

  // The kubelet's /containerLogs endpoint on 127.0.0.1, so `kubectl logs` works through the API server.
  private async startKubeletServer(): Promise<void> {
    const pair = this.opts.pki.server("kubelet");
    this.kubeletPort = await freePort();
    this.server = https.createServer({ cert: readFileSync(pair.cert), key: readFileSync(pair.key) }, (req, res) => {
      const url = new URL(req.url ?? "/", "https://127.0.0.1");
      const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
      if (req.method !== "GET" || !m) {
        res.writeHead(404).end("the local node runner serves only /containerLogs\n");
        return;
      }
      const [ns, pod, container] = [m[1], m[2], m[3]].map((s) => decodeURIComponent(s as string)) as [string, string, string];
      const run = this.findRun(ns, pod);
      const c = run?.containers.find((x) => x.name === container);
      if (!run || !c) {
        res.writeHead(404).end(`container ${container} of pod ${ns}/${pod} is not on this node\n`);
        return;
      }
      const tail = url.searchParams.get("tailLines");
      let text = this.readLog(c.logFile, tail ? Number(tail) : undefined);
      const limit = url.searchParams.get("limitBytes");
      if (limit) text = text.slice(0, Number(limit));
      res.writeHead(200, { "Content-Type": "text/plain" });
      if (url.searchParams.get("follow") !== "true") {
        res.end(text);
        return;
      }
      res.write(text);
      let offset = Buffer.byteLength(this.readLog(c.logFile));
      const timer = setInterval(() => {
        const all = Buffer.from(this.readLog(c.logFile));
        if (all.length > offset) {
          res.write(all.subarray(offset));
          offset = all.length;
        }
        if (c.exit || run.stopping) {
          clearInterval(timer);
          res.end();
        }
      }, 500);
      req.on("close", () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => this.server?.listen(this.kubeletPort, "127.0.0.1", resolve));
  }
}
