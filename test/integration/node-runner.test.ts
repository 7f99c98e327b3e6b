// The local node runner runs real processes for pods: env from Secrets and ConfigMaps, volumes at their mount
// paths (CSI claims published by the world's driver, as a kubelet does), exit codes, termination messages,
// deletion and deadlines, logs through the API server.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { sleep, waitFor } from "../harness/net.ts";
import { admin, freshNamespace, getPod, hostPid, phaseIs, processAlive, waitForPod, world } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
const hostDirs: string[] = [];
const volumes: string[] = []; // PersistentVolumes the tests created (cluster-scoped)

beforeAll(async () => {
  kube = admin();
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "runner"));
});

afterAll(async () => {
  await removeNs?.();
  for (const pv of volumes) await kube?.deleteIfExists(`/api/v1/persistentvolumes/${pv}`);
  kube?.close();
  for (const d of hostDirs) rmSync(d, { recursive: true, force: true });
});

function pod(name: string, script: string, extra: Obj = {}, container: Obj = {}): Obj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 2,
      containers: [{ name: "main", image: "busybox", command: ["/bin/sh", "-c", script], ...container }],
      ...extra,
    },
  };
}

const create = (obj: Obj) => kube.create(`/api/v1/namespaces/${ns}/pods`, obj);

/** A PersistentVolume pre-bound to claim `claim` of the test namespace, with the given volume source. */
const createStaticPv = (name: string, claim: string, source: Obj) =>
  kube.create("/api/v1/persistentvolumes", {
    metadata: { name },
    spec: {
      capacity: { storage: "1Gi" },
      accessModes: ["ReadWriteOnce"],
      storageClassName: "",
      persistentVolumeReclaimPolicy: "Retain",
      claimRef: { namespace: ns, name: claim },
      ...source,
    },
  });
const logs = (name: string, container = "main") => kube.get<string>(`/api/v1/namespaces/${ns}/pods/${name}/log?container=${container}`);

