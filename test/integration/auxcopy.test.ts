// Aux copy end to end: a policy with a primary on a filesystem library, a synchronous copy on the S3 server, a
// selective monthly copy and a cascade filled from the S3 copy. AuxCopyJobs run real MediaAgent pods through the node
// runner; every outcome is read back from the destination repositories with the plain restic CLI.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerControllers } from "../../src/controllers/index.ts";
import { type JobStatus, type JobType, tagsFor } from "../../src/policy/catalog.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import {
  admin,
  createBucket,
  freshNamespace,
  hostPid,
  phaseIs,
  s3Client,
  waitForPod,
  world,
  resticAsAgent,
  waitForStatus,
} from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let mgr: Manager;
const scratch = mkdtempSync(path.join(os.tmpdir(), "auxo-auxcopy-test-"));
const password = "aux-copy-repository-passphrase";
const bucket = "auxcopy";
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const enc = { passwordSecret: { name: "repo-password" } };
const s3env = () => ({ AWS_ACCESS_KEY_ID: world().s3.accessKey, AWS_SECRET_ACCESS_KEY: world().s3.secretKey });

const restic = resticAsAgent(scratch, password);

interface Fed {
  jobId: string;
  type: JobType;
  status: JobStatus;
  subclient: string;
  time: string;
}

/** Job ids on a repository, read with plain restic. */
function jobsOn(repo: string, env: Record<string, string> = {}): string[] {
  const snaps = JSON.parse(restic(repo, env, "snapshots", "--json")) as { tags?: string[] }[];
  return snaps.map((s) => (s.tags ?? []).find((t) => t.startsWith("auxo.dev/job="))?.slice("auxo.dev/job=".length) ?? "?").sort();
}

