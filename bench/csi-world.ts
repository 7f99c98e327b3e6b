// What the CSI benchmarks do in the local world (bench/snapvault.ts, bench/backupcopy.ts): claims on the world's CSI
// driver, writer pods, and VolumeSnapshots cut and waited for, with the driver's folder of each snapshot (the peers
// read it directly).
import path from "node:path";
import type { KubeRest, Obj } from "../test/harness/kube-rest.ts";
import { waitFor } from "../test/harness/net.ts";

export interface CsiBench {
  kube: KubeRest;
  ns: string;
  csi: { storageClass: string; snapshotClass: string; dir: string };
}

const pvcPath = (ns: string, name = "") => `/api/v1/namespaces/${ns}/persistentvolumeclaims${name ? `/${name}` : ""}`;
const podPath = (ns: string, name = "") => `/api/v1/namespaces/${ns}/pods${name ? `/${name}` : ""}`;
const vsPath = (ns: string, name = "") => `/apis/snapshot.storage.k8s.io/v1/namespaces/${ns}/volumesnapshots${name ? `/${name}` : ""}`;

/** A claim on the CSI driver, waited for until Bound. */
export async function claim(b: CsiBench, name: string, size: string): Promise<void> {
  await b.kube.create(pvcPath(b.ns), {
    metadata: { name },
    spec: { storageClassName: b.csi.storageClass, accessModes: ["ReadWriteOnce"], resources: { requests: { storage: size } } },
  });
  await waitFor(`PVC ${name} Bound`, async () => ((await b.kube.get(pvcPath(b.ns, name))).status?.phase === "Bound" ? true : undefined), {
    timeoutMs: 120_000,
    intervalMs: 200,
  });
}

/** A pod that runs `script` with the claim at /data, until it Succeeded; returns how long that took. */
export async function write(b: CsiBench, name: string, claimName: string, script: string, timeoutMs: number): Promise<number> {
  const t = performance.now();
  await b.kube.create(podPath(b.ns), {
    metadata: { name },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 1,
      containers: [
        { name: "main", image: "busybox", command: ["/bin/sh", "-c", script], volumeMounts: [{ name: "data", mountPath: "/data" }] },
      ],
      volumes: [{ name: "data", persistentVolumeClaim: { claimName } }],
    },
  });
  const p: Obj = await waitFor(
    `writer ${name}`,
    async () => {
      const p = await b.kube.get(podPath(b.ns, name));
      return p.status?.phase === "Succeeded" || p.status?.phase === "Failed" ? p : undefined;
    },
    { timeoutMs, intervalMs: 200 },
  );
  if (p.status.phase !== "Succeeded") throw new Error(`writer ${name} failed: ${JSON.stringify(p.status.containerStatuses)}`);
  const ms = performance.now() - t;
  await b.kube.delete(podPath(b.ns, name));
  return ms;
}

/** Cuts VolumeSnapshots (label bench=<part>) and waits until all are ready; returns each one's folder in the driver. */
export async function cut(b: CsiBench, part: string, of: { name: string; pvc: string }[]): Promise<Map<string, string>> {
  for (const s of of)
    await b.kube.create(vsPath(b.ns), {
      apiVersion: "snapshot.storage.k8s.io/v1",
      kind: "VolumeSnapshot",
      metadata: { name: s.name, labels: { bench: part } },
      spec: { volumeSnapshotClassName: b.csi.snapshotClass, source: { persistentVolumeClaimName: s.pvc } },
    });
  const folders = new Map<string, string>();
  for (const s of of) {
    const vs = await waitFor(
      `VolumeSnapshot ${s.name} ready`,
      async () => {
        const vs = await b.kube.get(vsPath(b.ns, s.name));
        return vs.status?.readyToUse === true ? vs : undefined;
      },
      { timeoutMs: 600_000, intervalMs: 200 },
    );
    const content = await b.kube.get(`/apis/snapshot.storage.k8s.io/v1/volumesnapshotcontents/${vs.status.boundVolumeSnapshotContentName}`);
    folders.set(s.name, path.join(b.csi.dir, "snapshots", content.status.snapshotHandle, "data"));
  }
  return folders;
}
