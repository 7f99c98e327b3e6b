// Backup copy end to end through the CSI world (issue 16): an application PVC with a writer, snapshots cut by a
// SnapVault, backup copies landing on the gold policy's primary copy as typed jobs (incremental limit 2: F, I, I, D),
// an aux copy taking them to the S3 copy, a job restored from S3 with plain restic, a promotion after which backup
// copies land on the new primary; and a spool that deletes each snapshot (its content and the driver's data) once
// its copies are done, keeps the newest scheduled one, and keeps a snapshot whose backup copy could not be written.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerControllers } from "../../src/controllers/index.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { hashTree } from "../harness/checks.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import { Relay } from "../harness/relay.ts";
import { admin, createBucket, freshNamespace, resticAsAgent, runWriter, waitForStatus, world } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let mgr: Manager | undefined;
let relay: Relay;
/** The operator's clock runs this far ahead of the real one (scheduled runs without waiting an hour). */
let clockOffsetMs = 0;
const scratch = mkdtempSync(path.join(os.tmpdir(), "auxo-backupcopy-test-"));
const password = "backupcopy-test-passphrase";
const bucket = "backupcopy";
const restic = resticAsAgent(scratch, password);
const s3env = () => ({ AWS_ACCESS_KEY_ID: world().s3.accessKey, AWS_SECRET_ACCESS_KEY: world().s3.secretKey });
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const vsPath = (name = "") => `/apis/snapshot.storage.k8s.io/v1/namespaces/${ns}/volumesnapshots${name ? `/${name}` : ""}`;
const merge = (p: string, body: Obj) => kube.request("PATCH", p, body, "application/merge-patch+json");
const enc = { passwordSecret: { name: "repo-password" } };
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

