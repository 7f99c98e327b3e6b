// The local world's snapshot stack with real processes: csi-provisioner provisions and restores PVCs,
// snapshot-controller and csi-snapshotter cut VolumeSnapshots, the world's CSI driver holds the data, and the node
// runner mounts the volumes into pods as a kubelet does. What a user would check with kubectl, file by file.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setFaults, destroyVolume } from "../harness/csi/faults.ts";
import { isNotFound, type KubeRest, type Obj } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { admin, freshNamespace, phaseIs, waitForPod, world } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;

beforeAll(async () => {
  kube = admin();
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "csi"));
});

afterAll(async () => {
  await setFaults(world().csi.dir, { offline: [], hang: false }).catch(() => undefined);
  await removeNs?.();
  kube?.close();
});

const vsPath = (name = "") => `/apis/snapshot.storage.k8s.io/v1/namespaces/${ns}/volumesnapshots${name ? `/${name}` : ""}`;
const pvcPath = (name = "") => `/api/v1/namespaces/${ns}/persistentvolumeclaims${name ? `/${name}` : ""}`;

async function claim(name: string, dataSource?: string): Promise<void> {
  await kube.create(pvcPath(), {
    metadata: { name },
    spec: {
      storageClassName: world().csi.storageClass,
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: "1Gi" } },
      ...(dataSource ? { dataSource: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: dataSource } } : {}),
    },
  });
}

async function snapshot(name: string, pvc: string): Promise<void> {
  await kube.create(vsPath(), {
    apiVersion: "snapshot.storage.k8s.io/v1",
    kind: "VolumeSnapshot",
    metadata: { name },
    spec: { volumeSnapshotClassName: world().csi.snapshotClass, source: { persistentVolumeClaimName: pvc } },
  });
}

const waitReady = (name: string) =>
  waitFor(
    `VolumeSnapshot ${name} readyToUse`,
    async () => {
      const vs = await kube.get(vsPath(name));
      return vs.status?.readyToUse === true ? vs : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 300 },
  );

const waitBound = (name: string, timeoutMs = 60_000) =>
  waitFor(
    `PVC ${name} Bound`,
    async () => {
      const pvc = await kube.get(pvcPath(name));
      return pvc.status?.phase === "Bound" ? pvc : undefined;
    },
    { timeoutMs, intervalMs: 300 },
  );

/** A pod that runs `script` with the claim at /data; resolves to its log once it has Succeeded. */
async function runWith(name: string, pvc: string, script: string, readOnly = false): Promise<string> {
  await kube.create(`/api/v1/namespaces/${ns}/pods`, podWith(name, pvc, script, readOnly));
  await waitForPod(kube, ns, name, "Succeeded", phaseIs("Succeeded", "Failed"), 90_000).then((p) =>
    expect(p.status.phase, JSON.stringify(p.status.containerStatuses)).toBe("Succeeded"),
  );
  return kube.get<string>(`/api/v1/namespaces/${ns}/pods/${name}/log`);
}

function podWith(name: string, pvc: string, script: string, readOnly = false): Obj {
  return {
    metadata: { name },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: "main",
          image: "busybox",
          command: ["/bin/sh", "-c", script],
          volumeMounts: [{ name: "data", mountPath: "/data", readOnly }],
        },
      ],
      volumes: [{ name: "data", persistentVolumeClaim: { claimName: pvc, readOnly } }],
    },
  };
}

// Every file under /data with its sha256, one per line: what a user compares.
const LIST = "cd /data && find . -type f | sort | xargs -r sha256sum";

function listing(files: Record<string, string>): Map<string, string> {
  return new Map(Object.entries(files).map(([f, content]) => [`./${f}`, createHash("sha256").update(content).digest("hex")]));
}

function parseListing(log: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of log.trim().split("\n").filter(Boolean)) {
    const [sum, file] = line.split(/\s+/) as [string, string];
    out.set(file, sum);
  }
  return out;
}

/** Bytes of a Kubernetes quantity as the snapshot controller writes restoreSize ("4Ki", "1Gi", "12345"). */
function quantityBytes(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi|Ti|k|M|G)?$/.exec(q);
  if (!m) throw new Error(`unexpected quantity ${q}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * unit;
}

async function events(object: string, reason: string): Promise<Obj[]> {
  const list = await kube.get(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=${object}`);
  return (list.items as Obj[]).filter((e) => e.reason === reason);
}

/**
 * The first `reason` event on `object` whose message names `cause`. Other events of the same reason may come first:
 * csi-provisioner reports a transient conflict on the source VolumeSnapshot (it adds its finalizer while the snapshot
 * controller writes status) as ProvisioningFailed too, and retries.
 */
