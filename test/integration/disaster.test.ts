// Rebuilding Auxo's view from the libraries after losing the cluster (issue 17, docs/disaster-recovery.md): a gold
// policy with a year of weekly jobs on three copies in S3, a verification run after the fill and one data aging run,
// all on a control plane of its own. That control plane (etcd included) is thrown away, a new one is started, and the
// same manifests are applied, as a GitOps repository would. Every status comes back as it was (jobs by state,
// verification, last aging, run numbers), plain restic shows every repository unchanged, and the next aux copy
// copies only the jobs fed after the loss.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerControllers } from "../../src/controllers/index.ts";
import { type JobMetadata, tagsFor, toCatalogEntry } from "../../src/policy/catalog.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { ControlPlane } from "../harness/control-plane.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import type { NodeRunner } from "../harness/node-runner/runner.ts";
import { testManager } from "../harness/operator-testing.ts";
import { createBucket, resticAsAgentAsync, world, waitForStatus } from "../harness/testing.ts";
import { startNodeRunner } from "../harness/world.ts";

const ns = "dr";
const bucket = `dr-${randomBytes(3).toString("hex")}`;
const password = "disaster-recovery-passphrase";
const scratch = mkdtempSync(path.join(os.tmpdir(), "auxo-disaster-test-"));
// Asynchronous: this process hosts a node runner and an operator, whose event loop a synchronous call would stall.
const restic = resticAsAgentAsync(scratch, password);
const s3env = () => ({ AWS_ACCESS_KEY_ID: world().s3.accessKey, AWS_SECRET_ACCESS_KEY: world().s3.secretKey });
const repoOf = (copy: string) => `s3:${world().s3.endpoint}/${bucket}/${ns}/gold/${copy}`;
const snapshotIds = async (copy: string): Promise<string[]> =>
  (JSON.parse(await restic(repoOf(copy), s3env(), "snapshots", "--json")) as { id: string }[]).map((s) => s.id).sort();
const jobsOf = async (copy: string) =>
  (JSON.parse(await restic(repoOf(copy), s3env(), "snapshots", "--json")) as Obj[]).map((s) => toCatalogEntry(s as never));
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({
  apiVersion: "auxo.dev/v1alpha1",
  kind,
  metadata: { name, namespace: ns },
  spec,
});
const COPIES = ["primary", "offsite", "monthly"];

/** The manifests, as a GitOps repository holds them: intent only, the same for both clusters. */
function manifests(): { path: string; obj: Obj }[] {
  const s3 = world().s3;
  const enc = { passwordSecret: { name: "repo-password" } };
  // Data aging's daily run 12 hours away: the one run here is asked for.
  const at = new Date(Date.now() + 12 * 3600_000).toISOString().slice(11, 16);
  return [
    { path: `/api/v1/namespaces/${ns}/secrets`, obj: { metadata: { name: "repo-password" }, stringData: { password } } },
    {
      path: `/api/v1/namespaces/${ns}/secrets`,
      obj: { metadata: { name: "s3" }, stringData: { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey } },
    },
    {
      path: api("libraries"),
      obj: auxo("Library", "objects", { s3: { endpoint: s3.endpoint, bucket, credentialsSecret: { name: "s3" } } }),
    },
    { path: api("storagepolicies"), obj: auxo("StoragePolicy", "gold", { primaryCopy: "primary", dataAging: { at, maxAgedShare: 50 } }) },
    {
      path: api("policycopies"),
      obj: auxo("PolicyCopy", "primary", {
        storagePolicy: "gold",
        library: "objects",
        retention: { days: 270, cycles: 1 },
        encryption: enc,
      }),
    },
    {
      path: api("policycopies"),
      obj: auxo("PolicyCopy", "offsite", {
        storagePolicy: "gold",
        library: "objects",
        backups: { mode: "All" },
        retention: { days: 400, cycles: 1 },
        encryption: enc,
        dataVerification: { enabled: true, afterCopy: true, schedule: { suspend: true } },
      }),
    },
    {
      path: api("policycopies"),
      obj: auxo("PolicyCopy", "monthly", {
        storagePolicy: "gold",
        library: "objects",
        copyType: "Selective",
        selection: { frequency: "Monthly", full: "First" },
        backups: { mode: "All" },
        retention: { days: 400, cycles: 1 },
        encryption: enc,
      }),
    },
  ];
}

/** A control plane of its own, its node runner and an operator: one "cluster". */
interface Cluster {
  cp: ControlPlane;
  runner: NodeRunner;
  runnerClient: KubeRest;
  kube: KubeRest;
  mgr: Manager;
}