async function diskDir(): Promise<string> {
  const pvc = await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/disk`);
  return path.join(world().controlPlaneDir, "node", "claims", ns, `disk-${pvc.metadata.uid}`);
}
const s3Repo = (policy: string, copy: string) => `s3:${world().s3.endpoint}/${bucket}/${ns}/${policy}/${copy}`;

interface Snap {
  id: string;
  time: string;
  parent?: string;
  hostname: string;
  tag: (k: string) => string | undefined;
}
/** A repository's restic snapshots, oldest first, read with plain restic. */
function snapshotsOf(repo: string, env: Record<string, string> = {}): Snap[] {
  const list = JSON.parse(restic(repo, env, "snapshots", "--json")) as (Omit<Snap, "tag"> & { tags?: string[] })[];
  return list
    .map((s) => ({ ...s, tag: (k: string) => (s.tags ?? []).find((t) => t.startsWith(`auxo.dev/${k}=`))?.slice(`auxo.dev/${k}=`.length) }))
    .sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
}

let writes = 0;
/** A writer pod: runs `script` with the PVC at /data, until it Succeeded. */
const write = (claim: string, script: string) => runWriter(kube, ns, `writer-${++writes}`, claim, script);

async function svStatus(name: string, check: (s: Obj) => boolean, what: string, timeoutMs = 180_000): Promise<Obj> {
  return await waitForStatus(kube, api("snapvaults", name), `snapvault ${name} ${what}`, check, { timeoutMs, intervalMs: 300 });
}

/** What status says of the run and each snapshot, for a failed assertion. */
const said = (s: Obj) =>
  JSON.stringify({
    run: s.run,
    backupCopy: s.backupCopy,
    snapshots: (s.snapshots as Obj[] | undefined)?.map((e) => [e.name, e.state, e.backupCopy]),
  });

let tokens = 0;
/** Asks for a run and waits until it ended, the destination aged and nothing is left to back up. */
async function runNow(name: string): Promise<Obj> {
  const before = (await kube.get(api("snapvaults", name))).status?.runs ?? 0;
  const token = `t${++tokens}`;
  await merge(api("snapvaults", name), { metadata: { annotations: { "auxo.dev/run-requested": token } } });
  return await svStatus(
    name,
    (s) => s.lastRequest === token && (s.runs ?? 0) > before && !!s.run?.endTime && s.run?.aging !== undefined,
    `run for ${token} ended`,
  );
}

/** The newest snapshot entry (by creation time). */
const newest = (s: Obj): Obj =>
  [...(s.snapshots as Obj[])].sort((a, b) => Date.parse(b.creationTime) - Date.parse(a.creationTime))[0] as Obj;

async function ourSnapshots(sv: string): Promise<Obj[]> {
  return ((await kube.get(vsPath())).items as Obj[]).filter((v) => v.metadata.labels?.["auxo.dev/snapvault"] === sv);
}

beforeAll(async () => {
  execFileSync("chown", ["65532:65532", scratch]);
  kube = admin();
  await installCrds(kube);
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "bc"));
  await createBucket(bucket);
  relay = new Relay(Number(new URL(world().s3.endpoint).port));
  await relay.open();
  const s3 = world().s3;
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
    metadata: { name: "s3" },
    stringData: { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey },
  });
  // The filesystem library's claim (a plain folder of the node), and the application's volume on the CSI driver.
  await kube.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    metadata: { name: "disk" },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  });
  await kube.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    metadata: { name: "app" },
    spec: { storageClassName: world().csi.storageClass, accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  });
  mgr = testManager(world().kubeconfig);
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    probeTimeoutSeconds: 5,
    scanIntervalSeconds: 3600,
    retryBaseMs: 1000,
    progressIntervalMs: 300,
    autoAuxCopy: false,
    volumeSnapshots: true,
    now: () => Date.now() + clockOffsetMs,
  });
  await mgr.start();
  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { persistentVolumeClaim: { claimName: "disk" } } }));
  await kube.create(
    api("libraries"),
    auxo("Library", "s3", { s3: { endpoint: s3.endpoint, bucket, credentialsSecret: { name: "s3" } }, probeInterval: "2s" }),
  );
  // Through a relay this file owns, so that the primary of the spool's policy can go down.
  await kube.create(
    api("libraries"),
    auxo("Library", "s3-relay", {
      s3: { endpoint: `http://127.0.0.1:${relay.port}`, bucket, credentialsSecret: { name: "s3" } },
      probeInterval: "2s",
    }),
  );
  await kube.create(api("storagepolicies"), auxo("StoragePolicy", "gold", { primaryCopy: "primary", auxCopySchedule: { enabled: false } }));
  await kube.create(api("policycopies"), auxo("PolicyCopy", "primary", { storagePolicy: "gold", library: "disk", encryption: enc }));
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "offsite", { storagePolicy: "gold", library: "s3", backups: { mode: "All" }, encryption: enc }),
  );
  await kube.create(api("storagepolicies"), auxo("StoragePolicy", "silver", { primaryCopy: "tape", auxCopySchedule: { enabled: false } }));
  await kube.create(api("policycopies"), auxo("PolicyCopy", "tape", { storagePolicy: "silver", library: "s3-relay", encryption: enc }));
  for (const c of ["primary", "offsite", "tape"])
    await waitFor(`${c} initialised`, async () => ((await kube.get(api("policycopies", c))).status?.repositoryReady ? true : undefined), {
      timeoutMs: 120_000,
      intervalMs: 300,
    });
}, 300_000);

