// The world's CSI driver (test/harness/csi/), driven over its unix socket as csi-provisioner, csi-snapshotter and
// the node runner drive it: real folders, real copies, real bind mounts (the unit project runs as root).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CsiClient, type CsiMessage, type CsiService } from "../harness/csi/client.ts";
import { DEFAULT_CAPACITY, DRIVER_NAME, LocalCsiDriver, csiProtoFile } from "../harness/csi/driver.ts";
import { readMounts } from "../harness/mounts.ts";
import { destroyVolume, readFaults, setFaults } from "../harness/csi/faults.ts";
import { csiServices } from "../harness/csi/proto.ts";

const root = mkdtempSync(path.join(tmpdir(), "csi-driver-"));
const dir = path.join(root, "state");
const socket = path.join(root, "csi.sock");
const targets = path.join(root, "targets");
const logs: string[] = [];
let driver: LocalCsiDriver;
let csi: CsiClient;

const newDriver = () => new LocalCsiDriver({ socket, dir, nodeId: "auxo-local", protoFile: csiProtoFile(), log: (l) => logs.push(l) });

beforeAll(async () => {
  mkdirSync(targets, { recursive: true });
  driver = newDriver();
  await driver.start();
  csi = new CsiClient(socket, csiServices(csiProtoFile()));
});

afterAll(async () => {
  csi?.close();
  await driver?.stop();
  // Unmount whatever a failed test left (deepest first) before removing anything: never delete through a mount.
  const left = readMounts()
    .filter((m) => m.mountPoint.startsWith(root + "/"))
    .reverse();
  for (const m of left) execFileSync("umount", ["-l", m.mountPoint]);
  execFileSync("chmod", ["-R", "u+w", root]);
  rmSync(root, { recursive: true, force: true });
});

const call = (service: CsiService, method: string, req: CsiMessage = {}, timeoutMs = 10_000) => csi.call(service, method, req, timeoutMs);

async function fails(p: Promise<unknown>, code: string, details?: string | RegExp): Promise<void> {
  const err = (await p.then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: string; details?: string } | undefined;
  expect(err, `expected ${code}, the call succeeded`).toBeDefined();
  expect(err!.code, err!.details).toBe(code);
  if (details) expect(err!.details).toMatch(details);
}

const mountCap = (mode = "SINGLE_NODE_WRITER") => ({ mount: { fs_type: "", mount_flags: [] }, access_mode: { mode } });
const claimParams = (ns: string, pvc: string, pv: string) => ({
  "csi.storage.k8s.io/pvc/namespace": ns,
  "csi.storage.k8s.io/pvc/name": pvc,
  "csi.storage.k8s.io/pv/name": pv,
});

async function createVolume(name: string, extra: CsiMessage = {}): Promise<CsiMessage> {
  const res = await call("Controller", "CreateVolume", { name, volume_capabilities: [mountCap()], ...extra });
  return res.volume;
}

const snapshot = (name: string, source: string, extra: CsiMessage = {}) =>
  call("Controller", "CreateSnapshot", { name, source_volume_id: source, ...extra }).then((r) => r.snapshot);

const publish = (volumeId: string, target: string, readonly = false) =>
  call("Node", "NodePublishVolume", { volume_id: volumeId, target_path: target, volume_capability: mountCap(), readonly });
const unpublish = (volumeId: string, target: string) => call("Node", "NodeUnpublishVolume", { volume_id: volumeId, target_path: target });

const mountAt = (target: string) => readMounts().find((m) => m.mountPoint === target);
const read = (p: string) => readFileSync(p, "utf8");

/** Every entry of a tree (relative path → mode), symlinks aside. */
function modes(top: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (rel: string) => {
    const st = lstatSync(path.join(top, rel));
    if (st.isSymbolicLink()) return;
    out.set(rel, st.mode & 0o7777);
    if (st.isDirectory()) for (const n of readdirSync(path.join(top, rel))) walk(path.join(rel, n));
  };
  walk(".");
  return out;
}