async function startCluster(): Promise<Cluster> {
  const cp = new ControlPlane();
  await cp.start();
  const { runner, client: runnerClient } = await startNodeRunner(cp, path.join(world().dir, "bin"));
  const kube = cp.client;
  await installCrds(kube);
  await kube.create("/api/v1/namespaces", { metadata: { name: ns } });
  for (const m of manifests()) await kube.create(m.path, m.obj);
  const mgr = testManager(cp.kubeconfig);
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    probeTimeoutSeconds: 10,
    scanIntervalSeconds: 3600,
    retryBaseMs: 1000,
    autoAuxCopy: false,
    dataAging: true,
  });
  await mgr.start();
  return { cp, runner, runnerClient, kube, mgr };
}

async function stopCluster(c: Cluster | undefined): Promise<void> {
  await c?.mgr.stop();
  await c?.runner.stop();
  c?.runnerClient.close();
  await c?.cp.stop(); // removes its folder: etcd's data goes with it
}

const copyStatus = (c: Cluster, name: string, check: (s: Obj) => boolean, what: string, timeoutMs = 120_000) =>
  waitForStatus(c.kube, api("policycopies", name), `${name} ${what}`, check, { timeoutMs, intervalMs: 300 });

async function auxCopy(c: Cluster, name: string): Promise<Obj> {
  await c.kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", name, { storagePolicy: "gold" }));
  let st: Obj | undefined;
  await waitFor(
    `aux copy ${name}`,
    async () => {
      st = (await c.kube.get(api("auxcopyjobs", name))).status;
      return ["Completed", "CompletedWithErrors", "Failed", "Killed"].includes(st?.phase) ? true : undefined;
    },
    { timeoutMs: 240_000, intervalMs: 300 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; status: ${JSON.stringify(st)}`);
  });
  return st as Obj;
}

/** What a user compares: the status parts rebuilt from the libraries. */
function view(s: Obj): Obj {
  const v = s.dataVerification;
  const a = s.dataAging;
  return {
    repositoryId: s.repositoryId,
    jobs: s.jobs,
    bytes: s.bytes,
    oldestJob: s.oldestJob,
    newestJob: s.newestJob,
    verification: s.verification,
    copyRetries: s.copyRetries,
    dataAging: a?.runs ? { runs: a.runs, agedJobs: a.agedJobs, lastAgedJobs: a.lastAgedJobs, lastAgedBytes: a.lastAgedBytes } : undefined,
    dataVerification: v?.runs
      ? {
          runs: v.runs,
          verifiedJobs: v.verifiedJobs,
          lastRun: {
            run: v.lastRun.run,
            trigger: v.lastRun.trigger,
            jobs: v.lastRun.jobs,
            verified: v.lastRun.verified,
            failed: v.lastRun.failed,
            result: v.lastRun.result,
          },
          history: v.history.map((h: Obj) => ({ run: h.run, jobs: h.jobs, verified: h.verified, failed: h.failed, result: h.result })),
        }
      : undefined,
  };
}

let fed = 0;
async function feed(time: number, type: "full" | "incremental"): Promise<void> {
  const job: JobMetadata = { jobId: `web-${String(++fed).padStart(3, "0")}`, type, status: "completed", client: "web", subclient: "app" };
  const dir = path.join(scratch, "data");
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${job.jobId}.bin`), randomBytes(2048));
  execFileSync("chown", ["-R", "65532:65532", dir]);
  const stamp = new Date(time).toISOString().slice(0, 19).replace("T", " ");
  await restic(
    repoOf("primary"),
    s3env(),
    "backup",
    "-q",
    "--host",
    "web",
    "--time",
    stamp,
    ...tagsFor(job).flatMap((t) => ["--tag", t]),
    dir,
  );
}

let first: Cluster | undefined;
let second: Cluster | undefined;
const before: Record<string, Obj> = {};
const idsBefore: Record<string, string[]> = {};
let agingBefore: Obj = {};