async function hostRepo(...p: string[]): Promise<string> {
  const pvc = await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/disk`);
  return path.join(world().controlPlaneDir, "node", "claims", ns, `disk-${pvc.metadata.uid}`, ...p);
}

async function acjStatus(name: string, check: (s: Obj) => boolean, what: string, timeoutMs = 180_000): Promise<Obj> {
  return await waitForStatus(kube, api("auxcopyjobs", name), `auxcopyjob ${name} ${what}`, check, { timeoutMs, intervalMs: 200 });
}

const fed: Fed[] = [];

beforeAll(async () => {
  execFileSync("chown", ["65532:65532", scratch]);
  kube = admin();
  await installCrds(kube);
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "auxcopy"));
  await createBucket(bucket);
  const s3 = world().s3;
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
    metadata: { name: "s3" },
    stringData: { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey },
  });
  await kube.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    metadata: { name: "disk" },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "5Gi" } } },
  });
  mgr = testManager(world().kubeconfig);
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    probeTimeoutSeconds: 15,
    scanIntervalSeconds: 3600,
    retryBaseMs: 1000,
    progressIntervalMs: 300,
  });
  await mgr.start();
  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { persistentVolumeClaim: { claimName: "disk" } } }));
  await kube.create(
    api("libraries"),
    auxo("Library", "objects", { s3: { endpoint: s3.endpoint, bucket, credentialsSecret: { name: "s3" } } }),
  );
  // Continuous copying is off except in its own test: the other tests count what their own runs copy.
  await kube.create(
    api("storagepolicies"),
    auxo("StoragePolicy", "gold", { primaryCopy: "primary", timeZone: "Europe/Paris", auxCopySchedule: { continuous: false } }),
  );
  await kube.create(api("policycopies"), auxo("PolicyCopy", "primary", { storagePolicy: "gold", library: "disk", encryption: enc }));
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "offsite", {
      storagePolicy: "gold",
      library: "objects",
      deduplication: { enabled: true },
      backups: { mode: "All" },
      encryption: enc,
    }),
  );
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "monthly", {
      storagePolicy: "gold",
      library: "disk",
      copyType: "Selective",
      selection: { frequency: "Monthly", full: "First" },
      backups: { mode: "All" },
      encryption: enc,
    }),
  );
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "vault", {
      storagePolicy: "gold",
      library: "disk",
      sourceCopy: "offsite",
      backups: { mode: "All" },
      encryption: enc,
    }),
  );
  for (const c of ["primary", "offsite", "monthly", "vault"])
    await waitFor(`${c} initialised`, async () => ((await kube.get(api("policycopies", c))).status?.repositoryReady ? true : undefined), {
      timeoutMs: 120_000,
      intervalMs: 300,
    });

  // 14 months of jobs for two subclients: a full on the 1st, incrementals on the 10th and 20th (one failed, one
  // killed along the way), each adding a file.
  const primary = await hostRepo(ns, "gold", "primary");
  for (const sub of ["pg", "files"]) {
    const data = path.join(scratch, sub);
    mkdirSync(data, { recursive: true });
    for (let m = 0; m < 14; m++) {
      const month = new Date(Date.UTC(2025, 8 + m, 1));
      for (const [day, type] of [
        [1, "full"],
        [10, "incremental"],
        [20, "incremental"],
      ] as const) {
        const i = fed.length;
        const status: JobStatus = i === 7 ? "failed" : i === 30 ? "killed" : i === 44 ? "completedWithErrors" : "completed";
        const time = new Date(month.getTime() + (day - 1) * 86_400_000 + 10 * 3600_000).toISOString();
        writeFileSync(path.join(data, `f${i}`), randomBytes(2048));
        execFileSync("chown", ["-R", "65532:65532", data]);
        const job = { jobId: `${sub}-${time.slice(0, 10)}`, type, status, client: "db", subclient: sub };
        fed.push({ ...job, time });
        restic(
          primary,
          {},
          "backup",
          "-q",
          "--host",
          "db",
          "--time",
          time.slice(0, 19).replace("T", " "),
          ...tagsFor(job).flatMap((t) => ["--tag", t]),
          data,
        );
      }
    }
  }
}, 600_000);

afterAll(async () => {
  await mgr?.stop();
  await removeNs?.();
  kube?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const validIds = () => fed.filter((f) => f.status === "completed" || f.status === "completedWithErrors").map((f) => f.jobId);

describe("aux copy", () => {
  it("fills a synchronous S3 copy, a selective monthly copy and a cascade, in one run", async () => {
    expect(fed.length).toBe(84);
    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "run-1", { storagePolicy: "gold" }));
    const st = await acjStatus("run-1", (s) => ["Completed", "CompletedWithErrors", "Failed"].includes(s.phase), "to finish");
    expect(st.phase).toBe("Completed");
    const byName = Object.fromEntries(st.copies.map((c: Obj) => [c.name, c]));
    expect(Object.keys(byName).sort()).toEqual(["monthly", "offsite", "vault"]);

    // Synchronous: every valid job, never the failed or killed ones; the cascade gets the same from the S3 copy.
    const valid = validIds().sort();
    const offsite = `s3:${world().s3.endpoint}/${bucket}/${ns}/gold/offsite`;
    expect(jobsOn(offsite, s3env())).toEqual(valid);
    expect(jobsOn(await hostRepo(ns, "gold", "vault"))).toEqual(valid);
    expect(byName.offsite).toMatchObject({ phase: "Completed", source: "primary", jobsSelected: valid.length, jobsCopied: valid.length });
    expect(byName.vault).toMatchObject({ phase: "Completed", source: "offsite", jobsCopied: valid.length });
    expect(byName.offsite.bytesCopied).toBeGreaterThan(0);

    // Selective monthly, first full: each month's first full per subclient (in Paris time; here the only full of the
    // month) and the valid incrementals it carries, up to the first that completed without errors (the failed one
    // in between is not data, so the carry goes on to the next).
    const expected: string[] = [];
    for (const sub of ["pg", "files"]) {
      let carrying = false;
      for (const f of fed.filter((x) => x.subclient === sub && validIds().includes(x.jobId))) {
        if (f.type === "full") carrying = true;
        else if (!carrying) continue;
        expected.push(f.jobId);
        if (f.type !== "full" && f.status === "completed") carrying = false;
      }
    }
    expected.sort();
    expect(expected).toContain("pg-2025-11-20"); // carried past the failed pg-2025-11-10
    expect(jobsOn(await hostRepo(ns, "gold", "monthly"))).toEqual(expected);
    expect(byName.monthly.jobsCopied).toBe(expected.length);
    expect(st.progress).toBe(`${2 * valid.length + expected.length}/${2 * valid.length + expected.length} jobs`);

    // Copy events beside the S3 repository: one per copied job.
    const listed = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${ns}/gold/offsite.auxo/jobs/` }));
    expect((listed.Contents ?? []).filter((o) => o.Key?.includes("-copy-ok-")).length).toBe(valid.length);

    // The copies' catalogs are rescanned after the run, so their status shows the new jobs without waiting an interval.
    await waitFor(
      "offsite status to show the copied jobs",
      async () => ((await kube.get(api("policycopies", "offsite"))).status?.jobs?.available === valid.length ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 300 },
    );
    const summary = await waitFor(
      "the policy's status to sum up its copies",
      async () => {
        const p = await kube.get(api("storagepolicies", "gold"));
        const o = (p.status?.copies ?? []).find((c: Obj) => c.name === "offsite");
        return o?.jobs === valid.length && o.lagSeconds === 0 ? p.status : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 300 },
    );
    const offsiteSummary = summary.copies.find((c: Obj) => c.name === "offsite");
    expect(offsiteSummary).toMatchObject({ backlog: 0, primary: false, copyType: "Synchronous" });
    expect(Date.parse(offsiteSummary.lastCopyTime)).toBeGreaterThan(Date.now() - 300_000);
    const metrics = await mgr.metrics.registry.metrics();
    expect(metrics).toContain(`auxo_auxcopy_copied_jobs_total{namespace="${ns}",policy="gold",copy="offsite"} ${valid.length}`);
    expect(metrics).toContain(`auxo_copy_backlog_jobs{namespace="${ns}",policy="gold",copy="monthly"} 0`);
    expect(metrics).toMatch(/auxo_auxcopy_run_duration_seconds_count\{namespace="[^"]+",policy="gold",phase="Completed"\} 1/);

    // A second run finds everything in place and copies nothing.
    // With one stream, its copies take turns: the others wait for a stream.
    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "run-2", { storagePolicy: "gold", streams: 1 }));
    const waits = new Set<string>();
    const again = await acjStatus(
      "run-2",
      (s) => {
        for (const c of s.copies ?? [])
          if (c.phase === "Waiting" && /all 1 streams of this job are in use/.test(c.message)) waits.add(c.name);
        return s.phase === "Completed";
      },
      "to complete",
    );
    expect(waits.size).toBeGreaterThanOrEqual(1);
    expect(again.jobsCopied).toBe(0);
    expect(jobsOn(offsite, s3env())).toEqual(valid);
  }, 600_000);

  it("shows live progress, and retries a copy pod killed mid-run without copying a job twice or leaving a lock", async () => {
    // Bigger jobs, so the copy takes long enough to watch and to kill.
    const primary = await hostRepo(ns, "gold", "primary");
    const data = path.join(scratch, "big");
    mkdirSync(data, { recursive: true });
    const big: string[] = [];
    for (let i = 0; i < 16; i++) {
      writeFileSync(path.join(data, `blob${i}`), randomBytes(12 << 20));
      execFileSync("chown", ["-R", "65532:65532", data]);
      const job = {
        jobId: `big-${i}`,
        type: i === 0 ? "full" : "incremental",
        status: "completed",
        client: "files",
        subclient: "big",
      } as const;
      big.push(job.jobId);
      restic(primary, {}, "backup", "-q", "--host", "files", ...tagsFor(job).flatMap((t) => ["--tag", t]), data);
    }
    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "run-3", { storagePolicy: "gold", copies: ["offsite"] }));
    const seen: string[] = [];
    const mid = await acjStatus(
      "run-3",
      (s) => {
        if (s.progress && seen.at(-1) !== s.progress) seen.push(s.progress);
        const c = s.copies?.[0];
        return c?.phase === "Running" && c.jobsCopied >= 2 && c.jobsCopied < c.jobsSelected;
      },
      "copying",
    );
    expect(mid.copies[0]).toMatchObject({ jobsSelected: 16, attempts: 1 });
    expect(mid.copies[0].currentJob).toMatch(/^big-/);
    expect(mid.copies[0].bytesTotal).toBeGreaterThan(mid.copies[0].bytesCopied);

    // SIGKILL the whole MediaAgent (agent and restic): no clean-up runs, its restic locks stay behind.
    const pod = await kube.get(`/api/v1/namespaces/${ns}/pods/run-3-offsite-1`);
    process.kill(-hostPid(pod), "SIGKILL");
    // The retry waits 4 s (retryBaseMs): time to see the lock the killed copy left.
    await waitForPod(kube, ns, "run-3-offsite-1", "to fail", phaseIs("Failed"), 30_000);
    const offsite = `s3:${world().s3.endpoint}/${bucket}/${ns}/gold/offsite`;
    expect(restic(offsite, s3env(), "list", "locks", "--no-lock").trim()).not.toBe(""); // the killed copy's lock

    const st = await acjStatus("run-3", (s) => ["Completed", "CompletedWithErrors", "Failed"].includes(s.phase), "to finish", 300_000);
    expect(st.phase).toBe("Completed");
    // Pass 1 needed a second attempt; the run's count is exact (from the job events beside the repository), though
    // the killed pod never reported its last jobs; then a second pass found nothing new.
    expect(st.copies[0]).toMatchObject({ phase: "Completed", jobsCopied: 16, pass: 2 });
    const events = await kube.get(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=run-3`);
    const retries = events.items.filter((e: Obj) => e.reason === "CopyRetrying");
    expect(retries).toHaveLength(1);
    expect(retries[0].message).toContain("agent pod run-3-offsite-1 was killed (exit code 137)");
    const onOffsite = jobsOn(offsite, s3env());
    expect(onOffsite.filter((j) => j.startsWith("big-")).sort()).toEqual([...big].sort()); // each exactly once
    expect(restic(offsite, s3env(), "list", "locks", "--no-lock").trim()).toBe("");
    expect(restic(primary, {}, "list", "locks", "--no-lock").trim()).toBe("");
    // Progress moved while it ran.
    expect(seen.length).toBeGreaterThanOrEqual(3);
  }, 600_000);

  it("continues a run across an operator restart and takes the jobs that reached the source meanwhile", async () => {
    const primary = await hostRepo(ns, "gold", "primary");
    const data = path.join(scratch, "restart");
    mkdirSync(data, { recursive: true });
    const backup = (i: number) => {
      writeFileSync(path.join(data, `blob${i}`), randomBytes(8 << 20));
      execFileSync("chown", ["-R", "65532:65532", data]);
      const job = {
        jobId: `restart-${i}`,
        type: i === 0 ? "full" : "incremental",
        status: "completed",
        client: "files",
        subclient: "restart",
      } as const;
      restic(primary, {}, "backup", "-q", "--host", "files", ...tagsFor(job).flatMap((t) => ["--tag", t]), data);
    };
    for (let i = 0; i < 10; i++) backup(i);
    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "run-4", { storagePolicy: "gold", copies: ["offsite"] }));
    await acjStatus("run-4", (s) => s.copies?.[0]?.phase === "Running" && s.copies[0].jobsCopied >= 1, "copying");

    // The operator goes away mid-run; the copy pod goes on. Two more jobs reach the primary meanwhile.
    await mgr.stop();
    backup(10);
    backup(11);
    mgr = testManager(world().kubeconfig);
    registerControllers(mgr, {
      agentImage: "auxo:dev",
      probeTimeoutSeconds: 15,
      scanIntervalSeconds: 3600,
      retryBaseMs: 4000,
      progressIntervalMs: 300,
    });
    await mgr.start();

    const st = await acjStatus("run-4", (s) => ["Completed", "CompletedWithErrors", "Failed"].includes(s.phase), "to finish", 300_000);
    expect(st.phase).toBe("Completed");
    expect(st.copies[0]).toMatchObject({ jobsCopied: 12, attempts: 1 }); // no attempt was lost or repeated
    const offsite = `s3:${world().s3.endpoint}/${bucket}/${ns}/gold/offsite`;
    expect(jobsOn(offsite, s3env()).filter((j) => j.startsWith("restart-"))).toEqual(
      Array.from({ length: 12 }, (_, i) => `restart-${i}`).sort(),
    );
  }, 600_000);

  it("starts an automatic aux copy as soon as a scan finds a new job on the primary (continuous copying)", async () => {
    // The interval stays 30 minutes, far longer than this test: only continuous copying can start a run.
    const policy = await kube.get(api("storagepolicies", "gold"));
    expect(Date.now() - Date.parse(policy.metadata.creationTimestamp)).toBeLessThan(25 * 60_000);
    const data = path.join(scratch, "live");
    mkdirSync(data, { recursive: true });
    writeFileSync(path.join(data, "now.bin"), randomBytes(4096));
    execFileSync("chown", ["-R", "65532:65532", data]);
    await kube.patch(api("storagepolicies", "gold"), { spec: { auxCopySchedule: { continuous: true } } });
    const job = { jobId: "live-1", type: "full", status: "completed", client: "files", subclient: "live" } as const;
    restic(
      await hostRepo(ns, "gold", "primary"),
      {},
      "backup",
      "-q",
      "--host",
      "files",
      ...tagsFor(job).flatMap((t) => ["--tag", t]),
      data,
    );
    // A backup producer (or the scan interval) has the primary scanned; the scan finds the job, a run starts.
    await kube.patch(api("policycopies", "primary"), {
      metadata: { annotations: { "auxo.dev/rescan-requested": new Date().toISOString() } },
    });
    const offsite = `s3:${world().s3.endpoint}/${bucket}/${ns}/gold/offsite`;
    await waitFor("live-1 on the offsite copy", async () => (jobsOn(offsite, s3env()).includes("live-1") ? true : undefined), {
      timeoutMs: 180_000,
      intervalMs: 1000,
    });
    const automatic = ((await kube.get(`${api("auxcopyjobs")}?labelSelector=auxo.dev/trigger%3Dschedule`)).items as Obj[]).map(
      (j) => j.metadata.name as string,
    );
    expect(automatic.length).toBeGreaterThan(0);
    await kube.patch(api("storagepolicies", "gold"), { spec: { auxCopySchedule: { continuous: false } } });
    // Let the automatic runs end before the next test counts runs.
    await waitFor(
      "automatic runs to end",
      async () =>
        ((await kube.get(`${api("auxcopyjobs")}?labelSelector=auxo.dev/trigger%3Dschedule`)).items as Obj[]).every((j) =>
          ["Completed", "CompletedWithErrors", "Failed", "Killed"].includes(j.status?.phase),
        )
          ? true
          : undefined,
      { timeoutMs: 120_000, intervalMs: 500 },
    );
  }, 300_000);

  it("runs the policy's automatic aux copy on its schedule and keeps its history within the limits", async () => {
    const testStart = Math.floor(Date.now() / 1000) * 1000; // status times are in whole seconds
    await kube.request(
      "PATCH",
      api("storagepolicies", "gold"),
      { spec: { auxCopySchedule: { every: "1m", successfulJobsHistoryLimit: 1 } } },
      "application/merge-patch+json",
    );
    const automatic = async () =>
      ((await kube.get(`${api("auxcopyjobs")}?labelSelector=auxo.dev/trigger%3Dschedule`)).items as Obj[]).map((j) => ({
        name: j.metadata.name as string,
        phase: j.status?.phase as string | undefined,
        owner: j.metadata.ownerReferences?.[0]?.name as string,
      }));
    // Several runs come and go; at most one finished run is kept besides the one that may be running.
    // Runs that continuous copying started in earlier tests do not count: two new ones must come from the schedule.
    const earlier = new Set((await automatic()).map((j) => j.name));
    const names = new Set<string>();
    await waitFor(
      "two automatic aux copies",
      async () => {
        for (const j of await automatic()) if (!earlier.has(j.name)) names.add(j.name);
        return names.size >= 2 ? true : undefined;
      },
      { timeoutMs: 200_000, intervalMs: 300 },
    );
    await kube.request(
      "PATCH",
      api("storagepolicies", "gold"),
      { spec: { auxCopySchedule: { enabled: false } } },
      "application/merge-patch+json",
    );
    const left = await waitFor(
      "the last automatic run to finish",
      async () => {
        const jobs = await automatic();
        return jobs.every((j) => j.phase === "Completed") ? jobs : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 300 },
    );
    expect(left.length).toBeLessThanOrEqual(2);
    expect(left.every((j) => j.owner === "gold" && /^gold-\d{14}$/.test(j.name))).toBe(true);
    const policy = await kube.get(api("storagepolicies", "gold"));
    // The last automatic run started during this test (status keeps when, not just that).
    expect(Date.parse(policy.status.lastAuxCopyTime)).toBeGreaterThanOrEqual(testStart);
  }, 360_000);
  it("queues a run inside an operation window and starts it when the window is gone", async () => {
    const h = new Date().getUTCHours();
    const hhmm = (x: number) => `${String((x + 24) % 24).padStart(2, "0")}:00`;
    const window = { name: "business-hours", operations: ["AuxCopy"], days: [], start: hhmm(h - 1), end: hhmm(h + 2) };
    await kube.request(
      "PATCH",
      api("storagepolicies", "gold"),
      { spec: { timeZone: "UTC", operationWindows: [window] } },
      "application/merge-patch+json",
    );
    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "run-5", { storagePolicy: "gold", copies: ["offsite"] }));
    const queued = await acjStatus("run-5", (s) => s.phase === "Queued", "queued");
    expect(queued.reason).toBe("OperationWindow");
    expect(queued.copies[0].message).toContain('operation window "business-hours" until');
    const pods = await kube.get(`/api/v1/namespaces/${ns}/pods?labelSelector=auxo.dev/auxcopyjob%3Drun-5`);
    expect(pods.items).toHaveLength(0);
    await kube.request("PATCH", api("storagepolicies", "gold"), { spec: { operationWindows: [] } }, "application/merge-patch+json");
    expect((await acjStatus("run-5", (s) => s.phase === "Completed", "to complete")).phase).toBe("Completed");
  }, 300_000);
  it("holds a new copy of a large source until spec.backups says which backups it takes", async () => {
    // A scan on request, so that the primary's status knows its oldest job (the test's scan interval is an hour).
    await kube.request(
      "PATCH",
      api("policycopies", "primary"),
      { metadata: { annotations: { "auxo.dev/rescan-requested": new Date().toISOString() } } },
      "application/merge-patch+json",
    );
    await waitFor(
      "the primary's oldest job in status",
      async () => ((await kube.get(api("policycopies", "primary"))).status?.oldestJob?.startsWith("2025-09") ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 300 },
    );
    await kube.create(api("policycopies"), auxo("PolicyCopy", "late", { storagePolicy: "gold", library: "disk", encryption: enc }));
    const held = await waitFor(
      "late to hold",
      async () => {
        const c = await kube.get(api("policycopies", "late"));
        const ready = (c.status?.conditions ?? []).find((x: Obj) => x.type === "Ready");
        return c.status?.repositoryReady && ready?.reason === "BackupsRequired" ? ready : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 300 },
    );
    expect(held.message).toMatch(/the source holds jobs from \d+ days ago \(more than 14\)/);
    const events = await kube.get(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=late`);
    expect(events.items.map((e: Obj) => e.reason)).toContain("BackupsRequired");
    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "run-6", { storagePolicy: "gold", copies: ["late"] }));
    const waiting = await acjStatus("run-6", (s) => s.phase === "Waiting", "waiting");
    expect(waiting.copies[0].message).toContain("set spec.backups");

    // Only what started today (UTC, the policy's zone since the window test) goes to the late copy.
    const today = new Date().toISOString().slice(0, 10);
    await kube.request(
      "PATCH",
      api("policycopies", "late"),
      { spec: { backups: { mode: "OnAndAfter", date: today } } },
      "application/merge-patch+json",
    );
    const st = await acjStatus("run-6", (s) => s.phase === "Completed", "to complete");
    const late = jobsOn(await hostRepo(ns, "gold", "late"));
    expect(late.length).toBe(st.copies[0].jobsCopied);
    expect(late.filter((j) => j.startsWith("big-") || j.startsWith("restart-"))).toHaveLength(28);
    expect(late.some((j) => j.startsWith("pg-") || j.startsWith("files-"))).toBe(false);
  }, 300_000);
});
