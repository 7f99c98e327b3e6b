// Data verification end to end through the real control plane (issue 17): the operator's dataverification
// controller, MediaAgent `verify` pods run by the node runner, real restic repositories on a filesystem library.
// A deliberately damaged pack makes its job Bad on that copy; an aux copy that skips failed jobs leaves it out; a
// Recopy from the primary salvages the pack and copies the job again, and the verification after that copy passes;
// verification and data aging's prune wait for each other; a scheduled run comes on time.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerControllers } from "../../src/controllers/index.ts";
import { type CatalogEntry, type JobMetadata, tagsFor, toCatalogEntry } from "../../src/policy/catalog.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import { admin, freshNamespace, hostPid, resticAsAgent, world, waitForStatus } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let mgr: Manager;
const scratch = mkdtempSync(path.join(os.tmpdir(), "auxo-verification-test-"));
const password = "verification-repository-passphrase";
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const enc = { passwordSecret: { name: "repo-password" } };
const restic = resticAsAgent(scratch, password);

let claimDir = "";
const repoOf = (copy: string) => path.join(claimDir, ns, "gold", copy);
const catalogOf = (copy: string): CatalogEntry[] =>
  (JSON.parse(restic(repoOf(copy), {}, "snapshots", "--json")) as Obj[])
    .map((s) => toCatalogEntry(s as never))
    .sort((a, b) => a.startTime.localeCompare(b.startTime));
const jobIds = (copy: string) => catalogOf(copy).map((e) => e.jobId);

/** A job on the primary: one file of its own in a folder of its own, so no other job shares its data. */
let fed = 0;
function feed(size = 64 << 10): string {
  const job: JobMetadata = { jobId: `j${++fed}`, type: "full", status: "completed", client: "web", subclient: "app" };
  const dir = path.join(scratch, "data", job.jobId);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "file.bin"), randomBytes(size));
  execFileSync("chown", ["-R", "65532:65532", path.join(scratch, "data")]);
  restic(repoOf("primary"), {}, "backup", "-q", "--host", "web", ...tagsFor(job).flatMap((t) => ["--tag", t]), dir);
  return job.jobId;
}

/**
 * Flips a byte inside the first data blob of a job's file on a copy, found through restic's own structures: the
 * snapshot's tree down to the file, its first content blob, and that blob's pack and offset in the index.
 */
function damage(copy: string, jobId: string): string {
  const repo = repoOf(copy);
  const snap = catalogOf(copy).find((e) => e.jobId === jobId) as CatalogEntry;
  let tree = (JSON.parse(restic(repo, {}, "cat", "snapshot", snap.snapshotId)) as { tree: string }).tree;
  const parts = [...path.join(scratch, "data", jobId).split("/").filter(Boolean), "file.bin"];
  let blob = "";
  for (const [i, name] of parts.entries()) {
    const nodes = (JSON.parse(restic(repo, {}, "cat", "blob", tree)) as { nodes: { name: string; subtree?: string; content?: string[] }[] })
      .nodes;
    const node = nodes.find((n) => n.name === name);
    if (!node) throw new Error(`${name} is not in tree ${tree}`);
    if (i === parts.length - 1) blob = node.content?.[0] ?? "";
    else tree = node.subtree ?? "";
  }
  for (const index of restic(repo, {}, "list", "index").trim().split("\n")) {
    const idx = JSON.parse(restic(repo, {}, "cat", "index", index)) as { packs: { id: string; blobs: { id: string; offset: number }[] }[] };
    for (const pack of idx.packs) {
      const b = pack.blobs.find((x) => x.id === blob);
      if (!b) continue;
      const file = path.join(repo, "data", pack.id.slice(0, 2), pack.id);
      execFileSync("chmod", ["u+w", file]);
      const fd = openSync(file, "r+");
      const byte = Buffer.alloc(1);
      readSync(fd, byte, 0, 1, b.offset + 40);
      byte[0] = (byte[0] as number) ^ 0xff;
      writeSync(fd, byte, 0, 1, b.offset + 40);
      closeSync(fd);
      return pack.id;
    }
  }
  throw new Error(`blob ${blob} of ${jobId} is in no index`);
}

async function copyStatus(name: string, check: (s: Obj) => boolean, what: string, timeoutMs = 120_000): Promise<Obj> {
  return await waitForStatus(kube, api("policycopies", name), `${name} ${what}`, check, {
    timeoutMs,
    intervalMs: 200,
    show: (s) => ({ dataVerification: s?.dataVerification, verification: s?.verification, jobs: s?.jobs }),
  });
}