afterAll(async () => {
  await relay?.open().catch(() => undefined);
  await mgr?.stop().catch(() => undefined);
  await removeNs?.();
  await relay?.cut().catch(() => undefined);
  kube?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** The files written up to step n: what the snapshot after write n holds. */
const expected = (n: number) =>
  Object.fromEntries([["state.txt", sha(`v${n}`)], ...Array.from({ length: n }, (_, i) => [`file-${i + 1}.txt`, sha(`data-${i + 1}`)])]);
const step = (n: number) => write("app", `printf 'v${n}' > /data/state.txt && printf 'data-${n}' > /data/file-${n}.txt`);

describe("inline backup copy into the gold policy", () => {
  it("lands typed jobs on the primary (limit 2: F, I, I, D; D's parent the full), which an aux copy takes to S3 and plain restic restores", async () => {
    await kube.create(
      api("snapvaults"),
      auxo("SnapVault", "app", {
        storagePolicy: "gold",
        source: { persistentVolumeClaims: ["app"] },
        destination: { library: "disk", encryption: enc },
        schedule: { every: "168h", suspend: true },
        backupCopy: { enabled: true, incrementalLimit: 2 },
      }),
    );
    await svStatus("app", (s) => !!s.repositoryId, "repository opened");
    const types: string[] = [];
    for (let n = 1; n <= 4; n++) {
      await step(n);
      const s = await runNow("app");
      expect(s.run.phase, said(s)).toBe("Completed");
      const e = newest(s);
      expect(e.backupCopy, said(s)).toMatchObject({ state: "Copied", copy: "primary", status: "completed" });
      types.push(e.backupCopy.type);
      expect(s.run.message).toMatch(/backup copies: 1 to primary/);
    }
    expect(types).toEqual(["full", "incremental", "incremental", "differential"]);

    // Plain restic on the primary: the four jobs, typed, of client = namespace and subclient = PVC; parents by type.
    const primary = path.join(await diskDir(), ns, "gold", "primary");
    const onPrimary = snapshotsOf(primary);
    expect(onPrimary.map((x) => [x.tag("type"), x.tag("client"), x.tag("subclient"), x.hostname])).toEqual(
      ["full", "incremental", "incremental", "differential"].map((t) => [t, ns, "app", ns]),
    );
    const [f, i1, i2, d] = onPrimary as [Snap, Snap, Snap, Snap];
    expect(f.parent).toBeUndefined();
    expect(i1.parent).toBe(f.id);
    expect(i2.parent).toBe(i1.id);
    expect(d.parent).toBe(f.id);
    // The job's time is the snapshot's.
    const entries = ((await kube.get(api("snapvaults", "app"))).status.snapshots as Obj[]).sort(
      (a, b) => Date.parse(a.creationTime) - Date.parse(b.creationTime),
    );
    expect(onPrimary.map((x) => Date.parse(x.time) / 1000)).toEqual(entries.map((e) => Math.floor(Date.parse(e.creationTime) / 1000)));
    // The primary copy's status counts them (the SnapVault asked for a scan when they landed).
    await waitForStatus(kube, api("policycopies", "primary"), "primary to list 4 jobs", (s) => s.jobs?.available === 4, {
      timeoutMs: 60_000,
    });

    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "to-s3", { storagePolicy: "gold", copies: ["offsite"] }));
    const acj = await waitForStatus(
      kube,
      api("auxcopyjobs", "to-s3"),
      "aux copy to end",
      (s) => ["Completed", "CompletedWithErrors", "Failed"].includes(s.phase),
      { timeoutMs: 180_000 },
    );
    expect(acj.phase).toBe("Completed");
    const onS3 = snapshotsOf(s3Repo("gold", "offsite"), s3env());
    expect(onS3.map((x) => [x.tag("job"), x.tag("type")])).toEqual(onPrimary.map((x) => [x.tag("job"), x.tag("type")]));

    // The differential restored from S3 holds exactly what the volume held when its snapshot was cut.
    const target = mkdtempSync(path.join(scratch, "restore-"));
    execFileSync("chown", ["65532:65532", target]);
    restic(s3Repo("gold", "offsite"), s3env(), "restore", `${(onS3[3] as Snap).id}:/snapshots/app`, "--target", target);
    expect(hashTree(target)).toEqual(expected(4));
  });

  it("after a promotion, the next backup copy lands on the new primary, typed by the history there", async () => {
    await step(5);
    await kube.patch(api("storagepolicies", "gold"), { spec: { primaryCopy: "offsite" } });
    await waitForStatus(kube, api("storagepolicies", "gold"), "offsite promoted", (s) => s.primaryCopy === "offsite", {
      timeoutMs: 180_000,
    });
    const s = await runNow("app");
    expect(s.run.phase, said(s)).toBe("Completed");
    expect(newest(s).backupCopy, said(s)).toMatchObject({ state: "Copied", copy: "offsite", type: "incremental" });
    expect(s.backupCopy.primaryCopy).toBe("offsite");
    const onS3 = snapshotsOf(s3Repo("gold", "offsite"), s3env());
    expect(onS3).toHaveLength(5);
    expect((onS3[4] as Snap).parent).toBe((onS3[3] as Snap).id);
    expect(snapshotsOf(path.join(await diskDir(), ns, "gold", "primary"))).toHaveLength(4);
    const target = mkdtempSync(path.join(scratch, "restore-"));
    execFileSync("chown", ["65532:65532", target]);
    restic(s3Repo("gold", "offsite"), s3env(), "restore", `${(onS3[4] as Snap).id}:/snapshots/app`, "--target", target);
    expect(hashTree(target)).toEqual(expected(5));
  });
});

