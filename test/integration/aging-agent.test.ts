// The MediaAgent's data aging task (`auxo agent age`) with real restic on real repositories: two years of weekly
// jobs for two subclients, a synchronous copy after this one that has only the first year, retention of 60 days and
// 2 cycles. The run must forget exactly what the retention rules decide (policy/retention.ts, unit-tested on their
// own), hold what the next copy still needs, hold everything while that copy cannot be read, stop at the
// mass-deletion breaker, and leave a repository that passes restic check and restores the newest job byte for byte.
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Repo, ResticEngine } from "../../src/engine/restic.ts";
import { type AgentResult, runTask } from "../../src/mediaagent/agent.ts";
import type { TaskSpec } from "../../src/mediaagent/pod.ts";
import { type CatalogEntry, type JobMetadata, tagsFor } from "../../src/policy/catalog.ts";
import { decideRetention, type DownstreamCopy } from "../../src/policy/retention.ts";
import { planCopy } from "../../src/policy/selection.ts";
import { waitFor } from "../harness/net.ts";
import { tools } from "../harness/tools.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-aging-"));
const engine = new ResticEngine({ binary: tools().restic, cacheDir: path.join(dir, "cache") });
const passwordFile = path.join(dir, "password");
writeFileSync(passwordFile, `pw-${randomBytes(8).toString("hex")}`, { mode: 0o600 });
const repoOf = (name: string): Repo => ({ repository: path.join(dir, name), passwordFile });
const copyA = repoOf("copy-a");
const copyB = repoOf("copy-b");
const access = (r: Repo) => ({ repository: r.repository, passwordFile, options: {} });
const retention = { days: 60, cycles: 2 };
const restic = (...args: string[]) =>
  execFileSync(tools().restic, ["--password-file", passwordFile, "--no-cache", ...args], { encoding: "utf8" });
const jobsOn = async (r: Repo) => (await engine.catalog(r)).map((e) => e.jobId).sort();
let newestData = "";
let newestJob = "";

const task = (over: Partial<TaskSpec> & { maxShare?: number; dryRun?: boolean; unreachable?: boolean } = {}): TaskSpec => ({
  task: "age",
  target: access(copyA),
  downstream: [
    {
      name: "b",
      access: access(copyB),
      rules: { copyType: "Synchronous", backups: { mode: "All" } },
      active: true,
      unreachable: over.unreachable,
    },
  ],
  aging: { retention, timeZone: "Europe/Paris", maxSharePercent: over.maxShare ?? 90, dryRun: over.dryRun },
  timeoutSeconds: 600,
});
const age = async (spec: TaskSpec): Promise<AgentResult> => {
  try {
    return await runTask("age", spec, { TMPDIR: dir }, engine);
  } catch (err) {
    throw new Error(`age task threw: ${(err as Error).message}`, { cause: err });
  }
};