/** A verification run of `copy` after run `runs` has ended. */
const runEnded = (copy: string, runs: number) =>
  copyStatus(
    copy,
    (s) => (s.dataVerification?.runs ?? 0) > runs && s.dataVerification.phase === "Idle" && !!s.dataVerification.lastRun,
    "verification run to end",
  );
const runsOf = async (copy: string): Promise<number> => (await kube.get(api("policycopies", copy))).status?.dataVerification?.runs ?? 0;

async function auxCopy(name: string, spec: Obj): Promise<Obj> {
  await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", name, { storagePolicy: "gold", ...spec }));
  let st: Obj | undefined;
  await waitFor(
    `aux copy ${name}`,
    async () => {
      st = (await kube.get(api("auxcopyjobs", name))).status;
      return ["Completed", "CompletedWithErrors", "Failed", "Killed"].includes(st?.phase) ? true : undefined;
    },
    { timeoutMs: 180_000, intervalMs: 300 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; status: ${JSON.stringify(st)}`);
  });
  return st as Obj;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The first pod of a run after `after` (its name prefix given), once it runs: polled every 50 ms, so it is caught at
 * work. Any later run will do: a scan that sees a newer job may start one more run before the one the test asked for.
 */
async function runningPod(prefix: string, after: number): Promise<Obj> {
  return await waitFor(
    `a pod ${prefix}<n> with n > ${after} to run`,
    async () => {
      const pods = ((await kube.get(`/api/v1/namespaces/${ns}/pods`)).items as Obj[])
        .filter((p) => p.metadata.name.startsWith(prefix) && Number(p.metadata.name.slice(prefix.length)) > after)
        .sort((a, b) => Number(a.metadata.name.slice(prefix.length)) - Number(b.metadata.name.slice(prefix.length)));
      return pods.find((p) => p.status?.phase === "Running" && p.status.containerStatuses?.[0]?.containerID);
    },
    { timeoutMs: 60_000, intervalMs: 50 },
  );
}

/** Stops a pod's processes where they are (SIGSTOP to the container's process group); returns the group's pid. */
function freeze(pod: Obj): number {
  const pid = hostPid(pod);
  process.kill(-pid, "SIGSTOP");
  return pid;
}

/** Live MediaAgent pods of a task in the namespace. */
async function activePods(task: string): Promise<string[]> {
  const pods = (await kube.get(`/api/v1/namespaces/${ns}/pods?labelSelector=auxo.dev/task=${task}`)).items as Obj[];
  return pods.filter((p) => ["Pending", "Running", undefined].includes(p.status?.phase)).map((p) => p.metadata.name);
}

const request = (copy: string, annotation: string) =>
  kube.patch(api("policycopies", copy), { metadata: { annotations: { [annotation]: new Date().toISOString() } } });

beforeAll(async () => {
  execFileSync("chown", ["65532:65532", scratch]);
  kube = admin();
  await installCrds(kube);
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "verify"));
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
  await kube.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    metadata: { name: "disk" },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "2Gi" } } },
  });
  mgr = testManager(world().kubeconfig);
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    probeTimeoutSeconds: 10,
    scanIntervalSeconds: 3600,
    retryBaseMs: 1000,
    autoAuxCopy: false,
    dataAging: true,
  });
  await mgr.start();
  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { persistentVolumeClaim: { claimName: "disk" } } }));
  // Data aging's daily run 12 hours away: runs here are asked for.
  const at = new Date(Date.now() + 12 * 3600_000).toISOString().slice(11, 16);
  await kube.create(api("storagepolicies"), auxo("StoragePolicy", "gold", { primaryCopy: "primary", dataAging: { at } }));
  await kube.create(api("policycopies"), auxo("PolicyCopy", "primary", { storagePolicy: "gold", library: "disk", encryption: enc }));
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "offsite", {
      storagePolicy: "gold",
      library: "disk",
      encryption: enc,
      // Verified on request first; afterCopy and the schedule are turned on as the test goes.
      dataVerification: { enabled: true, schedule: { suspend: true } },
    }),
  );
  for (const c of ["primary", "offsite"]) await copyStatus(c, (s) => s.repositoryReady === true, "initialised");
  const pvc = await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/disk`);
  claimDir = path.join(world().controlPlaneDir, "node", "claims", ns, `disk-${pvc.metadata.uid}`);
  for (let i = 0; i < 4; i++) feed(i === 1 ? 2 << 20 : 64 << 10);
  expect((await auxCopy("fill", {})).phase).toBe("Completed");
  expect(jobIds("offsite")).toEqual(["j1", "j2", "j3", "j4"]);
}, 300_000);

