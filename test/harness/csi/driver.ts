// The local world's CSI driver: a stand-in for a storage array, honest about what it is. A volume is a folder on
// this machine, a snapshot a read-only copy of one (`cp -a --reflink=auto`: shared blocks where the filesystem has
// reflinks, a plain copy elsewhere), and publishing a volume bind-mounts its folder. It serves CSI's Identity,
// Controller and Node services on a unix socket, for the real csi-provisioner and csi-snapshotter sidecars and for
// the node runner (the kubelet's part). All state is in files under `dir` (see faults.ts for the layout), re-read
// on every RPC, so the driver can be restarted, and tests and the fault CLI can look at and change it from other
// processes. No topology, no staging, no ControllerPublish, no block volumes, no capacity enforcement (a volume's
// capacity is what it was asked for; its folder can hold more).
import { execFile, execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readFileSync, realpathSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync } from "node:fs";
import { chmod, lstat, readdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { repoRoot } from "../tools.ts";
import { codeName, type CsiMessage } from "./client.ts";
import {
  type Faults,
  type PvcRef,
  type SnapshotRecord,
  type Subject,
  type VolumeRecord,
  describe,
  faultsFile,
  isRecordId,
  listSnapshots,
  matches,
  noFaults,
  readFaults,
  readSnapshot,
  readVolume,
  removeLeftovers,
  removeRecordFolder,
  snapshotData,
  snapshotFolder,
  snapshotsDir,
  snapshotSubject,
  volumeData,
  volumeFolder,
  volumesDir,
  writeJsonAtomic,
} from "./faults.ts";
import { type MountEntry, readMounts } from "../mounts.ts";
import { type CsiServices, csiServices, socketTarget } from "./proto.ts";

export const DRIVER_NAME = "local.csi.auxo.dev";
/** Capacity of a volume whose request names none. */
export const DEFAULT_CAPACITY = 1 << 30;

const vendorVersion: string = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")).version;

/** csi.proto from the tool cache, found without requiring every other tool to be built (as tools() does). */
export function csiProtoFile(): string {
  let file = process.env.AUXO_CSI_PROTO;
  if (!file) {
    const out = execFileSync("bash", [path.join(repoRoot, "hack/tools.sh"), "env"], { encoding: "utf8" });
    file = /^AUXO_CSI_PROTO=(.*)$/m.exec(out)?.[1];
  }
  if (!file || !existsSync(file)) throw new Error(`csi.proto is not at ${file}; run 'bash hack/tools.sh all' first`);
  return file;
}

/** A volume or snapshot id from its request name: the name itself when it is a plain file name (csi-provisioner's
 * `pvc-<uid>`, csi-snapshotter's `snapshot-<uid>`), otherwise a digest of it. Same name, same id. */
export function recordIdFor(name: string, kind: "vol" | "snap"): string {
  return isRecordId(name) ? name : `${kind}-${createHash("sha256").update(name).digest("hex").slice(0, 40)}`;
}

// ---- mounts ----

function canonical(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

const mountsAt = (target: string): MountEntry[] => {
  const p = canonical(target);
  return readMounts().filter((m) => m.mountPoint === p);
};

// ---- errors and helpers ----

class RpcError extends Error {
  readonly code: grpc.status;
  constructor(code: grpc.status, message: string) {
    super(message);
    this.code = code;
  }
}
const fail = (code: grpc.status, message: string): never => {
  throw new RpcError(code, message);
};

/** A hung call that ended without an answer from its handler: the client gave up, or the driver is stopping. */
class Dropped extends Error {
  readonly stopping: boolean;
  constructor(stopping: boolean) {
    super(stopping ? "the driver is stopping" : "the client gave up");
    this.stopping = stopping;
  }
}

const run = promisify(execFile);
async function sh(cmd: string, args: string[]): Promise<void> {
  try {
    await run(cmd, args, { encoding: "utf8" });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")}: ${(e.stderr || e.message).trim()}`, { cause: err });
  }
}

function requireField(v: unknown, field: string): string {
  if (typeof v !== "string" || v === "") fail(grpc.status.INVALID_ARGUMENT, `${field} is required`);
  return v as string;
}

function int64(v: unknown, field: string): number {
  const n = Number(v ?? 0);
  if (!Number.isSafeInteger(n) || n < 0) fail(grpc.status.INVALID_ARGUMENT, `${field} must be a non-negative integer`);
  return n;
}

const pvcRef = (namespace: string | undefined, name: string | undefined): PvcRef | undefined =>
  namespace && name ? { namespace, name } : undefined;

// Access modes of a folder on the one node of the world; the alpha SINGLE_NODE_*_WRITER modes need a capability
// the driver does not claim.
const accessModes = new Set([
  "SINGLE_NODE_WRITER",
  "SINGLE_NODE_READER_ONLY",
  "MULTI_NODE_READER_ONLY",
  "MULTI_NODE_SINGLE_WRITER",
  "MULTI_NODE_MULTI_WRITER",
]);

/** Malformed capabilities are INVALID_ARGUMENT; well-formed but unsupported ones return why. */
function capabilityProblem(caps: CsiMessage[]): string | undefined {
  for (const cap of caps) {
    if (!cap.access_mode) fail(grpc.status.INVALID_ARGUMENT, "volume_capability.access_mode is required");
    if (!cap.mount && !cap.block) fail(grpc.status.INVALID_ARGUMENT, "volume_capability.access_type is required");
    if (cap.block) return "block volumes are not supported (only mount)";
    if (!accessModes.has(cap.access_mode.mode)) return `access mode ${cap.access_mode.mode} is not supported`;
  }
  return undefined;
}

function timestamp(iso: string): { seconds: string; nanos: number } {
  const ms = Date.parse(iso);
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

/** Size (sum of regular files' sizes) and the modes of every entry with a write bit, of the tree at `root`. */
async function scanTree(root: string): Promise<{ size: number; writable: Record<string, number> }> {
  let size = 0;
  const writable: Record<string, number> = {};
  const walk = async (rel: string): Promise<void> => {
    const p = path.join(root, rel);
    const st = await lstat(p);
    if (st.isSymbolicLink()) return;
    if (st.isFile()) size += st.size;
    if (st.mode & 0o222) writable[rel] = st.mode & 0o7777;
    if (st.isDirectory()) for (const name of await readdir(p)) await walk(path.join(rel, name));
  };
  await walk(".");
  return { size, writable };
}

type Handler = (req: CsiMessage, rpc: Rpc) => Promise<CsiMessage>;
type ServiceName = keyof CsiServices;

interface Rpc {
  method: string;
  call: grpc.ServerUnaryCall<CsiMessage, CsiMessage>;
  faults: Faults;
  /** Ids for the log line (never secrets: only fields picked here go in). */
  note: Record<string, string>;
}

export interface LocalCsiDriverOptions {
  /** Unix socket path to serve on (a stale socket file there is replaced). */
  socket: string;
  /** State folder: volumes, snapshots, faults.json. */
  dir: string;
  /** NodeGetInfo's node_id: the node runner's node name. */
  nodeId: string;
  name?: string;
  protoFile?: string;
  /** Where the one line per RPC goes; stderr by default. */
  log?: (line: string) => void;
}

export class LocalCsiDriver {
  readonly socket: string;
  readonly dir: string;
  readonly nodeId: string;
  readonly name: string;
  private readonly protoFile: string | undefined;
  private readonly log: (line: string) => void;
  private server: grpc.Server | undefined;
  private readonly hung = new Set<(stopping: boolean) => void>();
  private readonly locks = new Map<string, Promise<void>>();
  private faultsCache: { key: string; faults: Faults } | undefined;
  private readonly handlers: Record<ServiceName, Record<string, Handler>>;

  constructor(opts: LocalCsiDriverOptions) {
    this.socket = path.resolve(opts.socket);
    this.dir = path.resolve(opts.dir);
    this.nodeId = opts.nodeId;
    this.name = opts.name ?? DRIVER_NAME;
    this.protoFile = opts.protoFile;
    this.log = opts.log ?? ((line) => process.stderr.write(line + "\n"));
    this.handlers = {
      Identity: {
        GetPluginInfo: async () => ({ name: this.name, vendor_version: vendorVersion, manifest: {} }),
        GetPluginCapabilities: async () => ({ capabilities: [{ service: { type: "CONTROLLER_SERVICE" } }] }),
        Probe: async () => ({ ready: { value: true } }),
      },
      Controller: {
        ControllerGetCapabilities: async () => ({
          capabilities: ["CREATE_DELETE_VOLUME", "CREATE_DELETE_SNAPSHOT", "LIST_SNAPSHOTS", "CLONE_VOLUME"].map((type) => ({
            rpc: { type },
          })),
        }),
        CreateVolume: (req, rpc) => this.createVolume(req, rpc),
        DeleteVolume: (req, rpc) => this.deleteVolume(req, rpc),
        ValidateVolumeCapabilities: (req, rpc) => this.validateVolumeCapabilities(req, rpc),
        CreateSnapshot: (req, rpc) => this.createSnapshot(req, rpc),
        DeleteSnapshot: (req, rpc) => this.deleteSnapshot(req, rpc),
        ListSnapshots: (req, rpc) => this.listSnapshots(req, rpc),
      },
      Node: {
        NodeGetCapabilities: async () => ({ capabilities: [] }),
        NodeGetInfo: async () => ({ node_id: this.nodeId, max_volumes_per_node: "0" }),
        NodePublishVolume: (req, rpc) => this.nodePublishVolume(req, rpc),
        NodeUnpublishVolume: (req, rpc) => this.nodeUnpublishVolume(req, rpc),
      },
    };
  }

  /** Calls that hang on a fault and have not been dropped yet (a call is dropped when its client gives up). */
  get hungCalls(): number {
    return this.hung.size;
  }

  async start(): Promise<void> {
    if (this.server) return;
    mkdirSync(volumesDir(this.dir), { recursive: true });
    mkdirSync(snapshotsDir(this.dir), { recursive: true });
    for (const p of removeLeftovers(this.dir)) this.log(`${new Date().toISOString()} csi removed a leftover of an earlier run: ${p}`);
    mkdirSync(path.dirname(this.socket), { recursive: true });
    try {
      if (!lstatSync(this.socket).isSocket()) throw new Error(`${this.socket} exists and is not a socket`);
      unlinkSync(this.socket); // stale: a socket file outlives a killed server
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const services = csiServices(this.protoFile ?? csiProtoFile());
    const server = new grpc.Server();
    for (const service of ["Identity", "Controller", "Node"] as const) {
      const def = services[service].service;
      const impl: grpc.UntypedServiceImplementation = {};
      for (const method of Object.keys(def)) impl[method] = this.serve(service, method, this.handlers[service][method]);
      server.addService(def, impl);
    }
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(socketTarget(this.socket), grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
    this.server = server;
    this.log(`${new Date().toISOString()} csi ${this.name} ${vendorVersion} serving ${socketTarget(this.socket)}, state in ${this.dir}`);
  }

  /** Stops accepting calls, answers hung ones UNAVAILABLE, waits briefly for the others, removes the socket. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const drop of [...this.hung]) drop(true);
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 5000);
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    rmSync(this.socket, { force: true });
  }

  // ---- the RPC frame: faults, errors, one log line ----

  private serve(service: ServiceName, method: string, handler: Handler | undefined): grpc.handleUnaryCall<CsiMessage, CsiMessage> {
    return (call, callback) => {
      const started = performance.now();
      const rpc: Rpc = { method, call, faults: noFaults(), note: {} };
      const req = call.request;
      for (const field of ["name", "volume_id", "source_volume_id", "snapshot_id", "target_path"]) {
        if (typeof req[field] === "string" && req[field] !== "") rpc.note[field] = req[field];
      }
      const line = (outcome: string): void => {
        const fields = Object.entries(rpc.note).map(([k, v]) => ` ${k}=${v}`);
        this.log(
          `${new Date().toISOString()} csi ${method}${fields.join("")} -> ${outcome} (${Math.round(performance.now() - started)} ms)`,
        );
      };
      const work = async (): Promise<CsiMessage> => {
        rpc.faults = this.faults();
        // Identity keeps answering: a hung array still answers Probe (the sidecars exit when Probe fails).
        if (service !== "Identity" && rpc.faults.hang === true) await this.hangUntilDropped(rpc);
        if (!handler) return fail(grpc.status.UNIMPLEMENTED, `${method} is not implemented by ${this.name}`);
        return handler(req, rpc);
      };
      work().then(
        (res) => {
          line("OK");
          callback(null, res);
        },
        (err: unknown) => {
          if (err instanceof Dropped && !err.stopping) return line("hung until the client gave up");
          let code = grpc.status.INTERNAL;
          const message = err instanceof Error ? err.message : String(err);
          if (err instanceof RpcError) code = err.code;
          else if (err instanceof Dropped) code = grpc.status.UNAVAILABLE;
          else if ((err as NodeJS.ErrnoException).code === "ENOENT") code = grpc.status.NOT_FOUND; // a record vanished under us
          line(`${codeName(code)}: ${message}`);
          callback({ code, details: message });
        },
      );
    };
  }

  /** faults.json, re-read only when it changed (it is replaced by rename, so inode + mtime + size tell). */
  private faults(): Faults {
    let st;
    try {
      st = statSync(faultsFile(this.dir));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      this.faultsCache = undefined;
      return noFaults();
    }
    const key = `${st.ino}:${st.mtimeMs}:${st.size}`;
    if (this.faultsCache?.key !== key) this.faultsCache = { key, faults: readFaults(this.dir) };
    return this.faultsCache.faults;
  }

  /** Never answers: the call is dropped when the client cancels (its deadline) or the driver stops. */
  private hangUntilDropped(rpc: Rpc): Promise<never> {
    return new Promise<never>((_, reject) => {
      const drop = (stopping: boolean): void => {
        if (!this.hung.delete(drop)) return;
        reject(new Dropped(stopping));
      };
      this.hung.add(drop);
      rpc.call.on("cancelled", () => drop(false));
      if (rpc.call.cancelled) drop(false);
    });
  }

  /** The hang control for RPCs that touch volumes (hang: true is handled for every call in serve()). */
  private async gate(rpc: Rpc, subjects: Subject[]): Promise<void> {
    const hang = rpc.faults.hang;
    if (Array.isArray(hang) && subjects.some((s) => hang.some((t) => matches(t, s)))) await this.hangUntilDropped(rpc);
  }

  private checkOnline(rpc: Rpc, subject: Subject, snapshotId?: string): void {
    if (!rpc.faults.offline.some((t) => matches(t, subject))) return;
    fail(grpc.status.UNAVAILABLE, `volume ${describe(subject)} is offline` + (snapshotId ? `, and with it snapshot ${snapshotId}` : ""));
  }

  /** Serialises work on the same records within this process (sidecars retry while a slow call still runs). */
  private async locked<T>(keys: string[], work: () => Promise<T>): Promise<T> {
    const releases: Array<() => void> = [];
    for (const key of [...new Set(keys)].sort()) {
      const before = this.locks.get(key) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((r) => (release = r));
      const tail = before.then(() => mine);
      this.locks.set(key, tail);
      releases.push(() => {
        release();
        if (this.locks.get(key) === tail) this.locks.delete(key);
      });
      await before;
    }
    try {
      return await work();
    } finally {
      for (const r of releases.reverse()) r();
    }
  }

  /** cp -a of a tree; a source that vanished meanwhile (destroyed) is NOT_FOUND, not an internal error. */
  private async copyTree(src: string, dst: string, what: string): Promise<void> {
    try {
      await sh("cp", ["-a", "--reflink=auto", "-T", src, dst]);
    } catch (err) {
      if (!existsSync(src)) fail(grpc.status.NOT_FOUND, `${what} vanished while it was being copied`);
      throw err;
    }
  }

  /** Builds a record folder under a dot-name and renames it into place when complete. */
  private async buildFolder(parent: string, id: string, build: (tmp: string) => Promise<void>): Promise<void> {
    const tmp = path.join(parent, `.tmp-${id}-${randomBytes(4).toString("hex")}`);
    mkdirSync(tmp);
    try {
      await build(tmp);
      renameSync(tmp, path.join(parent, id));
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  // ---- Controller ----

  private volumeMessage(v: VolumeRecord): CsiMessage {
    const content_source =
      v.source?.type === "snapshot" ? { snapshot: { snapshot_id: v.source.id } } : v.source ? { volume: { volume_id: v.source.id } } : null;
    return { volume: { capacity_bytes: String(v.capacityBytes), volume_id: v.volumeId, volume_context: {}, content_source } };
  }

  private async createVolume(req: CsiMessage, rpc: Rpc): Promise<CsiMessage> {
    const name = requireField(req.name, "name");
    const caps: CsiMessage[] = req.volume_capabilities ?? [];
    if (caps.length === 0) fail(grpc.status.INVALID_ARGUMENT, "volume_capabilities is required");
    const problem = capabilityProblem(caps);
    if (problem) fail(grpc.status.INVALID_ARGUMENT, problem);
    const requiredBytes = int64(req.capacity_range?.required_bytes, "capacity_range.required_bytes");
    const limitBytes = int64(req.capacity_range?.limit_bytes, "capacity_range.limit_bytes");
    if (limitBytes > 0 && requiredBytes > limitBytes)
      fail(grpc.status.OUT_OF_RANGE, `required_bytes ${requiredBytes} exceeds limit_bytes ${limitBytes}`);
    const params: Record<string, string> = req.parameters ?? {};
    const pvc = pvcRef(params["csi.storage.k8s.io/pvc/namespace"], params["csi.storage.k8s.io/pvc/name"]);
    const cs = req.volume_content_source;
    let source: VolumeRecord["source"];
    if (cs?.snapshot)
      source = { type: "snapshot", id: requireField(cs.snapshot.snapshot_id, "volume_content_source.snapshot.snapshot_id") };
    else if (cs?.volume) source = { type: "volume", id: requireField(cs.volume.volume_id, "volume_content_source.volume.volume_id") };
    else if (cs) fail(grpc.status.INVALID_ARGUMENT, "volume_content_source names no snapshot or volume");
    if (source) rpc.note[`source_${source.type}`] = source.id;
    const id = recordIdFor(name, "vol");
    rpc.note.volume_id = id;

    const subjects: Subject[] = [{ volumeId: id, pvc }];
    const srcSnap = source?.type === "snapshot" ? readSnapshot(this.dir, source.id) : undefined;
    const srcVol = source?.type === "volume" ? readVolume(this.dir, source.id) : undefined;
    if (srcSnap) subjects.push(snapshotSubject(srcSnap));
    if (srcVol) subjects.push(srcVol);
    await this.gate(rpc, subjects);

    const lockKeys = [`volume:${id}`, ...(source ? [`${source.type}:${source.id}`] : [])];
    return this.locked(lockKeys, async () => {
      const existing = readVolume(this.dir, id);
      if (existing) {
        const sameSource = existing.source?.type === source?.type && existing.source?.id === source?.id;
        const fits =
          (requiredBytes === 0 || existing.capacityBytes >= requiredBytes) && (limitBytes === 0 || existing.capacityBytes <= limitBytes);
        if (existing.name !== name || !sameSource || !fits) {
          const had = existing.source ? ` from ${existing.source.type} ${existing.source.id}` : "";
          fail(
            grpc.status.ALREADY_EXISTS,
            `volume ${name} already exists with ${existing.capacityBytes} bytes${had}, incompatible with this request`,
          );
        }
        return this.volumeMessage(existing);
      }

      // A volume made from a source holds at least the source's bytes.
      let floor = 0;
      let from: { path: string; what: string; writable?: Record<string, number> } | undefined;
      if (source?.type === "snapshot") {
        const snap = readSnapshot(this.dir, source.id) ?? fail(grpc.status.NOT_FOUND, `snapshot ${source.id} not found`);
        this.checkOnline(rpc, snapshotSubject(snap), snap.snapshotId);
        floor = snap.sizeBytes;
        const writable = JSON.parse(readFileSync(path.join(snapshotFolder(this.dir, snap.snapshotId), "modes.json"), "utf8"));
        from = { path: snapshotData(this.dir, snap.snapshotId), what: `snapshot ${snap.snapshotId}`, writable };
      } else if (source?.type === "volume") {
        const vol = readVolume(this.dir, source.id) ?? fail(grpc.status.NOT_FOUND, `volume ${source.id} not found`);
        this.checkOnline(rpc, vol);
        floor = vol.capacityBytes;
        from = { path: volumeData(this.dir, vol.volumeId), what: `volume ${vol.volumeId}` };
      }
      let capacity = requiredBytes > 0 ? requiredBytes : Math.max(DEFAULT_CAPACITY, floor);
      if (requiredBytes === 0 && limitBytes > 0) capacity = Math.min(capacity, limitBytes);
      if (capacity < floor) fail(grpc.status.OUT_OF_RANGE, `${from?.what} holds ${floor} bytes, more than the ${capacity} bytes asked for`);

      const record: VolumeRecord = {
        volumeId: id,
        name,
        capacityBytes: capacity,
        created: new Date().toISOString(),
        ...(source ? { source } : {}),
        ...(pvc ? { pvc } : {}),
        ...(params["csi.storage.k8s.io/pv/name"] ? { pvName: params["csi.storage.k8s.io/pv/name"] } : {}),
      };
      await this.buildFolder(volumesDir(this.dir), id, async (tmp) => {
        const data = path.join(tmp, "data");
        if (!from) mkdirSync(data, { mode: 0o755 });
        else {
          await this.copyTree(from.path, data, from.what);
          // A restored volume is writable again: the snapshot's write bits, recorded before it was frozen.
          for (const [rel, mode] of Object.entries(from.writable ?? {})) await chmod(path.join(data, rel), mode);
        }
        writeJsonAtomic(path.join(tmp, "volume.json"), record);
      });
      return this.volumeMessage(record);
    });
  }

  private async deleteVolume(req: CsiMessage, rpc: Rpc): Promise<CsiMessage> {
    const id = requireField(req.volume_id, "volume_id");
    const vol = readVolume(this.dir, id);
    await this.gate(rpc, [vol ?? { volumeId: id }]);
    if (!vol) return {}; // deleting what is not there is success (CSI: idempotent)
    this.checkOnline(rpc, vol);
    // Snapshots are independent copies: they stay.
    return this.locked([`volume:${id}`], async () => {
      removeRecordFolder(volumeFolder(this.dir, id));
      return {};
    });
  }

  private async validateVolumeCapabilities(req: CsiMessage, rpc: Rpc): Promise<CsiMessage> {
    const id = requireField(req.volume_id, "volume_id");
    const caps: CsiMessage[] = req.volume_capabilities ?? [];
    if (caps.length === 0) fail(grpc.status.INVALID_ARGUMENT, "volume_capabilities is required");
    const vol = readVolume(this.dir, id);
    await this.gate(rpc, [vol ?? { volumeId: id }]);
    if (!vol) fail(grpc.status.NOT_FOUND, `volume ${id} not found`);
    const problem = capabilityProblem(caps);
    if (problem) return { message: problem };
    return { confirmed: { volume_context: req.volume_context ?? {}, volume_capabilities: caps, parameters: req.parameters ?? {} } };
  }

  private snapshotMessage(s: SnapshotRecord, faults: Faults): CsiMessage {
    const ready = Date.now() >= Date.parse(s.creationTime) + faults.snapshotReadyDelaySeconds * 1000;
    return {
      size_bytes: String(s.sizeBytes),
      snapshot_id: s.snapshotId,
      source_volume_id: s.sourceVolumeId,
      creation_time: timestamp(s.creationTime),
      ready_to_use: ready,
    };
  }

  private async createSnapshot(req: CsiMessage, rpc: Rpc): Promise<CsiMessage> {
    const src = requireField(req.source_volume_id, "source_volume_id");
    const name = requireField(req.name, "name");
    const id = recordIdFor(name, "snap");
    rpc.note.snapshot_id = id;
    const params: Record<string, string> = req.parameters ?? {};
    const volumeSnapshot = pvcRef(params["csi.storage.k8s.io/volumesnapshot/namespace"], params["csi.storage.k8s.io/volumesnapshot/name"]);
    const earlier = readSnapshot(this.dir, id);
    const vol = readVolume(this.dir, src);
    await this.gate(rpc, [vol ?? (earlier?.sourceVolumeId === src ? snapshotSubject(earlier) : { volumeId: src })]);

    return this.locked([`snapshot:${id}`, `volume:${src}`], async () => {
      const existing = readSnapshot(this.dir, id);
      if (existing && existing.sourceVolumeId !== src) {
        fail(grpc.status.ALREADY_EXISTS, `snapshot ${name} already exists, of volume ${existing.sourceVolumeId}, not of ${src}`);
      }
      const vol = readVolume(this.dir, src);
      if (existing) {
        this.checkOnline(rpc, vol ?? snapshotSubject(existing), id);
        rpc.note.ready = String(this.snapshotMessage(existing, rpc.faults).ready_to_use);
        return { snapshot: this.snapshotMessage(existing, rpc.faults) };
      }
      if (!vol) return fail(grpc.status.NOT_FOUND, `volume ${src} not found`);
      this.checkOnline(rpc, vol);
      if (rpc.faults.failSnapshots.some((t) => matches(t, vol))) {
        fail(grpc.status.RESOURCE_EXHAUSTED, `snapshot reserve of volume ${describe(vol)} is full`);
      }
      const creationTime = new Date().toISOString();
      let record: SnapshotRecord | undefined;
      await this.buildFolder(snapshotsDir(this.dir), id, async (tmp) => {
        const data = path.join(tmp, "data");
        await this.copyTree(volumeData(this.dir, src), data, `volume ${src}`);
        const { size, writable } = await scanTree(data);
        writeJsonAtomic(path.join(tmp, "modes.json"), writable);
        // Immutable: no write bits anywhere in the copy (chmod -R a-w).
        for (const [rel, mode] of Object.entries(writable)) await chmod(path.join(data, rel), mode & ~0o222);
        record = {
          snapshotId: id,
          name,
          sourceVolumeId: src,
          ...(vol.pvc ? { sourcePvc: vol.pvc } : {}),
          creationTime,
          sizeBytes: Math.max(1, size),
          ...(volumeSnapshot ? { volumeSnapshot } : {}),
        };
        writeJsonAtomic(path.join(tmp, "snapshot.json"), record);
      });
      const msg = this.snapshotMessage(record!, rpc.faults);
      rpc.note.ready = String(msg.ready_to_use);
      return { snapshot: msg };
    });
  }

  private async deleteSnapshot(req: CsiMessage, rpc: Rpc): Promise<CsiMessage> {
    const id = requireField(req.snapshot_id, "snapshot_id");
    const snap = readSnapshot(this.dir, id);
    await this.gate(rpc, snap ? [snapshotSubject(snap)] : []);
    if (!snap) return {}; // CSI: deleting an unknown snapshot is success
    this.checkOnline(rpc, snapshotSubject(snap), id);
    return this.locked([`snapshot:${id}`], async () => {
      removeRecordFolder(snapshotFolder(this.dir, id));
      return {};
    });
  }

  private async listSnapshots(req: CsiMessage, rpc: Rpc): Promise<CsiMessage> {
    const max = Number(req.max_entries ?? 0);
    if (!Number.isInteger(max) || max < 0) fail(grpc.status.INVALID_ARGUMENT, "max_entries must not be negative");
    let all = listSnapshots(this.dir);
    if (req.snapshot_id) all = all.filter((s) => s.snapshotId === req.snapshot_id);
    if (req.source_volume_id) all = all.filter((s) => s.sourceVolumeId === req.source_volume_id);
    const subjects = all.map(snapshotSubject);
    if (req.source_volume_id) subjects.push(readVolume(this.dir, req.source_volume_id) ?? { volumeId: req.source_volume_id });
    await this.gate(rpc, subjects);
    // The token is the id of the page's first entry; ids are sorted, so a page survives deletions before it.
    const token: string = req.starting_token ?? "";
    let start = token ? all.findIndex((s) => s.snapshotId >= token) : 0;
    if (start < 0) start = all.length;
    const end = max > 0 ? Math.min(start + max, all.length) : all.length;
    const entries = all.slice(start, end).map((s) => ({ snapshot: this.snapshotMessage(s, rpc.faults) }));
    rpc.note.entries = String(entries.length);
    return { entries, next_token: end < all.length ? all[end]!.snapshotId : "" };
  }

  // ---- Node ----

  private async nodePublishVolume(req: CsiMessage, rpc: Rpc): Promise<CsiMessage> {
    const id = requireField(req.volume_id, "volume_id");
    const target = requireField(req.target_path, "target_path");
    if (!path.isAbsolute(target)) fail(grpc.status.INVALID_ARGUMENT, "target_path must be absolute");
    if (!req.volume_capability) fail(grpc.status.INVALID_ARGUMENT, "volume_capability is required");
    const problem = capabilityProblem([req.volume_capability]);
    if (problem) fail(grpc.status.INVALID_ARGUMENT, problem);
    const readonly = req.readonly === true;
    rpc.note.readonly = String(readonly);
    const vol = readVolume(this.dir, id);
    await this.gate(rpc, [vol ?? { volumeId: id }]);
    if (!vol) return fail(grpc.status.NOT_FOUND, `volume ${id} not found`);
    this.checkOnline(rpc, vol);
    const data = volumeData(this.dir, id);
    return this.locked([`target:${target}`], async () => {
      const top = mountsAt(target).at(-1);
      if (top) {
        // The bind mount's root is the data folder's path inside its filesystem.
        const same = top.root === data || top.root.endsWith(`/volumes/${id}/data`);
        const ro = top.options.includes("ro");
        if (same && ro === readonly) return {};
        fail(
          grpc.status.ALREADY_EXISTS,
          same
            ? `volume ${id} is already published at ${target} ${ro ? "read-only" : "read-write"}`
            : `${target} already has another mount (${top.root})`,
        );
      }
      mkdirSync(target, { recursive: true }); // creating target_path is the SP's job (CSI)
      await sh("mount", ["--bind", data, target]);
      if (readonly) {
        try {
          await sh("mount", ["-o", "remount,bind,ro", target]);
        } catch (err) {
          await sh("umount", [target]).catch(() => undefined);
          throw err;
        }
      }
      return {};
    });
  }

  private async nodeUnpublishVolume(req: CsiMessage, rpc: Rpc): Promise<CsiMessage> {
    const id = requireField(req.volume_id, "volume_id");
    const target = requireField(req.target_path, "target_path");
    const vol = readVolume(this.dir, id);
    await this.gate(rpc, [vol ?? { volumeId: id }]);
    // Unpublishing works for a volume that is gone too: the mount is the node's, and kubelet must clean it up.
    return this.locked([`target:${target}`], async () => {
      for (let i = 0; mountsAt(target).length > 0; i++) {
        if (i === 16) fail(grpc.status.INTERNAL, `${target} is still mounted after 16 unmounts`);
        await sh("umount", [target]);
      }
      try {
        rmdirSync(target); // never rm -r: a target that is not a mount point holds someone's files
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOTEMPTY") fail(grpc.status.INTERNAL, `${target} is not a mount point and not empty; left as it is`);
        if (code === "ENOTDIR") unlinkSync(target);
        else if (code !== "ENOENT") throw err;
      }
      return {};
    });
  }
}