describe("access nodes", () => {
  it("waits with a condition naming access nodes that match no node, and runs on the node a PVC's annotation names", async () => {
    await kube.create(
      api("snapvaults"),
      auxo("SnapVault", "pinned", {
        storagePolicy: "gold",
        source: { persistentVolumeClaims: ["app"] },
        destination: { library: "disk", encryption: enc },
        schedule: { every: "168h", suspend: true },
        backupCopy: { enabled: true, accessNodes: { matchLabels: { "auxo.dev/access-node": "true" } } },
      }),
    );
    await svStatus("pinned", (s) => !!s.repositoryId, "repository opened");
    await merge(api("snapvaults", "pinned"), { metadata: { annotations: { "auxo.dev/run-requested": "pinned" } } });
    const waiting = await svStatus(
      "pinned",
      (s) => (s.conditions ?? []).some((c: Obj) => c.type === "AccessNodes" && c.status === "False") && newest(s)?.state === "Copied",
      "AccessNodes False, the vault copy done",
    );
    expect((waiting.conditions as Obj[]).find((c) => c.type === "AccessNodes")).toMatchObject({
      reason: "NoAccessNode",
      message: expect.stringContaining('{"matchLabels":{"auxo.dev/access-node":"true"}} match no node'),
    });
    expect(newest(waiting).backupCopy.state, said(waiting)).toBe("Pending");
    expect(waiting.run.phase).toBe("Running");

    // The PVC names the world's node as its access node: that wins over the selector, and the copy runs there.
    const node = ((await kube.get("/api/v1/nodes")).items as Obj[])[0]?.metadata.name as string;
    await merge(`/api/v1/namespaces/${ns}/persistentvolumeclaims/app`, { metadata: { annotations: { "auxo.dev/access-nodes": node } } });
    const s = await svStatus("pinned", (x) => x.lastRequest === "pinned" && !!x.run?.endTime, "the run to end on the named node");
    const primary = (await kube.get(api("storagepolicies", "gold"))).status.primaryCopy;
    expect(newest(s).backupCopy, said(s)).toMatchObject({ state: "Copied", copy: primary });
    expect(s.backupCopy.placement).toBe("AccessNodes");
    expect((s.conditions as Obj[]).find((c) => c.type === "AccessNodes")).toMatchObject({ status: "True", reason: "Matched" });
    await merge(`/api/v1/namespaces/${ns}/persistentvolumeclaims/app`, { metadata: { annotations: { "auxo.dev/access-nodes": null } } });
  }, 240_000);
});