beforeAll(async () => {
  await engine.init(copyA);
  await engine.init(copyB, { chunkerFrom: copyA });
  // Weekly jobs over two years ending last week: app has a full every fourth week and incrementals between; db had
  // four weekly fulls two years ago and nothing since (its newest full is far beyond retention).
  const now = Date.now();
  const data = path.join(dir, "data");
  mkdirSync(data, { recursive: true });
  const jobs: { job: JobMetadata; time: number }[] = [];
  for (let w = 104; w >= 1; w--) {
    const time = now - w * 7 * 86_400_000;
    jobs.push({
      job: { jobId: `app-w${w}`, type: w % 4 === 0 ? "full" : "incremental", status: "completed", client: "web", subclient: "app" },
      time,
    });
    if (w > 100)
      jobs.push({ job: { jobId: `db-w${w}`, type: "full", status: "completed", client: "web", subclient: "db" }, time: time + 3600_000 });
  }
  for (const { job, time } of jobs) {
    const content = randomBytes(2048);
    writeFileSync(path.join(data, `${job.jobId}.bin`), content);
    const stamp = new Date(time).toISOString().slice(0, 19).replace("T", " ");
    restic("-r", copyA.repository, "backup", "-q", "--host", "web", "--time", stamp, ...tagsFor(job).flatMap((t) => ["--tag", t]), data);
    newestJob = job.jobId;
    newestData = createHash("sha256").update(content).digest("hex");
  }
  // The copy after this one holds the first year only: the second year is still To Be Copied there.
  const firstYear = (await engine.catalog(copyA)).filter((e) => Date.parse(e.startTime) < now - 365 * 86_400_000);
  await engine.copyJobs(copyA, copyB, firstYear);
}, 300_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The retention decision for the catalog as it is now, with copy B's needs read from its repository. */
async function expected(): Promise<{ aged: string[]; catalog: CatalogEntry[] }> {
  const catalog = await engine.catalog(copyA);
  const theirs = await engine.catalog(copyB);
  const on = new Set(theirs.map((e) => e.originalId));
  const plan = planCopy(catalog, theirs, { copyType: "Synchronous", backups: { mode: "All" } }, { now: Date.now() + 400 * 86_400_000 });
  const b: DownstreamCopy = {
    name: "b",
    needs: new Set(plan.toCopy.map((e) => e.jobId)),
    has: new Set(catalog.filter((e) => on.has(e.originalId)).map((e) => e.jobId)),
  };
  const d = decideRetention({ catalog, retention, now: Date.now(), timeZone: "Europe/Paris", downstream: [b] });
  return { aged: [...d.aged].sort(), catalog };
}

describe("data aging task", () => {
  it("holds every job while the next copy cannot be read", async () => {
    const before = await jobsOn(copyA);
    const r = await age(task({ unreachable: true }));
    expect(r).toMatchObject({ ok: true, aged: 0, reclaimedBytes: 0 });
    expect((r.byReason as Record<string, number>).DownstreamNeeds).toBeGreaterThan(0);
    expect(await jobsOn(copyA)).toEqual(before);
  });

  it("stops at the mass-deletion breaker and forgets nothing", async () => {
    const before = await jobsOn(copyA);
    const r = await age(task({ maxShare: 5 }));
    expect(r).toMatchObject({ ok: false, kind: "MassDeletion", retryable: false });
    expect(r.message).toMatch(/this run would age \d+ of 108 jobs/);
    expect(await jobsOn(copyA)).toEqual(before);
  });

  it("previews, then ages exactly what retention decides, holds what the next copy needs, and stays restorable", async () => {
    const { aged, catalog } = await expected();
    // Something ages (first-year cycles, which B holds), and the holds bite: the second year's old cycles wait for B,
    // and db's newest full is kept as its last restorable one.
    expect(aged.length).toBeGreaterThan(10);
    expect(aged.filter((j) => Number(j.split("-w")[1]) <= 52)).toEqual([]);
    expect(aged).not.toContain("app-w40");
    expect(aged).not.toContain("db-w101");

    const preview = await age(task({ dryRun: true }));
    expect(preview).toMatchObject({ ok: true, dryRun: true, aged: aged.length });
    expect(await jobsOn(copyA)).toEqual(catalog.map((e) => e.jobId).sort());

    // A MediaAgent killed mid-backup left its lock behind: the run clears stale locks before its prune.
    const killed = spawn(tools().restic, ["-r", copyA.repository, "--password-file", passwordFile, "--no-cache", "backup", "--stdin"], {
      stdio: ["pipe", "ignore", "ignore"],
    });
    killed.stdin.on("error", () => {}); // the pipe breaks when it is killed
    killed.stdin.write(randomBytes(1 << 20));
    await waitFor("the killed backup's lock", async () => ((await engine.locks(copyA)).length ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    killed.kill("SIGKILL");
    await new Promise((r) => killed.once("exit", r));
    expect((await engine.locks(copyA)).length).toBe(1);

    const storedBefore = await engine.storedBytes(copyA);
    const r = await age({ ...task(), locks: {} });
    expect(r).toMatchObject({ ok: true, aged: aged.length });
    expect(r.reclaimedBytes).toBeGreaterThan(0);
    expect(r.storedBytes).toBe(storedBefore - (r.reclaimedBytes as number));
    expect(await engine.locks(copyA)).toEqual([]);
    const left = await jobsOn(copyA);
    expect(left).toEqual(
      catalog
        .map((e) => e.jobId)
        .filter((j) => !aged.includes(j))
        .sort(),
    );
    // B still has what it had: aging one copy never touches another.
    expect((await jobsOn(copyB)).length).toBeGreaterThan(40);

    restic("-r", copyA.repository, "check", "--read-data");
    const out = path.join(dir, "restore");
    const snap = (await engine.catalog(copyA)).find((e) => e.jobId === newestJob) as CatalogEntry;
    restic("-r", copyA.repository, "restore", snap.snapshotId, "--target", out);
    const file = path.join(out, dir, "data", `${newestJob}.bin`);
    expect(createHash("sha256").update(readFileSync(file)).digest("hex")).toBe(newestData);

    // A second run the same day finds nothing more to age.
    expect(await age(task())).toMatchObject({ ok: true, aged: 0, reclaimedBytes: 0 });
  });
});
