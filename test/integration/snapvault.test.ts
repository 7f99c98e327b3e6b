// SnapVault end to end through the CSI world: the real snapshot-controller, csi-snapshotter and csi-provisioner, the
// world's CSI driver with its fault controls, the node runner mounting restored volumes into real MediaAgent pods,
// restic, and S3 (through a relay this file owns, so the destination can go down). Every copy is read back from the
// destination with the plain restic CLI, as a user would check it.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerControllers } from "../../src/controllers/index.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { hashTree } from "../harness/checks.ts";
import { setFaults } from "../harness/csi/faults.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import { Relay } from "../harness/relay.ts";
import { admin, createBucket, freshNamespace, resticAsAgent, runWriter, world, waitForStatus } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let mgr: Manager | undefined;
let relay: Relay;
/** The operator's clock runs this far ahead of the real one (the retry budget's days). */
let clockOffsetMs = 0;
const scratch = mkdtempSync(path.join(os.tmpdir(), "auxo-snapvault-test-"));
const password = "snapvault-test-passphrase";
const bucket = "snapvault";
const restic = resticAsAgent(scratch, password);
const s3env = () => ({ AWS_ACCESS_KEY_ID: world().s3.accessKey, AWS_SECRET_ACCESS_KEY: world().s3.secretKey });
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const vsPath = (name = "") => `/apis/snapshot.storage.k8s.io/v1/namespaces/${ns}/volumesnapshots${name ? `/${name}` : ""}`;
const pvcPath = (name = "") => `/api/v1/namespaces/${ns}/persistentvolumeclaims${name ? `/${name}` : ""}`;
const merge = (p: string, body: Obj) => kube.request("PATCH", p, body, "application/merge-patch+json");
/** The destination, read straight from the S3 server (not through the relay, so also during the outage). */
const repo = (sv: string) => `s3:${world().s3.endpoint}/${bucket}/${ns}/snapvault/${sv}`;

async function startOperator(): Promise<void> {
  mgr = testManager(world().kubeconfig);
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    probeTimeoutSeconds: 5,
    scanIntervalSeconds: 3600,
    retryBaseMs: 1000,
    progressIntervalMs: 300,
    volumeSnapshots: true,
    now: () => Date.now() + clockOffsetMs,
  });
  await mgr.start();
}

async function stopOperator(): Promise<void> {
  await mgr?.stop();
  mgr = undefined;
}

interface Copy {
  id: string;
  time: string;
  tags: string[];
  tag: (k: string) => string | undefined;
}

/** The restic snapshots on a SnapVault's destination, oldest first. */
function copiesOn(sv: string): Copy[] {
  const snaps = JSON.parse(restic(repo(sv), s3env(), "snapshots", "--json")) as { id: string; time: string; tags?: string[] }[];
  return snaps
    .map((s) => {
      const tags = s.tags ?? [];
      return {
        id: s.id,
        time: s.time,
        tags,
        tag: (k: string) => tags.find((t) => t.startsWith(`auxo.dev/${k}=`))?.slice(`auxo.dev/${k}=`.length),
      };
    })
    .sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
}

/** A copy's files restored with plain restic: name → sha256. */
function restoredFiles(sv: string, id: string, pvc: string): Map<string, string> {
  const target = mkdtempSync(path.join(scratch, "restore-"));
  execFileSync("chown", ["65532:65532", target]);
  restic(repo(sv), s3env(), "restore", `${id}:/snapshots/${pvc}`, "--target", target);
  const out = new Map(Object.entries(hashTree(target)));
  rmSync(target, { recursive: true, force: true });
  return out;
}

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