afterAll(async () => {
  await mgr?.stop();
  await removeNs?.();
  kube?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe("data verification", () => {
  it("finds a damaged pack: the job is Bad on that copy (status, condition, event), nothing is deleted", async () => {
    damage("offsite", "j2");
    const before = catalogOf("offsite").map((e) => e.snapshotId);
    await request("offsite", "auxo.dev/verification-requested");
    const st = await runEnded("offsite", 0);
    expect(st.dataVerification.lastRun).toMatchObject({
      run: 1,
      trigger: "Request",
      jobs: 4,
      verified: 3,
      failed: 1,
      failedJobs: ["j2"],
      result: "CompletedWithFailures",
    });
    expect(st.conditions.find((c: Obj) => c.type === "DataVerification")).toMatchObject({
      status: "False",
      reason: "JobsFailedVerification",
    });
    // The scan after the run counts it: Bad, not Available.
    const scanned = await copyStatus("offsite", (s) => s.verification?.failed === 1, "Bad job counted");
    expect(scanned.jobs).toMatchObject({ available: 3, bad: 1 });
    expect(scanned.verification).toMatchObject({ verified: 3, failed: 1, failedJobs: ["j2"] });
    const events = await kube.get(
      `/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=offsite,reason=JobsFailedVerification`,
    );
    expect(events.items[0]?.message).toContain("j2");
    expect(catalogOf("offsite").map((e) => e.snapshotId)).toEqual(before);
    const metrics = await mgr.metrics.registry.metrics();
    expect(metrics).toMatch(
      new RegExp(`auxo_verification_jobs_total\\{namespace="${ns}",policy="gold",copy="offsite",result="failed"\\} 1`),
    );
  });

  it("an aux copy that skips jobs that failed verification leaves the Bad job out", async () => {
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", "vault", { storagePolicy: "gold", library: "disk", sourceCopy: "offsite", encryption: enc }),
    );
    await copyStatus("vault", (s) => s.repositoryReady === true, "initialised");
    const st = await auxCopy("to-vault", { copies: ["vault"], skipVerificationFailedJobs: true });
    expect(st.phase).toBe("Completed");
    expect(jobIds("vault")).toEqual(["j1", "j3", "j4"]);
  });

  it("verifies the jobs that land after a copy; a Recopy from the primary repairs the Bad job, and it passes", async () => {
    await kube.patch(api("policycopies", "offsite"), {
      spec: { dataVerification: { afterCopy: true }, jobOverrides: [{ jobId: "j2", action: "Recopy", at: new Date().toISOString() }] },
    });
    const runs = await runsOf("offsite");
    feed();
    const st = await auxCopy("recopy", { copies: ["offsite"] });
    expect(st.phase).toBe("Completed");
    // The copy salvaged the damaged pack before it copied the job again.
    expect(st.copies.find((p: Obj) => p.name === "offsite")).toMatchObject({ repairedPacks: 1 });
    // The runs after the copy read only what landed: the new job and the recopied one, and both pass.
    const afterCopy = (s: Obj) => (s.dataVerification?.history ?? []).filter((h: Obj) => h.run > runs && h.trigger === "AfterCopy");
    const after = await copyStatus(
      "offsite",
      (s) => s.dataVerification?.phase === "Idle" && afterCopy(s).reduce((n: number, h: Obj) => n + h.jobs, 0) >= 2,
      "verification after the copy",
    );
    const landed = afterCopy(after);
    expect(landed.reduce((n: number, h: Obj) => n + h.verified, 0)).toBe(2);
    expect(landed.reduce((n: number, h: Obj) => n + h.failed, 0)).toBe(0);
    const scanned = await copyStatus("offsite", (s) => s.verification?.verified === 5, "all jobs verified");
    expect(scanned.verification.failed ?? 0).toBe(0);
    expect(scanned.jobs).toMatchObject({ available: 5 });
    expect(scanned.conditions.find((c: Obj) => c.type === "DataVerification")).toMatchObject({ status: "True" });
    expect(jobIds("offsite")).toEqual(["j1", "j2", "j3", "j4", "j5"]);
    // Plain restic agrees: every pack reads back.
    restic(repoOf("offsite"), {}, "check", "--read-data");
  });

  it("verification waits for a running prune, and data aging waits for a running verification", async () => {
    // Each side's pod is frozen (SIGSTOP to its process group) while it works, so that the other side is seen waiting
    // for as long as it holds the repository, however fast the machine is.
    // Every run after the previous test's copy has ended first (its scan's newer job may start one more).
    const st0 = await copyStatus(
      "offsite",
      (s) => s.dataVerification?.phase === "Idle" && s.dataVerification.newestJobSeen === s.newestJob && s.dataAging?.phase !== "Running",
      "runs after the previous copy to end",
    );
    const vRuns = st0.dataVerification?.runs ?? 0;
    const aRuns = st0.dataAging?.runs ?? 0;
    // A verification after a copy (five new jobs to read), and data aging asked for while it runs.
    for (let i = 0; i < 5; i++) feed(16 << 20);
    await auxCopy("more", { copies: ["offsite"] });
    const verifyPod = await runningPod("offsite-verify-", vRuns);
    let thawed = false;
    const thaw = (pid: number) => {
      if (!thawed) process.kill(-pid, "SIGCONT");
      thawed = true;
    };
    const vPid = freeze(verifyPod);
    try {
      await request("offsite", "auxo.dev/data-aging-requested");
      const waits = await copyStatus("offsite", (s) => s.dataAging?.phase === "Waiting", "data aging to wait");
      expect(waits.dataAging.message).toContain(`waiting for pod ${verifyPod.metadata.name} to finish with the repository`);
      await sleep(3000);
      // No data aging run of this copy started (previews only read, and are not runs).
      expect((await activePods("age")).filter((n) => n.startsWith("offsite-age-") && !n.includes("preview"))).toEqual([]);
    } finally {
      thaw(vPid);
    }
    await runEnded("offsite", vRuns);
    const a = await copyStatus(
      "offsite",
      (s) => (s.dataAging?.runs ?? 0) > aRuns && s.dataAging.phase === "Idle" && !!s.dataAging.lastRunTime,
      "data aging run to end",
    );
    // (That it started only after the verification is what the frozen pod showed: no age pod while it lived.)

    // The other way round: data aging's pod holds the repository, and a verification asked for meanwhile waits.
    // (First every run after the copy has ended: the scan's newer job may start one more.)
    const settled = await copyStatus(
      "offsite",
      (s) => s.dataVerification?.phase === "Idle" && s.dataVerification.newestJobSeen === s.newestJob && s.dataAging?.phase === "Idle",
      "runs after the copy to end",
    );
    expect(await activePods("verify")).toEqual([]);
    const vRuns2 = settled.dataVerification.runs;
    const aRuns2 = a.dataAging.runs;
    await request("offsite", "auxo.dev/data-aging-requested");
    const agePod = await runningPod("offsite-age-", aRuns2);
    thawed = false;
    const aPid = freeze(agePod);
    try {
      await request("offsite", "auxo.dev/verification-requested");
      const waits = await copyStatus(
        "offsite",
        (s) => /prunes the repository/.test(s.dataVerification?.message ?? ""),
        "verification to wait",
      );
      expect(waits.dataVerification.message).toContain(`data aging pod ${agePod.metadata.name} prunes the repository`);
      await sleep(3000);
      expect((await activePods("verify")).filter((n) => n.startsWith("offsite-verify-"))).toEqual([]);
    } finally {
      thaw(aPid);
    }
    const asked = (s: Obj) => (s.dataVerification?.history ?? []).find((h: Obj) => h.run > vRuns2 && h.trigger === "Request");
    const v2 = await copyStatus(
      "offsite",
      (s) => !!asked(s) && s.dataAging?.runs === aRuns2 + 1 && !!s.dataAging.lastRunTime,
      "the asked-for verification to end",
    );
    // It started only once the prune's pod had ended.
    expect(Date.parse(asked(v2).startTime)).toBeGreaterThanOrEqual(Math.floor(Date.parse(v2.dataAging.lastRunTime) / 1000) * 1000);
  }, 240_000);

  it("runs on its schedule", async () => {
    const runs = await runsOf("offsite");
    await kube.patch(api("policycopies", "offsite"), { spec: { dataVerification: { schedule: { every: "1m", suspend: false } } } });
    const st = await copyStatus(
      "offsite",
      (s) => (s.dataVerification?.history ?? []).some((h: Obj) => h.trigger === "Schedule" && h.run > runs),
      "a scheduled run",
      150_000,
    );
    const next = Date.parse(st.dataVerification.nextRunTime);
    expect(next - Date.parse(st.dataVerification.lastScheduledTime)).toBe(60_000);
  }, 180_000);
});