beforeAll(async () => {
  execFileSync("chown", ["65532:65532", scratch]);
  await createBucket(bucket);
  // A year of weekly jobs, a full every fourth week, fed by a restic client into the primary's repository before the
  // cluster adopts it (any restic client can feed a primary).
  await restic(repoOf("primary"), s3env(), "init");
  const now = Date.now();
  for (let k = 0; k < 52; k++) await feed(now - (52 - k) * 7 * 86_400_000, k % 4 === 0 ? "full" : "incremental");
  first = await startCluster();
  const c = first;
  for (const copy of COPIES) await copyStatus(c, copy, (s) => s.repositoryReady === true, "initialised");
  expect((await auxCopy(c, "fill")).phase).toBe("Completed");
  // Verification after the fill on offsite, and one data aging run on the primary.
  // (Settled: the run after the copy read the 52 jobs, and the scan's newest job has been seen by a run since.)
  await copyStatus(
    c,
    "offsite",
    (s) =>
      s.dataVerification?.phase === "Idle" &&
      (s.dataVerification.history ?? []).some((h: Obj) => h.jobs === 52) &&
      !!s.newestJob &&
      s.dataVerification.newestJobSeen === s.newestJob,
    "verified after the fill",
  );
  await c.kube.patch(api("policycopies", "primary"), {
    metadata: { annotations: { "auxo.dev/data-aging-requested": new Date().toISOString() } },
  });
  const aged = await copyStatus(
    c,
    "primary",
    (s) => s.dataAging?.runs === 1 && s.dataAging.phase === "Idle" && !!s.dataAging.lastRunTime,
    "aged",
  );
  expect(aged.dataAging.lastAgedJobs).toBeGreaterThan(0);
  agingBefore = aged.dataAging;
  // The scans after the runs, then what a user sees.
  for (const copy of COPIES) {
    const count = (await jobsOf(copy)).length;
    const st = await copyStatus(
      c,
      copy,
      (s) => s.jobs?.available === count && (copy !== "offsite" || s.verification?.verified === 52),
      "scanned after the runs",
    );
    before[copy] = view(st);
    idsBefore[copy] = await snapshotIds(copy);
  }
  await stopCluster(first);
  first = undefined;
}, 600_000);

afterAll(async () => {
  await stopCluster(first);
  await stopCluster(second);
  rmSync(scratch, { recursive: true, force: true });
});

describe("after losing the cluster", () => {
  it("a new control plane with the same manifests rebuilds every status from the libraries, and writes nothing to them", async () => {
    second = await startCluster();
    const c = second;
    for (const copy of COPIES) {
      const st = await copyStatus(
        c,
        copy,
        (s) =>
          s.repositoryReady === true &&
          !!s.lastScanTime &&
          (copy !== "primary" || s.dataAging?.runs === 1) &&
          (copy !== "offsite" || (s.dataVerification?.runs ?? 0) >= 1),
        "rebuilt",
      );
      expect(view(st)).toEqual(before[copy]);
      // The same repository was found, never created again.
      expect(await snapshotIds(copy)).toEqual(idsBefore[copy]);
    }
    const primary = (await c.kube.get(api("policycopies", "primary"))).status;
    // The last aging run's end, as its pod recorded it (within the seconds between its record and its exit).
    expect(Math.abs(Date.parse(primary.dataAging.lastRunTime) - Date.parse(agingBefore.lastRunTime))).toBeLessThan(5000);
    // Nothing ages early: the next run is the next daily one, after the last run.
    expect(Date.parse(primary.dataAging.nextRunTime)).toBeGreaterThan(Date.now());
    const events = await c.kube.get(`/api/v1/namespaces/${ns}/events?fieldSelector=reason=StatusRebuilt`);
    expect(events.items.map((e: Obj) => e.involvedObject.name).sort()).toEqual(["offsite", "primary"]);
  }, 300_000);

  it("the next aux copy copies only the jobs fed after the loss", async () => {
    const c = second as Cluster;
    const now = Date.now();
    await feed(now - 3600_000, "incremental");
    await feed(now - 1800_000, "incremental");
    const st = await auxCopy(c, "after-loss");
    expect(st.phase).toBe("Completed");
    const parts = Object.fromEntries((st.copies as Obj[]).map((p) => [p.name, p.settledJobsCopied ?? 0]));
    expect(parts.offsite).toBe(2);
    expect(parts.monthly ?? 0).toBe(0);
    // The old snapshots stay exactly as they were; offsite has the two new ones on top.
    const offsite = await snapshotIds("offsite");
    expect(offsite.filter((id) => idsBefore.offsite?.includes(id)).length).toBe(idsBefore.offsite?.length);
    expect(offsite.length).toBe((idsBefore.offsite?.length ?? 0) + 2);
    expect(await snapshotIds("monthly")).toEqual(idsBefore.monthly);
    // And they are verified right after they land, as before the loss.
    const v = await copyStatus(
      c,
      "offsite",
      (s) =>
        s.dataVerification?.lastRun?.trigger === "AfterCopy" &&
        s.dataVerification.lastRun.run > (before.offsite?.dataVerification?.runs ?? 0),
      "verified after the copy",
    );
    expect(v.dataVerification.lastRun).toMatchObject({ jobs: 2, verified: 2, failed: 0 });
  }, 300_000);
});