async function eventNaming(object: string, reason: string, cause: RegExp): Promise<Obj> {
  let seen: string[] = [];
  try {
    return await waitFor(
      `a ${reason} event on ${object} naming ${cause}`,
      async () => {
        const all = await events(object, reason);
        seen = all.map((e) => e.message);
        return all.find((e) => cause.test(e.message));
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; ${reason} events seen: ${JSON.stringify(seen)}`, { cause: err });
  }
}

const A = { one: "A one\n", "sub/two": "A two\n", three: "A three, deleted by B\n" };
const B = { one: "B one\n", "sub/two": "A two\n", four: "B four\n" };

describe("volume snapshots in the local world", () => {
  it("restores a PVC from a VolumeSnapshot with the files of the snapshot's moment", async () => {
    await claim("app");
    await waitBound("app");
    await runWith(
      "write-a",
      "app",
      `mkdir -p /data/sub && printf 'A one\\n' > /data/one && printf 'A two\\n' > /data/sub/two && printf 'A three, deleted by B\\n' > /data/three`,
    );

    await snapshot("snap-a", "app");
    const vs = await waitReady("snap-a");
    const total = Object.values(A).reduce((n, s) => n + Buffer.byteLength(s), 0);
    expect(quantityBytes(vs.status.restoreSize)).toBeGreaterThanOrEqual(total);
    expect(vs.status.boundVolumeSnapshotContentName).toMatch(/^snapcontent-/);
    expect(vs.status.error).toBeUndefined();

    await runWith("write-b", "app", "printf 'B one\\n' > /data/one && rm /data/three && printf 'B four\\n' > /data/four");
    expect(parseListing(await runWith("read-app", "app", LIST, true))).toEqual(listing(B));

    await claim("restored", "snap-a");
    const restored = await waitBound("restored");
    expect(restored.spec.dataSource).toMatchObject({ kind: "VolumeSnapshot", name: "snap-a" });
    expect(parseListing(await runWith("read-restored", "restored", LIST, true))).toEqual(listing(A));
  });

  it("deletes the snapshot's content and the driver's copy with the VolumeSnapshot", async () => {
    await snapshot("snap-gone", "app");
    const vs = await waitReady("snap-gone");
    const contentPath = `/apis/snapshot.storage.k8s.io/v1/volumesnapshotcontents/${vs.status.boundVolumeSnapshotContentName}`;
    const content = await kube.get(contentPath);
    const handle: string = content.status.snapshotHandle;
    const stored = path.join(world().csi.dir, "snapshots", handle);
    expect(existsSync(stored), stored).toBe(true);

    await kube.delete(vsPath("snap-gone"));
    await waitFor("the VolumeSnapshotContent to be deleted", async () =>
      (await kube.get(contentPath).then(
        () => false,
        (err) => isNotFound(err),
      ))
        ? true
        : undefined,
    );
    expect(existsSync(stored), stored).toBe(false);
  });

  it("fails a restore from an offline volume with the driver's reason, and the retry succeeds once it is back", async () => {
    await snapshot("snap-b", "app");
    await waitReady("snap-b");
    await setFaults(world().csi.dir, { offline: [`${ns}/app`] });

    await claim("from-offline", "snap-b");
    const failed = await eventNaming("from-offline", "ProvisioningFailed", /code = Unavailable desc = .*offline/);
    expect(failed.type).toBe("Warning");
    expect(failed.message).toMatch(new RegExp(`volume pvc-.* \\(${ns}/app\\) is offline`));
    expect((await kube.get(pvcPath("from-offline"))).status.phase).toBe("Pending");

    // The volume itself: a pod that mounts it stays ContainerCreating with the driver's message.
    await kube.create(`/api/v1/namespaces/${ns}/pods`, podWith("mount-offline", "app", LIST, true));
    const mountFailed = await eventNaming("mount-offline", "FailedMount", /code = Unavailable desc = .*offline/);
    expect(mountFailed.type).toBe("Warning");
    const waiting = await kube.get(`/api/v1/namespaces/${ns}/pods/mount-offline`);
    expect(waiting.status.phase).toBe("Pending");
    expect(waiting.status.containerStatuses?.[0]?.state?.waiting?.reason).toBe("ContainerCreating");

    await setFaults(world().csi.dir, { offline: [] });
    await waitBound("from-offline", 90_000);
    await waitForPod(kube, ns, "mount-offline", "Succeeded", phaseIs("Succeeded"), 90_000);
    expect(parseListing(await runWith("read-from-offline", "from-offline", LIST, true))).toEqual(listing(B));
  });

  it("answers NOT_FOUND for a destroyed volume, in the snapshot's error and the pod's mount", async () => {
    await claim("doomed");
    await waitBound("doomed");
    await runWith("write-doomed", "doomed", "printf 'x\\n' > /data/x");
    await destroyVolume(world().csi.dir, `${ns}/doomed`);

    await snapshot("snap-doomed", "doomed");
    // The error the user reads on the VolumeSnapshot is the driver's (a transient API conflict may be shown first).
    const vs = await waitFor(
      "VolumeSnapshot snap-doomed to show the driver's NotFound",
      async () => {
        const got = await kube.get(vsPath("snap-doomed"));
        return /code = NotFound/.test(got.status?.error?.message ?? "") ? got : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(vs.status.readyToUse).not.toBe(true);

    await kube.create(`/api/v1/namespaces/${ns}/pods`, podWith("mount-doomed", "doomed", LIST, true));
    const failed = await eventNaming("mount-doomed", "FailedMount", /code = NotFound/);
    expect(failed.type).toBe("Warning");
  });
});
