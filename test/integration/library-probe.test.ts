// Libraries are probed by real MediaAgent pods (`auxo agent probe`, non-root, on the local node): a filesystem
// library on a claim and an S3 library on the real S3 server turn Ready; an S3 endpoint that refuses connections
// turns Unreachable with the reason, a Warning event, and a back-off instead of a storm of probe pods.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerControllers } from "../../src/controllers/index.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import { admin, createBucket, freshNamespace, world } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let mgr: Manager;
const lib = (name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind: "Library", metadata: { name }, spec });
const path = (name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/libraries${name ? `/${name}` : ""}`;

async function phase(name: string, want: string, timeoutMs = 60_000): Promise<Obj> {
  return await waitFor(
    `library ${name} ${want}`,
    async () => {
      const l = await kube.get(path(name));
      return l.status?.phase === want ? l : undefined;
    },
    { timeoutMs, intervalMs: 250 },
  );
}

beforeAll(async () => {
  kube = admin();
  await installCrds(kube);
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "probe"));
  await createBucket("probe");
  const s3 = world().s3;
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
    metadata: { name: "s3" },
    stringData: { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey },
  });
  await kube.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    metadata: { name: "disk" },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  });
  mgr = testManager(world().kubeconfig);
  registerControllers(mgr, { agentImage: "auxo:dev", probeTimeoutSeconds: 15 });
  await mgr.start();
});

afterAll(async () => {
  await mgr?.stop();
  await removeNs?.();
  kube?.close();
});

describe("library probes", () => {
  it("finds a filesystem library on a claim and an S3 library reachable", async () => {
    await kube.create(path(), lib("disk", { filesystem: { persistentVolumeClaim: { claimName: "disk" }, path: "auxo" } }));
    await kube.create(
      path(),
      lib("objects", { s3: { endpoint: world().s3.endpoint, bucket: "probe", prefix: "k8s", credentialsSecret: { name: "s3" } } }),
    );
    const disk = await phase("disk", "Ready");
    expect(disk.status.message).toContain("is writable");
    expect(disk.status.conditions.find((c: Obj) => c.type === "Ready")).toMatchObject({ status: "True", reason: "Reachable" });
    const objects = await phase("objects", "Ready");
    expect(objects.status).toMatchObject({ consecutiveFailures: 0, message: `wrote and deleted a marker in bucket "probe" under "k8s/"` });
    expect(Date.parse(objects.status.nextProbeTime) - Date.parse(objects.status.lastProbeTime)).toBe(5 * 60_000);
    // The probe pods are gone once their verdict is in status.
    await waitFor("probe pods removed", async () =>
      (await kube.get(`/api/v1/namespaces/${ns}/pods`)).items.length === 0 ? true : undefined,
    );
  }, 120_000);

  it("marks an unreachable endpoint Unreachable with the reason, and backs off", async () => {
    await kube.create(path(), lib("down", { s3: { endpoint: "http://127.0.0.1:1", bucket: "probe", credentialsSecret: { name: "s3" } } }));
    const down = await phase("down", "Unreachable", 90_000);
    expect(down.status.message).toContain("connection refused");
    expect(down.status.consecutiveFailures).toBe(1);
    expect(down.status.conditions.find((c: Obj) => c.type === "Ready")).toMatchObject({ status: "False", reason: "Unreachable" });
    expect(Date.parse(down.status.nextProbeTime) - Date.parse(down.status.lastProbeTime)).toBe(30_000);
    const events = (await kube.get(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=down`)).items;
    expect(events.some((e: Obj) => e.type === "Warning" && e.reason === "Unreachable")).toBe(true);
    expect(JSON.stringify(down.status) + JSON.stringify(events)).not.toContain(world().s3.secretKey);
    // Circuit breaker: no new probe pod before the back-off ends.
    await new Promise((r) => setTimeout(r, 5000));
    const pods = (await kube.get(`/api/v1/namespaces/${ns}/pods`)).items.filter(
      (p: Obj) => p.metadata.name.startsWith("down-") && !p.metadata.deletionTimestamp,
    );
    expect(pods).toHaveLength(0);
    expect((await kube.get(path("down"))).status.consecutiveFailures).toBe(1); // one failure counted once
  }, 120_000);
});