describe("the local CSI driver", () => {
  it("answers the sidecars' start-up calls, and UNIMPLEMENTED for what it does not do", async () => {
    const info = await call("Identity", "GetPluginInfo");
    expect(info.name).toBe(DRIVER_NAME);
    expect(info.vendor_version).toMatch(/^\d+\.\d+\.\d+/);
    expect((await call("Identity", "Probe")).ready).toEqual({ value: true });
    const plugin = await call("Identity", "GetPluginCapabilities");
    expect(plugin.capabilities.map((c: CsiMessage) => c.service?.type)).toEqual(["CONTROLLER_SERVICE"]);
    const ctrl = await call("Controller", "ControllerGetCapabilities");
    expect(ctrl.capabilities.map((c: CsiMessage) => c.rpc.type)).toEqual([
      "CREATE_DELETE_VOLUME",
      "CREATE_DELETE_SNAPSHOT",
      "LIST_SNAPSHOTS",
      "CLONE_VOLUME",
    ]);
    expect((await call("Node", "NodeGetCapabilities")).capabilities).toEqual([]);
    const node = await call("Node", "NodeGetInfo");
    expect(node.node_id).toBe("auxo-local");
    expect(node.accessible_topology).toBeNull();
    await fails(call("Controller", "ControllerExpandVolume", { volume_id: "x" }), "Unimplemented");
    await fails(call("Controller", "ControllerPublishVolume", { volume_id: "x" }), "Unimplemented");
    await fails(call("Node", "NodeStageVolume", { volume_id: "x" }), "Unimplemented");
  });

  it("refuses requests without their required fields, and deletes of unknown ids succeed", async () => {
    await fails(call("Controller", "CreateVolume", { volume_capabilities: [mountCap()] }), "InvalidArgument", "name is required");
    await fails(call("Controller", "CreateVolume", { name: "pvc-x" }), "InvalidArgument", "volume_capabilities");
    await fails(
      call("Controller", "CreateVolume", {
        name: "pvc-x",
        volume_capabilities: [{ block: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } }],
      }),
      "InvalidArgument",
      /block/,
    );
    await fails(call("Controller", "CreateSnapshot", { name: "s" }), "InvalidArgument", "source_volume_id is required");
    await fails(call("Controller", "CreateSnapshot", { source_volume_id: "v" }), "InvalidArgument", "name is required");
    await fails(call("Controller", "ListSnapshots", { max_entries: -1 }), "InvalidArgument");
    await fails(publish("pvc-x", "relative/path"), "InvalidArgument", /absolute/);
    await fails(call("Node", "NodeUnpublishVolume", { volume_id: "pvc-x" }), "InvalidArgument", "target_path is required");
    await fails(call("Controller", "ValidateVolumeCapabilities", { volume_id: "nope", volume_capabilities: [mountCap()] }), "NotFound");
    await fails(publish("../../etc", path.join(targets, "escape")), "NotFound");
    await call("Controller", "DeleteVolume", { volume_id: "never-was" });
    await call("Controller", "DeleteSnapshot", { snapshot_id: "never-was" });
  });

  it("CreateVolume is idempotent by name, records the claim, and never logs secrets", async () => {
    const req = {
      capacity_range: { required_bytes: String(5 << 20) },
      parameters: claimParams("app", "data", "pvc-src"),
      secrets: { token: "s3cr3t-value" },
    };
    const v = await createVolume("pvc-src", req);
    expect(v).toMatchObject({ volume_id: "pvc-src", capacity_bytes: String(5 << 20), content_source: null });
    expect(await createVolume("pvc-src", req)).toEqual(v);
    await fails(createVolume("pvc-src", { ...req, capacity_range: { required_bytes: String(10 << 20) } }), "AlreadyExists");
    const record = JSON.parse(read(path.join(dir, "volumes/pvc-src/volume.json")));
    expect(record).toMatchObject({
      volumeId: "pvc-src",
      name: "pvc-src",
      capacityBytes: 5 << 20,
      pvc: { namespace: "app", name: "data" },
      pvName: "pvc-src",
    });
    expect(lstatSync(path.join(dir, "volumes/pvc-src/data")).isDirectory()).toBe(true);

    expect((await createVolume("pvc-plain", { parameters: claimParams("app", "plain", "pvc-plain") })).capacity_bytes).toBe(
      String(DEFAULT_CAPACITY),
    );
    const odd = await createVolume("a name/with slashes");
    expect(odd.volume_id).toMatch(/^vol-[0-9a-f]{40}$/);
    expect((await createVolume("a name/with slashes")).volume_id).toBe(odd.volume_id);

    const ok = await call("Controller", "ValidateVolumeCapabilities", {
      volume_id: "pvc-src",
      volume_capabilities: [mountCap(), mountCap("MULTI_NODE_READER_ONLY")],
    });
    expect(ok.confirmed.volume_capabilities.map((c: CsiMessage) => c.access_mode.mode)).toEqual([
      "SINGLE_NODE_WRITER",
      "MULTI_NODE_READER_ONLY",
    ]);
    const block = await call("Controller", "ValidateVolumeCapabilities", {
      volume_id: "pvc-src",
      volume_capabilities: [{ block: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } }],
    });
    expect(block.confirmed).toBeNull();
    expect(block.message).toMatch(/block/);

    expect(logs.some((l) => l.includes("CreateVolume name=pvc-src volume_id=pvc-src -> OK"))).toBe(true);
    expect(logs.join("\n")).not.toContain("s3cr3t-value");
  });

  it("a snapshot keeps the volume as it was: a volume restored from it has those files, not later ones", async () => {
    const src = path.join(targets, "src");
    await publish("pvc-src", src);
    expect(mountAt(src)?.options).toContain("rw");
    writeFileSync(path.join(src, "a.txt"), "A");
    mkdirSync(path.join(src, "sub"));
    writeFileSync(path.join(src, "sub/b.txt"), "bee");
    const original = modes(src);
    const before = Date.now();
    const snap = await snapshot("snapshot-1", "pvc-src", {
      parameters: { "csi.storage.k8s.io/volumesnapshot/namespace": "app", "csi.storage.k8s.io/volumesnapshot/name": "data-1" },
    });
    const taken = Number(snap.creation_time.seconds) * 1000 + snap.creation_time.nanos / 1e6;
    expect(snap).toMatchObject({ snapshot_id: "snapshot-1", source_volume_id: "pvc-src", ready_to_use: true, size_bytes: "4" });
    expect(taken).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(taken).toBeLessThanOrEqual(Date.now());
    // Idempotent by name; the same name of another volume is a conflict.
    expect(await snapshot("snapshot-1", "pvc-src")).toEqual(snap);
    await fails(snapshot("snapshot-1", "pvc-plain"), "AlreadyExists");
    expect(JSON.parse(read(path.join(dir, "snapshots/snapshot-1/snapshot.json")))).toMatchObject({
      sourceVolumeId: "pvc-src",
      sourcePvc: { namespace: "app", name: "data" },
      volumeSnapshot: { namespace: "app", name: "data-1" },
      sizeBytes: 4,
    });
    // Immutable: not one write bit in the copy.
    const frozen = modes(path.join(dir, "snapshots/snapshot-1/data"));
    expect([...frozen.keys()].sort()).toEqual([".", "a.txt", "sub", "sub/b.txt"]);
    for (const [rel, mode] of frozen) expect(mode & 0o222, rel).toBe(0);

    writeFileSync(path.join(src, "a.txt"), "B");
    writeFileSync(path.join(src, "c.txt"), "later");
    rmSync(path.join(src, "sub/b.txt"));

    await fails(
      createVolume("pvc-tiny", {
        capacity_range: { required_bytes: "2" },
        volume_content_source: { snapshot: { snapshot_id: "snapshot-1" } },
      }),
      "OutOfRange",
    );
    const restored = await createVolume("pvc-restored", {
      capacity_range: { required_bytes: String(1 << 20) },
      volume_content_source: { snapshot: { snapshot_id: "snapshot-1" } },
      parameters: claimParams("app", "restored", "pvc-restored"),
    });
    expect(restored.content_source).toMatchObject({ snapshot: { snapshot_id: "snapshot-1" } });
    const back = path.join(targets, "restored");
    await publish("pvc-restored", back);
    expect(read(path.join(back, "a.txt"))).toBe("A");
    expect(read(path.join(back, "sub/b.txt"))).toBe("bee");
    expect(existsSync(path.join(back, "c.txt"))).toBe(false);
    // Writable again, with the modes the files had when the snapshot was taken.
    expect(modes(back)).toEqual(original);
    writeFileSync(path.join(back, "d.txt"), "restored and written");
    await unpublish("pvc-restored", back);

    // A clone is a copy of the volume as it is now.
    const clone = await createVolume("pvc-clone", { volume_content_source: { volume: { volume_id: "pvc-src" } } });
    expect(clone).toMatchObject({ content_source: { volume: { volume_id: "pvc-src" } }, capacity_bytes: String(DEFAULT_CAPACITY) });
    expect(read(path.join(dir, "volumes/pvc-clone/data/a.txt"))).toBe("B");
    expect(existsSync(path.join(dir, "volumes/pvc-clone/data/c.txt"))).toBe(true);
    await fails(createVolume("pvc-nothing", { volume_content_source: { snapshot: { snapshot_id: "snapshot-none" } } }), "NotFound");
  });

  it("lists snapshots by id, by source volume and in pages; deletes them", async () => {
    await snapshot("snapshot-2", "pvc-src");
    await snapshot("snapshot-plain", "pvc-plain");
    const ids = (r: CsiMessage) => r.entries.map((e: CsiMessage) => e.snapshot.snapshot_id);
    expect(ids(await call("Controller", "ListSnapshots", { source_volume_id: "pvc-src" }))).toEqual(["snapshot-1", "snapshot-2"]);
    expect(ids(await call("Controller", "ListSnapshots", { snapshot_id: "snapshot-2" }))).toEqual(["snapshot-2"]);
    expect(ids(await call("Controller", "ListSnapshots", { snapshot_id: "snapshot-none" }))).toEqual([]);
    const first = await call("Controller", "ListSnapshots", { source_volume_id: "pvc-src", max_entries: 1 });
    expect(ids(first)).toEqual(["snapshot-1"]);
    expect(first.next_token).not.toBe("");
    const second = await call("Controller", "ListSnapshots", {
      source_volume_id: "pvc-src",
      max_entries: 1,
      starting_token: first.next_token,
    });
    expect(ids(second)).toEqual(["snapshot-2"]);
    expect(second.next_token).toBe("");
    expect(ids(await call("Controller", "ListSnapshots"))).toEqual(["snapshot-1", "snapshot-2", "snapshot-plain"]);

    await call("Controller", "DeleteSnapshot", { snapshot_id: "snapshot-2" });
    expect(existsSync(path.join(dir, "snapshots/snapshot-2"))).toBe(false);
    await call("Controller", "DeleteSnapshot", { snapshot_id: "snapshot-2" });
    expect(ids(await call("Controller", "ListSnapshots", { source_volume_id: "pvc-src" }))).toEqual(["snapshot-1"]);
  });

  it("reports a new snapshot not ready until the ready delay has passed since its creation_time", async () => {
    // A long delay, so that a slow machine cannot make the first answers ready; then one that has just passed.
    await setFaults(dir, { snapshotReadyDelaySeconds: 30 });
    try {
      const s = await snapshot("snapshot-slow", "pvc-src");
      expect(s.ready_to_use).toBe(false);
      const listed = await call("Controller", "ListSnapshots", { snapshot_id: "snapshot-slow" });
      expect(listed.entries[0].snapshot.ready_to_use).toBe(false);
      const taken = Number(s.creation_time.seconds) * 1000 + s.creation_time.nanos / 1e6;
      await new Promise((r) => setTimeout(r, Math.max(0, taken + 400 - Date.now())));
      expect((await snapshot("snapshot-slow", "pvc-src")).ready_to_use).toBe(false);
      await setFaults(dir, { snapshotReadyDelaySeconds: 0.3 });
      // The sidecar calls CreateSnapshot again with the same name; the same snapshot, now ready.
      expect(await snapshot("snapshot-slow", "pvc-src")).toEqual({ ...s, ready_to_use: true });
    } finally {
      await setFaults(dir, { snapshotReadyDelaySeconds: 0 });
    }
  });

  it("offline: the volume and its snapshots answer UNAVAILABLE, and the same calls succeed once it is back", async () => {
    const target = path.join(targets, "offline");
    await setFaults(dir, { offline: ["app/data"] });
    const offline = /^volume pvc-src \(app\/data\) is offline/;
    await fails(snapshot("snapshot-3", "pvc-src"), "Unavailable", offline);
    await fails(
      createVolume("pvc-from-offline", { volume_content_source: { snapshot: { snapshot_id: "snapshot-1" } } }),
      "Unavailable",
      offline,
    );
    await fails(publish("pvc-src", target), "Unavailable", offline);
    await fails(call("Controller", "DeleteSnapshot", { snapshot_id: "snapshot-1" }), "Unavailable", offline);
    await fails(call("Controller", "DeleteVolume", { volume_id: "pvc-src" }), "Unavailable", offline);
    // A volume id names it as well as its claim does.
    await setFaults(dir, { offline: ["pvc-src"] });
    await fails(snapshot("snapshot-3", "pvc-src"), "Unavailable", offline);
    // Other volumes are unaffected.
    expect((await snapshot("snapshot-plain", "pvc-plain")).ready_to_use).toBe(true);

    await setFaults(dir, { offline: [] });
    expect((await snapshot("snapshot-3", "pvc-src")).ready_to_use).toBe(true);
    await createVolume("pvc-from-offline", { volume_content_source: { snapshot: { snapshot_id: "snapshot-1" } } });
    await publish("pvc-src", target);
    await unpublish("pvc-src", target);
  });

  it("hang: calls on the volume never answer (the client's deadline ends them), Identity keeps answering, nothing leaks", async () => {
    await setFaults(dir, { hang: ["app/data"] });
    await fails(call("Controller", "CreateSnapshot", { name: "snapshot-4", source_volume_id: "pvc-src" }, 300), "DeadlineExceeded");
    await fails(
      call(
        "Node",
        "NodePublishVolume",
        { volume_id: "pvc-src", target_path: path.join(targets, "hung"), volume_capability: mountCap() },
        300,
      ),
      "DeadlineExceeded",
    );
    expect((await call("Identity", "Probe")).ready.value).toBe(true);
    expect((await snapshot("snapshot-plain", "pvc-plain")).snapshot_id).toBe("snapshot-plain");
    expect((await call("Node", "NodeGetInfo")).node_id).toBe("auxo-local");

    await setFaults(dir, { hang: true });
    await fails(call("Node", "NodeGetInfo", {}, 300), "DeadlineExceeded");
    await fails(call("Controller", "ControllerGetCapabilities", {}, 300), "DeadlineExceeded");
    expect((await call("Identity", "GetPluginInfo")).name).toBe(DRIVER_NAME);

    // Each hung call was dropped when its client gave up.
    for (let i = 0; i < 50 && driver.hungCalls > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(driver.hungCalls).toBe(0);
    expect(logs.filter((l) => l.includes("-> hung until the client gave up"))).toHaveLength(4);

    await setFaults(dir, { hang: false });
    expect((await snapshot("snapshot-4", "pvc-src")).ready_to_use).toBe(true);
    expect((await call("Node", "NodeGetInfo")).node_id).toBe("auxo-local");
  });

  it("failSnapshots: CreateSnapshot of the volume is RESOURCE_EXHAUSTED, and succeeds once cleared", async () => {
    await setFaults(dir, { failSnapshots: ["app/data"] });
    await fails(snapshot("snapshot-5", "pvc-src"), "ResourceExhausted", "snapshot reserve of volume pvc-src (app/data) is full");
    expect(existsSync(path.join(dir, "snapshots/snapshot-5"))).toBe(false);
    await setFaults(dir, { failSnapshots: [] });
    expect((await snapshot("snapshot-5", "pvc-src")).ready_to_use).toBe(true);
  });

  it("destroy: the volume and its snapshots are gone as on a lost array, and every call on them is NOT_FOUND", async () => {
    await createVolume("pvc-doomed", { parameters: claimParams("app", "doomed", "pvc-doomed") });
    const target = path.join(targets, "doomed");
    await publish("pvc-doomed", target);
    writeFileSync(path.join(target, "precious.txt"), "gone soon");
    await snapshot("snapshot-doomed", "pvc-doomed");

    expect(await destroyVolume(dir, "app/doomed")).toEqual({ volumes: ["pvc-doomed"], snapshots: ["snapshot-doomed"] });
    expect(existsSync(path.join(dir, "volumes/pvc-doomed"))).toBe(false);
    expect(existsSync(path.join(dir, "snapshots/snapshot-doomed"))).toBe(false);
    expect(existsSync(path.join(target, "precious.txt"))).toBe(false);

    await fails(publish("pvc-doomed", path.join(targets, "doomed-2")), "NotFound", "volume pvc-doomed not found");
    await fails(snapshot("snapshot-doomed-2", "pvc-doomed"), "NotFound");
    await fails(createVolume("pvc-from-doomed", { volume_content_source: { snapshot: { snapshot_id: "snapshot-doomed" } } }), "NotFound");
    await fails(
      call("Controller", "ValidateVolumeCapabilities", { volume_id: "pvc-doomed", volume_capabilities: [mountCap()] }),
      "NotFound",
    );
    expect((await call("Controller", "ListSnapshots", { snapshot_id: "snapshot-doomed" })).entries).toEqual([]);
    // Cleaning up still works (CSI idempotency): the node's mount goes, deletes succeed.
    await unpublish("pvc-doomed", target);
    expect(mountAt(target)).toBeUndefined();
    await call("Controller", "DeleteSnapshot", { snapshot_id: "snapshot-doomed" });
    await call("Controller", "DeleteVolume", { volume_id: "pvc-doomed" });
    await expect(destroyVolume(dir, "app/doomed")).rejects.toThrow(/no volume or snapshot of app\/doomed/);
  });

  it("publishes read-only when asked (writes fail with EROFS), idempotently; unpublish unmounts and removes the target", async () => {
    const ro = path.join(targets, "ro");
    await publish("pvc-src", ro, true);
    expect(mountAt(ro)?.options).toContain("ro");
    expect(read(path.join(ro, "a.txt"))).toBe("B");
    expect(() => writeFileSync(path.join(ro, "x.txt"), "no")).toThrow(expect.objectContaining({ code: "EROFS" }));
    await publish("pvc-src", ro, true);
    await fails(publish("pvc-src", ro, false), "AlreadyExists", /read-only/);
    await fails(publish("pvc-plain", ro, true), "AlreadyExists", /another mount/);
    expect(readMounts().filter((m) => m.mountPoint === ro)).toHaveLength(1);

    await unpublish("pvc-src", ro);
    expect(mountAt(ro)).toBeUndefined();
    expect(existsSync(ro)).toBe(false);
    await unpublish("pvc-src", ro);

    const rw = path.join(targets, "rw");
    await publish("pvc-src", rw);
    await publish("pvc-src", rw);
    writeFileSync(path.join(rw, "e.txt"), "through the mount");
    expect(read(path.join(dir, "volumes/pvc-src/data/e.txt"))).toBe("through the mount");
    await unpublish("pvc-src", rw);
    expect(existsSync(rw)).toBe(false);
    // A target that is not a mount point but holds files is left alone.
    mkdirSync(path.join(targets, "busy"));
    writeFileSync(path.join(targets, "busy/file"), "mine");
    await fails(unpublish("pvc-src", path.join(targets, "busy")), "Internal", /not a mount point/);
    expect(read(path.join(targets, "busy/file"))).toBe("mine");
  });

  it("a volume with snapshots can be deleted; its snapshots stay and restore", async () => {
    await call("Controller", "DeleteVolume", { volume_id: "pvc-src" });
    expect(existsSync(path.join(dir, "volumes/pvc-src"))).toBe(false);
    await call("Controller", "DeleteVolume", { volume_id: "pvc-src" });
    await createVolume("pvc-after", { volume_content_source: { snapshot: { snapshot_id: "snapshot-1" } } });
    expect(read(path.join(dir, "volumes/pvc-after/data/a.txt"))).toBe("A");
    // Controls naming the claim still reach snapshots of its deleted volume.
    await setFaults(dir, { offline: ["app/data"] });
    await fails(call("Controller", "DeleteSnapshot", { snapshot_id: "snapshot-1" }), "Unavailable", /pvc-src \(app\/data\) is offline/);
    await setFaults(dir, { offline: [] });
  });

  it("a restarted driver knows its volumes and drops a half-made snapshot left by a killed one", async () => {
    await driver.stop();
    expect(existsSync(socket)).toBe(false);
    mkdirSync(path.join(dir, "snapshots/.tmp-snapshot-half-0000/data"), { recursive: true });
    writeFileSync(socket, ""); // not a socket: refused, never deleted
    await expect(newDriver().start()).rejects.toThrow(/not a socket/);
    unlinkSync(socket);
    driver = newDriver();
    await driver.start();
    expect(existsSync(path.join(dir, "snapshots/.tmp-snapshot-half-0000"))).toBe(false);
    const listed = await call("Controller", "ListSnapshots");
    expect(listed.entries.map((e: CsiMessage) => e.snapshot.snapshot_id)).not.toContain("snapshot-half");
    await call("Controller", "ValidateVolumeCapabilities", { volume_id: "pvc-plain", volume_capabilities: [mountCap()] });
  });

  it("the fault CLI flips the same controls", () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [path.resolve(import.meta.dirname, "../harness/csi/fault.ts"), "--dir", dir, ...args], {
        encoding: "utf8",
      });
    let r = cli("offline", "app/plain");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(readFaults(dir).offline).toEqual(["app/plain"]);
    expect(cli("hang", "on", "app/plain").status).toBe(0);
    expect(readFaults(dir).hang).toEqual(["app/plain"]);
    expect(cli("slow-snapshots", "3").status).toBe(0);
    expect(readFaults(dir).snapshotReadyDelaySeconds).toBe(3);
    r = cli("show");
    expect(r.stdout).toContain("pvc-plain  claim app/plain");
    cli("online", "app/plain");
    cli("hang", "off", "app/plain");
    cli("slow-snapshots", "0");
    expect(readFaults(dir)).toEqual({ offline: [], hang: false, snapshotReadyDelaySeconds: 0, failSnapshots: [] });
    r = cli("hang", "maybe");
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/expected on or off/);
  }, 30_000);
});