async function pvc(name: string): Promise<void> {
  await kube.create(pvcPath(), {
    metadata: { name, labels: { app: "db" } },
    spec: { storageClassName: world().csi.storageClass, accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  });
}

let writes = 0;
/** A writer pod: runs `script` with the PVC at /data, until it Succeeded. */
const write = (claim: string, script: string) => runWriter(kube, ns, `writer-${claim}-${++writes}`, claim, script);

async function snapVault(name: string, spec: Obj): Promise<void> {
  await kube.create(api("snapvaults"), {
    apiVersion: "auxo.dev/v1alpha1",
    kind: "SnapVault",
    metadata: { name },
    spec: {
      destination: { library: "vault", encryption: { passwordSecret: { name: "repo-password" } } },
      schedule: { every: "168h", suspend: true },
      ...spec,
    },
  });
}

async function svStatus(name: string, check: (s: Obj) => boolean, what: string, timeoutMs = 120_000): Promise<Obj> {
  return await waitForStatus(kube, api("snapvaults", name), `snapvault ${name} ${what}`, check, { timeoutMs });
}

let tokens = 0;
/** Asks for a run (a new token) and waits until it ended; returns the status then. */
async function runNow(name: string, timeoutMs = 180_000): Promise<Obj> {
  const before = (await kube.get(api("snapvaults", name))).status?.runs ?? 0;
  const token = `t${++tokens}`;
  await merge(api("snapvaults", name), { metadata: { annotations: { "auxo.dev/run-requested": token } } });
  return await svStatus(
    name,
    (s) => s.lastRequest === token && (s.runs ?? 0) > before && !!s.run?.endTime && s.run?.aging !== undefined,
    `run for ${token} ended and the destination aged`,
    timeoutMs,
  );
}

/** What the status says of each snapshot, for a failed assertion about a run's end. */
const snapshotsSaid = (s: Obj) =>
  JSON.stringify({
    run: s.run,
    snapshots: (s.snapshots as Obj[] | undefined)?.map((e) => [e.name, e.state, e.reason, e.lastError, e.run]),
  });

const entryOf = (s: Obj, pvcName: string, pick = (e: Obj[]) => e[e.length - 1]) =>
  pick(
    (s.snapshots as Obj[])
      .filter((e) => e.persistentVolumeClaim === pvcName)
      .sort((a, b) => Date.parse(a.creationTime) - Date.parse(b.creationTime)),
  );

/** Restored volumes and copy pods of a SnapVault still in the cluster. */
async function leftovers(sv: string): Promise<string[]> {
  const sel = `labelSelector=auxo.dev/snapvault%3D${sv}`;
  const claims = (await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims?${sel}`)).items as Obj[];
  const pods = ((await kube.get(`/api/v1/namespaces/${ns}/pods?${sel}`)).items as Obj[]).filter((p) => !p.metadata.name.endsWith("-init"));
  return [...claims.map((c) => `pvc/${c.metadata.name}`), ...pods.map((p) => `pod/${p.metadata.name}`)];
}

async function eventsOf(name: string, reason: string): Promise<Obj[]> {
  const list = await kube.get(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=${name}`);
  return (list.items as Obj[]).filter((e) => e.reason === reason);
}

beforeAll(async () => {
  execFileSync("chown", ["65532:65532", scratch]);
  kube = admin();
  await installCrds(kube);
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "sv"));
  await createBucket(bucket);
  relay = new Relay(Number(new URL(world().s3.endpoint).port));
  await relay.open();
  const s3 = world().s3;
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
    metadata: { name: "s3" },
    stringData: { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey },
  });
  await startOperator();
  await kube.create(api("libraries"), {
    apiVersion: "auxo.dev/v1alpha1",
    kind: "Library",
    metadata: { name: "vault" },
    spec: { s3: { endpoint: `http://127.0.0.1:${relay.port}`, bucket, credentialsSecret: { name: "s3" } }, probeInterval: "2s" },
  });
  for (const p of ["db-0", "db-1", "db-2", "flaky-0", "flaky-1"]) await pvc(p);
}, 240_000);