describe("local node runner", () => {
  it("registers a Ready node that kubectl lists", async () => {
    const node = await kube.get(`/api/v1/nodes/${world().nodeName}`);
    const ready = node.status.conditions.find((c: Obj) => c.type === "Ready");
    expect(ready.status).toBe("True");
    expect(node.status.addresses).toContainEqual({ type: "InternalIP", address: "127.0.0.1" });
    expect(node.spec.taints ?? []).toEqual([]);
  });

  it("runs a pod that writes into a PVC and reads a Secret from env, and ends Succeeded", async () => {
    const hostDir = mkdtempSync(path.join(os.tmpdir(), "auxo-pv-"));
    hostDirs.push(hostDir);
    const pvName = `${ns}-data`;
    await createStaticPv(pvName, "data", { hostPath: { path: hostDir } });
    await kube.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
      metadata: { name: "data" },
      spec: { accessModes: ["ReadWriteOnce"], storageClassName: "", volumeName: pvName, resources: { requests: { storage: "1Gi" } } },
    });
    await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: "repo-password" },
      stringData: { password: "correct horse battery staple" },
    });
    await create(
      pod(
        "writer",
        'printf "%s" "$RESTIC_PASSWORD" > /data/out.txt && echo "wrote on $(hostname)"',
        { volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data" } }] },
        {
          env: [{ name: "RESTIC_PASSWORD", valueFrom: { secretKeyRef: { name: "repo-password", key: "password" } } }],
          volumeMounts: [{ name: "data", mountPath: "/data" }],
        },
      ),
    );
    const done = await waitForPod(kube, ns, "writer", "to finish", phaseIs("Succeeded", "Failed"));
    expect(done.status.phase).toBe("Succeeded");
    expect(done.status.containerStatuses[0].state.terminated.exitCode).toBe(0);
    expect(readFileSync(path.join(hostDir, "out.txt"), "utf8")).toBe("correct horse battery staple");
    expect(await logs("writer")).toBe("wrote on writer\n");
    // The mount lived in the pod's private mount namespace only.
    expect(() => readFileSync("/data/out.txt")).toThrow();
  });

  it("keeps a claim's data across pods when the claim has no PersistentVolume", async () => {
    await kube.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
      metadata: { name: "scratch" },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
    });
    const vol = { volumes: [{ name: "s", persistentVolumeClaim: { claimName: "scratch" } }] };
    const mnt = { volumeMounts: [{ name: "s", mountPath: "/scratch" }] };
    await create(pod("first", "echo kept > /scratch/f", vol, mnt));
    expect((await waitForPod(kube, ns, "first", "to finish", phaseIs("Succeeded", "Failed"))).status.phase).toBe("Succeeded");
    await create(pod("second", "cat /scratch/f", vol, mnt));
    expect((await waitForPod(kube, ns, "second", "to finish", phaseIs("Succeeded", "Failed"))).status.phase).toBe("Succeeded");
    expect(await logs("second")).toBe("kept\n");
  });

  it("reports exit code 3 as Failed with the termination message", async () => {
    await create(pod("fails", 'echo "repository locked by pod x" > /dev/termination-log; exit 3'));
    const done = await waitForPod(kube, ns, "fails", "to finish", phaseIs("Succeeded", "Failed"));
    expect(done.status.phase).toBe("Failed");
    const t = done.status.containerStatuses[0].state.terminated;
    expect(t.exitCode).toBe(3);
    expect(t.reason).toBe("Error");
    expect(t.message).toBe("repository locked by pod x\n");
  });

  it("honours terminationMessagePath and FallbackToLogsOnError", async () => {
    await create(pod("custom-path", "echo done > /tmp/auxo-result.json", {}, { terminationMessagePath: "/tmp/auxo-result.json" }));
    await create(pod("fallback", "echo first; echo the last words >&2; exit 1", {}, { terminationMessagePolicy: "FallbackToLogsOnError" }));
    const a = await waitForPod(kube, ns, "custom-path", "to finish", phaseIs("Succeeded", "Failed"));
    expect(a.status.containerStatuses[0].state.terminated.message).toBe("done\n");
    const b = await waitForPod(kube, ns, "fallback", "to finish", phaseIs("Succeeded", "Failed"));
    expect(b.status.containerStatuses[0].state.terminated.message).toBe("first\nthe last words\n");
  });

  it("kills the process group when the pod is deleted mid-run", async () => {
    // The shell starts a child, so the test also proves the whole group goes, not just the main process.
    await create(pod("sleeper", "sleep 300 & echo started; wait", { terminationGracePeriodSeconds: 1 }));
    const running = await waitForPod(kube, ns, "sleeper", "to run", phaseIs("Running"));
    const pid = hostPid(running);
    expect(processAlive(pid)).toBe(true);
    await waitFor("the child to start", async () => ((await logs("sleeper")).includes("started") ? true : undefined));
    await kube.delete(`/api/v1/namespaces/${ns}/pods/sleeper`);
    await waitFor("the pod to be gone", async () => ((await getPod(kube, ns, "sleeper")) === undefined ? true : undefined), {
      timeoutMs: 30_000,
    });
    expect(processAlive(pid)).toBe(false);
    let groupAlive = true;
    try {
      process.kill(-pid, 0);
    } catch {
      groupAlive = false;
    }
    expect(groupAlive).toBe(false);
  });

  it("fails a pod that runs past activeDeadlineSeconds and stops its process", async () => {
    await create(pod("overtime", "sleep 300", { activeDeadlineSeconds: 2, terminationGracePeriodSeconds: 1 }));
    const running = await waitForPod(kube, ns, "overtime", "to run", phaseIs("Running"));
    const pid = hostPid(running);
    const done = await waitForPod(kube, ns, "overtime", "to fail", phaseIs("Failed", "Succeeded"), 30_000);
    expect(done.status.phase).toBe("Failed");
    expect(done.status.reason).toBe("DeadlineExceeded");
    expect(processAlive(pid)).toBe(false);
  });

  it("resolves envFrom, configMapKeyRef, fieldRef and $(VAR), and mounts Secret, ConfigMap and emptyDir volumes", async () => {
    await kube.create(`/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "settings" }, data: { MODE: "vault", retries: "10" } });
    await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: "s3" },
      stringData: { AWS_ACCESS_KEY_ID: "AKIDLOCAL", region: "eu-local" },
    });
    const script = [
      'echo "mode=$MODE retries=$RETRIES key=$S3_AWS_ACCESS_KEY_ID ns=$POD_NS repo=$REPO"',
      'echo "region=$(cat /etc/s3/region) retries-file=$(cat /etc/settings/retries) shared=$(cat /work/from-init)"',
      "echo args: $0 $1",
    ].join("; ");
    await create(
      pod(
        "envs",
        script,
        {
          initContainers: [
            {
              name: "prepare",
              image: "busybox",
              command: ["/bin/sh", "-c", "echo hello-from-init > /work/from-init"],
              volumeMounts: [{ name: "work", mountPath: "/work" }],
            },
          ],
          volumes: [
            { name: "work", emptyDir: {} },
            { name: "s3", secret: { secretName: "s3", items: [{ key: "region", path: "region" }] } },
            { name: "settings", configMap: { name: "settings" } },
          ],
        },
        {
          args: ["$(MODE)", "$$(MODE)"],
          envFrom: [{ configMapRef: { name: "settings" } }, { secretRef: { name: "s3" }, prefix: "S3_" }],
          env: [
            { name: "RETRIES", valueFrom: { configMapKeyRef: { name: "settings", key: "retries" } } },
            { name: "POD_NS", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
            { name: "REPO", value: "/libraries/$(POD_NS)/$(MODE)" },
          ],
          volumeMounts: [
            { name: "work", mountPath: "/work" },
            { name: "s3", mountPath: "/etc/s3", readOnly: true },
            { name: "settings", mountPath: "/etc/settings" },
          ],
        },
      ),
    );
    const done = await waitForPod(kube, ns, "envs", "to finish", phaseIs("Succeeded", "Failed"));
    expect(done.status.phase, await logs("envs")).toBe("Succeeded");
    expect(await logs("envs")).toBe(
      [
        `mode=vault retries=10 key=AKIDLOCAL ns=${ns} repo=/libraries/${ns}/vault`,
        "region=eu-local retries-file=10 shared=hello-from-init",
        "args: vault $(MODE)",
        "",
      ].join("\n"),
    );
    expect(done.status.initContainerStatuses[0].state.terminated.exitCode).toBe(0);
  });

  it("mounts a hostPath volume, creating it with DirectoryOrCreate", async () => {
    const base = mkdtempSync(path.join(os.tmpdir(), "auxo-hostpath-"));
    hostDirs.push(base);
    const dir = path.join(base, "created-by-the-runner");
    await create(
      pod(
        "hostpath",
        "echo from-the-pod > /host/out.txt",
        { volumes: [{ name: "h", hostPath: { path: dir, type: "DirectoryOrCreate" } }] },
        { volumeMounts: [{ name: "h", mountPath: "/host" }] },
      ),
    );
    expect((await waitForPod(kube, ns, "hostpath", "to finish", phaseIs("Succeeded", "Failed"))).status.phase).toBe("Succeeded");
    expect(readFileSync(path.join(dir, "out.txt"), "utf8")).toBe("from-the-pod\n");
  });

  it("mounts an emptyDir over /tmp without hiding the other volumes (read-only root filesystem pattern)", async () => {
    await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "tmp-test" }, stringData: { token: "visible" } });
    await create(
      pod(
        "tmpdir",
        "echo scratch > /tmp/f && cat /tmp/f /etc/creds/token && test ! -e /tmp/auxo-world-marker-that-is-not-there",
        {
          volumes: [
            { name: "tmp", emptyDir: {} },
            { name: "creds", secret: { secretName: "tmp-test" } },
          ],
        },
        {
          volumeMounts: [
            { name: "tmp", mountPath: "/tmp" },
            { name: "creds", mountPath: "/etc/creds" },
          ],
        },
      ),
    );
    const done = await waitForPod(kube, ns, "tmpdir", "to finish", phaseIs("Succeeded", "Failed"));
    expect(done.status.phase, await logs("tmpdir")).toBe("Succeeded");
    expect(await logs("tmpdir")).toBe("scratch\nvisible");
  });

  it("waits with CreateContainerConfigError for a missing Secret, then runs once it exists", async () => {
    await create(
      pod("waits", 'echo "token=$TOKEN"', {}, { env: [{ name: "TOKEN", valueFrom: { secretKeyRef: { name: "late", key: "token" } } }] }),
    );
    const waiting = await waitForPod(
      kube,
      ns,
      "waits",
      "to report the missing secret",
      (p) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason === "CreateContainerConfigError",
    );
    expect(waiting.status.phase).toBe("Pending");
    expect(waiting.status.containerStatuses[0].state.waiting.message).toBe('secret "late" not found');
    await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "late" }, stringData: { token: "t0" } });
    const done = await waitForPod(kube, ns, "waits", "to finish", phaseIs("Succeeded", "Failed"));
    expect(done.status.phase).toBe("Succeeded");
    expect(await logs("waits")).toBe("token=t0\n");
  });

  it("restarts a failing container under restartPolicy OnFailure", async () => {
    const script = "n=$(cat /state/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /state/n; echo run $n; [ $n -ge 2 ]";
    await create(
      pod(
        "retry",
        script,
        { restartPolicy: "OnFailure", volumes: [{ name: "state", emptyDir: {} }] },
        { volumeMounts: [{ name: "state", mountPath: "/state" }] },
      ),
    );
    const done = await waitForPod(kube, ns, "retry", "to finish", phaseIs("Succeeded", "Failed"));
    expect(done.status.phase).toBe("Succeeded");
    expect(done.status.containerStatuses[0].restartCount).toBe(1);
    expect(done.status.containerStatuses[0].lastState.terminated.exitCode).toBe(1);
    expect(await logs("retry")).toBe("run 1\nrun 2\n");
  });

  it("gives pods a service-account token that authenticates to the API server", async () => {
    const script = [
      "d=/var/run/secrets/kubernetes.io/serviceaccount",
      'test -s $d/token && test -s $d/ca.crt && echo "ns=$(cat $d/namespace) api=$KUBERNETES_SERVICE_HOST"',
    ].join("; ");
    await create(pod("sa", script));
    const done = await waitForPod(kube, ns, "sa", "to finish", phaseIs("Succeeded", "Failed"));
    expect(done.status.phase, await logs("sa")).toBe("Succeeded");
    expect(await logs("sa")).toBe(`ns=${ns} api=127.0.0.1\n`);
  });

  it("binds pods that name no node, and leaves pods whose nodeSelector does not match", async () => {
    await create(pod("elsewhere", "true", { nodeSelector: { "kubernetes.io/hostname": "some-other-node" } }));
    await create(pod("anywhere", "true"));
    const bound = await waitForPod(kube, ns, "anywhere", "to finish", phaseIs("Succeeded"));
    expect(bound.spec.nodeName).toBe(world().nodeName);
    const other = await getPod(kube, ns, "elsewhere");
    expect(other?.spec.nodeName).toBeUndefined();
    expect(other?.status.phase).toBe("Pending");
  });
});

describe("local node runner, CSI claims", () => {
  const claims = () => `/api/v1/namespaces/${ns}/persistentvolumeclaims`;
  const nodeDir = () => path.join(world().controlPlaneDir, "node");
  const podDir = (p: Obj) => path.join(nodeDir(), "pods", `${ns}_${p.metadata.name}_${p.metadata.uid}`);
  const mountinfo = () => readFileSync("/proc/self/mountinfo", "utf8");
  const events = async (name: string, reason: string): Promise<Obj[]> =>
    (await kube.get(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=${name},reason=${reason}`)).items;
  const claimVolume = (claimName: string, readOnly = false) => ({
    volumes: [{ name: "data", persistentVolumeClaim: { claimName, readOnly } }],
  });
  const atData = { volumeMounts: [{ name: "data", mountPath: "/data" }] };
  const gone = (name: string) =>
    waitFor(`pod ${name} to be gone`, async () => ((await getPod(kube, ns, name)) === undefined ? true : undefined), { timeoutMs: 60_000 });

  it("publishes a provisioned claim for a writer, read-only for a reader (EROFS), and unpublishes once the pods are gone", async () => {
    await kube.create(claims(), {
      metadata: { name: "csi-data" },
      spec: { storageClassName: world().csi.storageClass, accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
    });
    const pvc = await waitFor(
      "csi-provisioner to bind csi-data",
      async () => {
        const got = await kube.get(`${claims()}/csi-data`);
        return got.status?.phase === "Bound" ? got : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 300 },
    );
    const pv = await kube.get(`/api/v1/persistentvolumes/${pvc.spec.volumeName}`);
    expect(pv.spec.csi.driver).toBe(world().csi.driver);

    await create(pod("csi-writer", "echo from-the-writer > /data/f && echo written && sleep 300", claimVolume("csi-data"), atData));
    const writer = await waitForPod(kube, ns, "csi-writer", "to run", phaseIs("Running"));
    await waitFor("the writer to write", async () => ((await logs("csi-writer")).includes("written") ? true : undefined));
    // The driver published the volume at the kubelet's per-pod target, in the node's mount table.
    const target = path.join(podDir(writer), "volumes", "kubernetes.io~csi", pv.metadata.name, "mount");
    expect(mountinfo()).toContain(` ${target} `);

    await create(pod("csi-reader", "cat /data/f && ! touch /data/g", claimVolume("csi-data", true), atData));
    const reader = await waitForPod(kube, ns, "csi-reader", "to finish", phaseIs("Succeeded", "Failed"));
    expect(reader.status.phase, await logs("csi-reader")).toBe("Succeeded");
    expect(await logs("csi-reader")).toMatch(/^from-the-writer\n.*Read-only file system/s);

    await kube.delete(`/api/v1/namespaces/${ns}/pods/csi-writer`);
    await kube.delete(`/api/v1/namespaces/${ns}/pods/csi-reader`);
    await gone("csi-writer");
    await gone("csi-reader");
    expect(mountinfo()).not.toContain(path.join(nodeDir(), "pods", `${ns}_`));
    expect(existsSync(podDir(writer))).toBe(false);
    expect(existsSync(podDir(reader))).toBe(false);
  });

  it("holds a pod while its claim is unbound (FailedScheduling once), then fails the mount of an unregistered driver (FailedMount once)", async () => {
    // A claim pre-bound to a PersistentVolume that does not exist yet stays Pending: no scheduler binds its pod.
    const pvName = `${ns}-foreign`;
    volumes.push(pvName);
    await kube.create(claims(), {
      metadata: { name: "foreign" },
      spec: { storageClassName: "", volumeName: pvName, accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
    });
    await create(pod("foreign", "true", claimVolume("foreign"), atData));
    const [scheduling] = await waitFor("a FailedScheduling event", async () => {
      const got = await events("foreign", "FailedScheduling");
      return got.length > 0 ? got : undefined;
    });
    expect(scheduling?.type).toBe("Warning");
    expect(scheduling?.message).toContain("pod has unbound immediate PersistentVolumeClaims");
    const held = await getPod(kube, ns, "foreign");
    expect(held?.spec.nodeName).toBeUndefined();
    expect(held?.status.conditions).toContainEqual(
      expect.objectContaining({ type: "PodScheduled", status: "False", reason: "Unschedulable" }),
    );
    await sleep(2000); // re-checks happen meanwhile; none writes another event

    await createStaticPv(pvName, "foreign", { csi: { driver: "other.example", volumeHandle: "handle-1" } });
    const [failed] = await waitFor("a FailedMount event", async () => {
      const got = await events("foreign", "FailedMount");
      return got.length > 0 ? got : undefined;
    });
    expect(failed?.type).toBe("Warning");
    expect(failed?.message).toBe(
      `MountVolume.SetUp failed for volume "${pvName}" : kubernetes.io/csi: mounter.SetUpAt failed to get CSI client: driver name other.example not found in the list of registered CSI drivers`,
    );
    await sleep(3500); // two retries with the same cause
    const waiting = await getPod(kube, ns, "foreign");
    expect(waiting?.spec.nodeName).toBe(world().nodeName);
    expect(waiting?.status.phase).toBe("Pending");
    expect(waiting?.status.containerStatuses[0].state.waiting.reason).toBe("ContainerCreating");
    expect(await events("foreign", "FailedMount")).toHaveLength(1);
    expect(await events("foreign", "FailedScheduling")).toHaveLength(1);
    await kube.delete(`/api/v1/namespaces/${ns}/pods/foreign`);
    await gone("foreign");
  });
});