describe("a spool of snapshots with backup copy", () => {
  /** Each VolumeSnapshot's content and the driver's data, while it exists. */
  async function stored(v: Obj): Promise<{ content: string; data: string }> {
    const content = `/apis/snapshot.storage.k8s.io/v1/volumesnapshotcontents/${v.status.boundVolumeSnapshotContentName}`;
    const handle: string = (await kube.get(content)).status.snapshotHandle;
    return { content, data: path.join(world().csi.dir, "snapshots", handle) };
  }
  async function gone(what: { content: string; data: string }[]): Promise<void> {
    for (const w of what) {
      await waitFor(
        `${w.content} deleted`,
        async () =>
          (await kube.get(w.content).then(
            () => false,
            () => true,
          ))
            ? true
            : undefined,
        {
          timeoutMs: 60_000,
          intervalMs: 300,
        },
      );
      expect(existsSync(w.data), w.data).toBe(false);
    }
  }
  /** The next scheduled run: the operator's clock an hour on, and a nudge so that it decides now. */
  async function scheduledRun(n: number): Promise<Obj> {
    clockOffsetMs += 3600_000;
    await merge(api("snapvaults", "spool"), { metadata: { annotations: { "test.auxo.dev/nudge": String(n) } } });
    return await svStatus("spool", (s) => s.runs === n && !!s.run?.endTime && s.run?.aging !== undefined, `scheduled run ${n} ended`);
  }

  it("deletes each snapshot once its copies are done, keeps the newest scheduled one, and keeps one whose backup copy waits", async () => {
    await kube.create(
      api("snapvaults"),
      auxo("SnapVault", "spool", {
        storagePolicy: "silver",
        source: { persistentVolumeClaims: ["app"], retention: { spool: true, keepNewest: "Scheduled" } },
        destination: { library: "disk", encryption: enc },
        schedule: { every: "1h" },
        backupCopy: { enabled: true },
      }),
    );
    // The first scheduled run is due at once.
    let s = await svStatus("spool", (x) => x.runs === 1 && !!x.run?.endTime && x.run?.aging !== undefined, "scheduled run 1 ended");
    expect(s.run.phase, said(s)).toBe("Completed");
    let kept = await ourSnapshots("spool");
    expect(kept.map((v) => v.metadata.name)).toEqual([newest(s).name]);
    for (const n of [2, 3]) {
      const before = await stored(kept[0] as Obj);
      s = await scheduledRun(n);
      expect(s.run.phase, said(s)).toBe("Completed");
      // The older one goes with its content and the driver's data; the newest scheduled one stays.
      await waitFor(
        `only run ${n}'s snapshot left`,
        async () => {
          const now = await ourSnapshots("spool");
          return now.length === 1 && now[0]?.metadata.name === newest(s).name ? now : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 300 },
      );
      await gone([before]);
      kept = await ourSnapshots("spool");
    }
    const tape = snapshotsOf(s3Repo("silver", "tape"), s3env());
    expect(tape.map((x) => x.tag("type"))).toEqual(["full", "incremental", "incremental"]);

    // A requested run is a true spool: its snapshot goes as soon as its copies are done.
    s = await runNow("spool");
    expect(newest(s).backupCopy?.state, said(s)).toBe("Copied");
    await waitFor(
      "only the scheduled snapshot left",
      async () => {
        const now = await ourSnapshots("spool");
        return now.length === 1 && now[0]?.metadata.name === kept[0]?.metadata.name ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 300 },
    );

    // The primary copy's library down: the vault copy is done, the backup copy waits, and the snapshot stays.
    await relay.cut();
    await waitFor(
      "library s3-relay Unreachable",
      async () => ((await kube.get(api("libraries", "s3-relay"))).status?.phase === "Unreachable" ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 300 },
    );
    await merge(api("snapvaults", "spool"), { metadata: { annotations: { "auxo.dev/run-requested": "outage" } } });
    s = await svStatus(
      "spool",
      (x) => x.lastRequest === "outage" && newest(x).state === "Copied" && /s3-relay/.test(x.backupCopy?.waiting ?? ""),
      "the backup copy waiting for the primary copy's library",
    );
    const waiting = newest(s).name as string;
    expect(newest(s).backupCopy.state, said(s)).toBe("Pending");
    expect(s.run.phase).toBe("Running");
    expect((await ourSnapshots("spool")).map((v) => v.metadata.name).sort()).toEqual([kept[0]?.metadata.name, waiting].sort());

    await relay.open();
    s = await svStatus("spool", (x) => x.lastRequest === "outage" && !!x.run?.endTime, "the outage run to end");
    expect(newest(s).backupCopy, said(s)).toMatchObject({ state: "Copied", copy: "tape" });
    await waitFor(
      "the waiting snapshot deleted once backed up",
      async () => {
        const now = await ourSnapshots("spool");
        return now.length === 1 && now[0]?.metadata.name === kept[0]?.metadata.name ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 300 },
    );
    expect(snapshotsOf(s3Repo("silver", "tape"), s3env())).toHaveLength(5);
  });
});