afterAll(async () => {
  await setFaults(world().csi.dir, { offline: [] }).catch(() => undefined);
  await relay?.open().catch(() => undefined);
  await stopOperator().catch(() => undefined);
  await removeNs?.();
  await relay?.cut().catch(() => undefined);
  kube?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe("a vault of three PVCs with writers", () => {
  const dbs = ["db-0", "db-1", "db-2"];

  it("copies each snapshot's point in time once, waiting out a destination outage without costing an attempt", async () => {
    for (const d of dbs) await write(d, `printf 'A-${d}' > /data/state.txt && mkdir -p /data/sub && printf 'first' > /data/sub/note`);
    await snapVault("vault", { source: { persistentVolumeClaims: dbs, retention: { days: 7 } } });
    await svStatus("vault", (s) => !!s.repositoryId, "repository opened");

    // The destination goes down; the run cuts its snapshots and waits.
    await relay.cut();
    await waitFor(
      "library vault Unreachable",
      async () => ((await kube.get(api("libraries", "vault"))).status?.phase === "Unreachable" ? true : undefined),
      {
        timeoutMs: 60_000,
        intervalMs: 300,
      },
    );
    await merge(api("snapvaults", "vault"), { metadata: { annotations: { "auxo.dev/run-requested": "outage" } } });
    const parked = await svStatus(
      "vault",
      (s) => s.run?.number === 1 && /Unreachable/.test(s.run?.waiting ?? ""),
      "waiting for the destination",
    );
    expect(parked.phase).toBe("Running");
    const cut = await waitFor(
      "three snapshots ready",
      async () => {
        const list = ((await kube.get(vsPath())).items as Obj[]).filter((v) => v.metadata.labels?.["auxo.dev/snapvault"] === "vault");
        return list.length === 3 && list.every((v) => v.status?.readyToUse) ? list : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 300 },
    );
    // Writes after the cut must not reach the copies.
    for (const d of dbs) await write(d, `printf 'B-${d}' > /data/state.txt && rm /data/sub/note`);
    const waiting = (await kube.get(api("snapvaults", "vault"))).status;
    expect(waiting.snapshots.map((e: Obj) => [e.state, e.attempts ?? 0])).toEqual([
      ["Pending", 0],
      ["Pending", 0],
      ["Pending", 0],
    ]);

    await relay.open();
    const done = await svStatus("vault", (s) => s.run?.number === 1 && !!s.run?.endTime, "run 1 ended", 180_000);
    await svStatus("vault", (s) => s.run?.aging !== undefined, "aging after run 1");
    expect(done.run.phase, snapshotsSaid(done)).toBe("Completed");
    expect(done.counts).toMatchObject({ copied: 3, retrying: 0, missing: 0 });
    expect(done.snapshots.every((e: Obj) => e.state === "Copied" && (e.attempts ?? 0) === 0)).toBe(true);

    const copies = copiesOn("vault");
    expect(copies.map((c) => c.tag("subclient")).sort()).toEqual(dbs);
    for (const c of copies) {
      const d = c.tag("subclient") as string;
      const vs = cut.find((v) => v.spec.source.persistentVolumeClaimName === d) as Obj;
      expect(c.tag("volumesnapshot-uid")).toBe(vs.metadata.uid);
      expect(c.tag("client")).toBe(ns);
      expect(Date.parse(c.time)).toBe(Date.parse(vs.status.creationTime));
      expect(restoredFiles("vault", c.id, d)).toEqual(
        new Map([
          ["state.txt", sha(`A-${d}`)],
          ["sub/note", sha("first")],
        ]),
      );
    }
    expect(await leftovers("vault")).toEqual([]);
  }, 300_000);

  it("copies the next run's snapshots with the previous copies as parents, through an operator killed mid-run, with nothing left behind", async () => {
    // Enough data that the copies take a moment: the operator is stopped while they run.
    for (const d of dbs) await write(d, `printf 'C-${d}' > /data/state.txt && head -c 20000000 /dev/urandom > /data/blob`);
    await merge(api("snapvaults", "vault"), { metadata: { annotations: { "auxo.dev/run-requested": "second" } } });
    await svStatus("vault", (s) => s.run?.number === 2 && s.snapshots.some((e: Obj) => e.state === "Copying"), "copying in run 2");
    await stopOperator();
    await startOperator();
    const done = await svStatus("vault", (s) => s.run?.number === 2 && !!s.run?.endTime, "run 2 ended", 180_000);
    await svStatus("vault", (s) => s.run?.aging !== undefined, "aging after run 2");
    expect(done.run.phase, snapshotsSaid(done)).toBe("Completed");
    expect(done.counts).toMatchObject({ copied: 6, missing: 0 });
    const copies = copiesOn("vault");
    expect(copies).toHaveLength(6);
    expect(new Set(copies.map((c) => c.tag("job"))).size).toBe(6);
    const latest = copies.filter((c) => c.tag("subclient") === "db-1").at(-1) as Copy;
    expect(restoredFiles("vault", latest.id, "db-1").get("state.txt")).toBe(sha("C-db-1"));
    expect(await leftovers("vault")).toEqual([]);
  }, 300_000);

  it("copies nothing again after a repeat, a wiped status and an operator restart (the destination is the truth)", async () => {
    const before = copiesOn("vault").map((c) => c.id);
    await stopOperator();
    await kube.request("PUT", `${api("snapvaults", "vault")}/status`, { ...(await kube.get(api("snapvaults", "vault"))), status: {} });
    // The run requested before the restart is asked again: its snapshots are found on the destination.
    await merge(api("snapvaults", "vault"), { metadata: { annotations: { "auxo.dev/run-requested": "second" } } });
    await startOperator();
    const rebuilt = await svStatus("vault", (s) => !!s.run?.endTime && s.run?.aging !== undefined, "a run after the wipe ended", 180_000);
    expect(rebuilt.run, snapshotsSaid(rebuilt)).toMatchObject({ number: 1, phase: "Completed" });
    // The six snapshots it knew are found on the destination; the run's own three are the only new copies.
    expect(rebuilt.counts).toMatchObject({ copied: 9, missing: 0 });
    expect(rebuilt.run.copied).toBe(3);
    const after = copiesOn("vault");
    expect(after).toHaveLength(before.length + 3);
    expect(
      after
        .map((c) => c.id)
        .filter((id) => before.includes(id))
        .sort(),
    ).toEqual([...before].sort());
    expect(new Set(after.map((c) => c.tag("volumesnapshot-uid"))).size).toBe(after.length);
    expect(await leftovers("vault")).toEqual([]);
  }, 300_000);

  it("a Mirror forgets the copy of a snapshot deleted at the source; the Vault keeps its copy by its own retention", async () => {
    await snapVault("mirror", { mode: "Mirror", source: { persistentVolumeClaims: ["db-0"] } });
    await svStatus("mirror", (s) => !!s.repositoryId, "repository opened");
    await runNow("mirror");
    await runNow("mirror");
    const two = copiesOn("mirror");
    expect(two).toHaveLength(2);
    const first = two[0] as Copy;
    await kube.delete(vsPath(first.tag("volumesnapshot") as string));
    // The vault's oldest snapshot goes too: the vault keeps its copy.
    const vaultFirst = copiesOn("vault")[0] as Copy;
    await kube.delete(vsPath(vaultFirst.tag("volumesnapshot") as string));
    const third = await runNow("mirror");
    await svStatus("mirror", (s) => s.run?.number === third.run.number && !!s.run?.aging, "aging after the run");
    const after = (await kube.get(api("snapvaults", "mirror"))).status;
    expect(after.run, snapshotsSaid(after)).toMatchObject({
      phase: "Completed",
      aged: 1,
      aging: "1 copies of deleted snapshots forgotten",
    });
    const left = copiesOn("mirror");
    expect(left).toHaveLength(2);
    expect(left.map((c) => c.id)).not.toContain(first.id);
    const vault = await runNow("vault");
    expect(vault.run.phase, snapshotsSaid(vault)).toBe("Completed");
    await svStatus("vault", (s) => s.run?.number === vault.run.number && !!s.run?.aging, "vault aging after the run");
    expect(copiesOn("vault").map((c) => c.id)).toContain(vaultFirst.id);
  }, 300_000);

  it("a PVC deleted before its cut is Missing at once, and the run AvailableWithMissingSnaps", async () => {
    await kube.delete(pvcPath("db-2"));
    await waitFor(
      "db-2 gone",
      async () => ((await kube.get(pvcPath()).then((l) => (l.items as Obj[]).some((p) => p.metadata.name === "db-2"))) ? undefined : true),
      {
        timeoutMs: 60_000,
        intervalMs: 300,
      },
    );
    const s = await runNow("vault");
    expect(s.run.phase, snapshotsSaid(s)).toBe("AvailableWithMissingSnaps");
    const gone = (s.snapshots as Obj[]).find((e) => e.persistentVolumeClaim === "db-2" && e.run === s.run.number);
    expect(gone).toMatchObject({ state: "Missing", reason: "SourceVolumeDeleted", attempts: 0 });
    await waitFor("a SnapshotMissing event naming SourceVolumeDeleted", async () =>
      (await eventsOf("vault", "SnapshotMissing")).some((e) => /SourceVolumeDeleted/.test(e.message)) ? true : undefined,
    );
  }, 300_000);
});

describe("offline source volumes and the retry budget", () => {
  const adopt = async (name: string, pvcName: string) => {
    await kube.create(vsPath(), {
      apiVersion: "snapshot.storage.k8s.io/v1",
      kind: "VolumeSnapshot",
      metadata: { name, labels: { team: "flaky" } },
      spec: { volumeSnapshotClassName: world().csi.snapshotClass, source: { persistentVolumeClaimName: pvcName } },
    });
    await waitFor(`${name} ready`, async () => ((await kube.get(vsPath(name))).status?.readyToUse ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 300,
    });
  };

  it("retries an offline volume's snapshot in later runs, copies it once back, and makes the other Missing when the attempts run out", async () => {
    await write("flaky-0", "printf 'zero' > /data/state.txt");
    await write("flaky-1", "printf 'one' > /data/state.txt");
    await adopt("f0-a", "flaky-0");
    await adopt("f1-a", "flaky-1");
    await snapVault("flaky", {
      source: { adopt: { volumeSnapshotSelector: { matchLabels: { team: "flaky" } } } },
      retry: { maxAttempts: 3 },
      stagingTimeout: "30s",
    });
    await svStatus("flaky", (s) => !!s.repositoryId, "repository opened");
    await setFaults(world().csi.dir, { offline: [`${ns}/flaky-0`, `${ns}/flaky-1`] });

    for (const n of [1, 2]) {
      const s = await runNow("flaky");
      expect(s.run.phase, snapshotsSaid(s)).toBe("Completed");
      for (const p of ["flaky-0", "flaky-1"]) expect(entryOf(s, p)).toMatchObject({ state: "Retrying", attempts: n });
      expect(entryOf(s, "flaky-0")?.lastError).toMatch(/Unavailable/);
    }
    expect(copiesOn("flaky")).toEqual([]);

    await setFaults(world().csi.dir, { offline: [`${ns}/flaky-1`] });
    const third = await runNow("flaky");
    expect(entryOf(third, "flaky-0")).toMatchObject({ state: "Copied", attempts: 2 });
    expect(entryOf(third, "flaky-1")).toMatchObject({ state: "Missing", reason: "RetryCountExhausted", attempts: 3 });
    expect(third.run.phase, snapshotsSaid(third)).toBe("AvailableWithMissingSnaps");
    expect(third.phase).toBe("AvailableWithMissingSnaps");
    const copies = copiesOn("flaky");
    expect(copies.map((c) => c.tag("volumesnapshot"))).toEqual(["f0-a"]);
    expect(restoredFiles("flaky", (copies[0] as Copy).id, "flaky-0")).toEqual(new Map([["state.txt", sha("zero")]]));
    await waitFor("a SnapshotMissing event naming RetryCountExhausted", async () =>
      (await eventsOf("flaky", "SnapshotMissing")).some((e) => /RetryCountExhausted/.test(e.message)) ? true : undefined,
    );
    expect(await leftovers("flaky")).toEqual([]);
  }, 300_000);

  it("makes a snapshot Missing (RetryTimeLimitExhausted) once maxDays pass, and a VolumeSnapshot deleted before its run at once", async () => {
    await setFaults(world().csi.dir, { offline: [] });
    await adopt("f1-b", "flaky-1");
    await adopt("f1-c", "flaky-1");
    await setFaults(world().csi.dir, { offline: [`${ns}/flaky-1`] });
    await svStatus("flaky", (s) => (s.snapshots as Obj[]).some((e) => e.name === "f1-c"), "f1-c seen");
    await kube.delete(vsPath("f1-c"));
    const gone = await svStatus(
      "flaky",
      (s) => (s.snapshots as Obj[]).some((e) => e.name === "f1-c" && e.state === "Missing"),
      "f1-c Missing",
    );
    expect((gone.snapshots as Obj[]).find((e) => e.name === "f1-c")).toMatchObject({ reason: "SourceSnapshotDeleted" });
    expect((gone.snapshots as Obj[]).find((e) => e.name === "f1-c")?.attempts).toBeUndefined();

    const first = await runNow("flaky");
    expect((first.snapshots as Obj[]).find((e) => e.name === "f1-b")).toMatchObject({ state: "Retrying", attempts: 1 });
    clockOffsetMs = 6 * 86_400_000;
    const later = await runNow("flaky");
    expect((later.snapshots as Obj[]).find((e) => e.name === "f1-b")).toMatchObject({
      state: "Missing",
      reason: "RetryTimeLimitExhausted",
      attempts: 1,
    });
    expect(later.run.phase, snapshotsSaid(later)).toBe("AvailableWithMissingSnaps");
    clockOffsetMs = 0;
  }, 300_000);
});
