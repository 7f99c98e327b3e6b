// The MediaAgent's safety rules (issue 12, items 1, 2, 5 and 10) with real restic on real repositories: a lock that
// another process holds is never removed (the task fails LockHeld naming the holder, and succeeds once it ends); a
// lock of an Auxo pod the operator knows has ended is removed, and only that one; a repository whose ID is not the
// recorded one is never written or aged; data aging refuses when its clock is far from the operator's decision time;
// init and scan report the repository ID; an S3 library probe proves bucket and credentials.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Repo, ResticEngine } from "../../src/engine/restic.ts";
import { type AgentResult, runTask } from "../../src/mediaagent/agent.ts";
import type { AgentTask, TaskSpec } from "../../src/mediaagent/pod.ts";
import { tagsFor } from "../../src/policy/catalog.ts";
import { waitFor } from "../harness/net.ts";
import { createBucket, s3Client, world } from "../harness/testing.ts";
import { engineFailure } from "../harness/checks.ts";
import { tools } from "../harness/tools.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-agent-safety-"));
const engine = new ResticEngine({ binary: tools().restic, cacheDir: path.join(dir, "cache") });
const passwordFile = path.join(dir, "password");
writeFileSync(passwordFile, `pw-${randomBytes(8).toString("hex")}`, { mode: 0o600 });
const repoOf = (name: string): Repo => ({ repository: path.join(dir, name), passwordFile });
const source = repoOf("primary");
const ids: Record<string, string> = {};
const access = (r: Repo, repositoryId?: string) => ({ repository: r.repository, passwordFile, options: {}, repositoryId });
const restic = (...args: string[]) =>
  execFileSync(tools().restic, ["--password-file", passwordFile, "--no-cache", ...args], { encoding: "utf8" });
const jobsOn = async (r: Repo) => (await engine.catalog(r)).map((e) => e.jobId).sort();
const lockFiles = (r: Repo) => readdirSync(path.join(r.repository, "locks")).filter((f) => /^[0-9a-f]{64}$/.test(f));
const JOBS = ["j1-full", "j2-incr", "j3-full", "j4-incr", "j5-full"];
const holders: ChildProcess[] = [];

const run = (task: AgentTask, spec: Omit<TaskSpec, "task">, env: Record<string, string> = {}): Promise<AgentResult> =>
  runTask(task, { task, timeoutSeconds: 300, ...spec }, { TMPDIR: dir, ...env }, engine);
const copyTask = (target: Repo, deadHosts: string[]) =>
  run("copy", {
    source: access(source, ids.primary),
    target: access(target, ids[path.basename(target.repository)]),
    plan: { rules: { copyType: "Synchronous", backups: { mode: "All" } } },
    locks: { deadHosts },
  });

/**
 * A restic process outside Auxo holding the exclusive lock of `repo`: `restic key passwd` takes it, then waits to
 * read the new password from a FIFO nobody writes (finish() closes the FIFO: restic reads no password, gives up and
 * releases its lock). With `hostname`, restic runs in a UTS namespace of that name (as in a pod, whose hostname is
 * its name).
 */
async function holdExclusiveLock(repo: Repo, hostname?: string): Promise<ChildProcess & { finish: () => Promise<void> }> {
  const before = new Set(lockFiles(repo));
  const fifo = path.join(dir, `fifo-${randomBytes(4).toString("hex")}`);
  execFileSync("mkfifo", [fifo]);
  const args = ["-r", repo.repository, "--password-file", passwordFile, "--no-cache", "key", "passwd", "--new-password-file", fifo];
  const child = hostname
    ? spawn("unshare", ["--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname, tools().restic, ...args], { stdio: "ignore" })
    : spawn(tools().restic, args, { stdio: "ignore" });
  holders.push(child);
  await waitFor("the outside process's lock", () => (lockFiles(repo).some((f) => !before.has(f)) ? true : undefined), {
    timeoutMs: 30_000,
    intervalMs: 50,
  });
  return Object.assign(child, {
    finish: async () => {
      closeSync(openSync(fifo, "w"));
      await ended(child);
    },
  });
}
const ended = (c: ChildProcess) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(undefined) : c.once("exit", r)));

beforeAll(async () => {
  ids.primary = await engine.init(source);
  const data = path.join(dir, "data");
  mkdirSync(data, { recursive: true });
  // Three cycles, 40, 20 and 5 days old: a one-day, one-cycle retention ages the first.
  JOBS.forEach((jobId, i) => {
    writeFileSync(path.join(data, `${jobId}.bin`), randomBytes(256 * 1024));
    const time = new Date(Date.now() - ([40, 39, 20, 19, 5][i] as number) * 86_400_000).toISOString().slice(0, 19).replace("T", " ");
    const tags = tagsFor({
      jobId,
      type: jobId.endsWith("full") ? "full" : "incremental",
      status: "completed",
      client: "web",
      subclient: "app",
    });
    restic("-r", source.repository, "backup", "-q", "--host", "web", "--time", time, ...tags.flatMap((t) => ["--tag", t]), data);
  });
  for (const name of ["copy-a", "copy-b", "copy-c"]) ids[name] = await engine.init(repoOf(name), { chunkerFrom: source });
}, 120_000);

afterAll(async () => {
  for (const c of holders) c.kill("SIGKILL");
  await Promise.all(holders.map(ended));
  rmSync(dir, { recursive: true, force: true });
});

describe("locks", () => {
  it("never removes a lock another process holds: the copy fails LockHeld naming it, then succeeds once it ends", async () => {
    const target = repoOf("copy-a");
    const holder = await holdExclusiveLock(source);
    const held = lockFiles(source);
    const err = await engineFailure(copyTask(target, ["copy-a-run-1-0", "copy-a-run-1-1"]));
    expect(err).toMatchObject({ kind: "LockHeld", retryable: true });
    expect(err.details?.lock).toMatchObject({ host: os.hostname(), pid: holder.pid, user: os.userInfo().username, exclusive: true });
    const lock = err.details?.lock as { ageSeconds: number; createdAt: string };
    expect(lock.ageSeconds).toBeGreaterThanOrEqual(0);
    expect(lock.ageSeconds).toBeLessThan(60);
    expect(Date.parse(lock.createdAt)).toBeLessThanOrEqual(Date.now());
    expect(err.message).toMatch(
      new RegExp(`is locked \\(exclusive\\) by host "${os.hostname()}" pid ${holder.pid} .*since \\S+ \\(\\d+ s ago\\)`),
    );
    // The holder's lock is still there, and nothing was copied.
    expect(lockFiles(source)).toEqual(held);
    expect(await jobsOn(target)).toEqual([]);

    await holder.finish(); // the outside operation ends, and restic removes its lock
    expect(lockFiles(source)).toEqual([]);
    const r = await copyTask(target, ["copy-a-run-1-0", "copy-a-run-1-1"]);
    expect(r).toMatchObject({ ok: true, copied: JOBS.length });
    expect(await jobsOn(target)).toEqual([...JOBS].sort());
  });

  it("removes the lock of an ended Auxo pod, and only when the operator names that pod", async () => {
    const target = repoOf("copy-b");
    // A MediaAgent pod named copy-b-run-3-0 was killed mid-prune: its exclusive lock stays. Its host is not this one,
    // so restic's own stale rule keeps it.
    const pod = await holdExclusiveLock(target, "copy-b-run-3-0");
    pod.kill("SIGKILL");
    await ended(pod);
    const left = lockFiles(target);
    expect(left).toHaveLength(1);

    const err = await engineFailure(copyTask(target, ["copy-b-run-2-0"]));
    expect(err).toMatchObject({ kind: "LockHeld", retryable: true });
    expect(err.details?.lock).toMatchObject({ host: "copy-b-run-3-0", exclusive: true });
    expect(lockFiles(target)).toEqual(left);

    const r = await copyTask(target, ["copy-b-run-2-0", "copy-b-run-3-0"]);
    expect(r).toMatchObject({ ok: true, copied: JOBS.length, locksRemoved: [{ host: "copy-b-run-3-0", id: left[0]?.slice(0, 8) }] });
    expect(lockFiles(target)).toEqual([]);
    expect(await jobsOn(target)).toEqual([...JOBS].sort());
    restic("-r", target.repository, "check");
  });
});

describe("repository identity", () => {
  it("writes nothing to a repository whose ID is not the recorded one", async () => {
    const target = repoOf("copy-c");
    const stranger = "0123456789abcdef".repeat(4);
    const err = await engineFailure(
      run("copy", {
        source: access(source, ids.primary),
        target: { ...access(target, stranger), metadata: { path: `${target.repository}.auxo` } },
        plan: { rules: { copyType: "Synchronous", backups: { mode: "All" } } },
        locks: { deadHosts: [] },
      }),
    );
    expect(err).toMatchObject({ kind: "RepositoryMismatch", retryable: false });
    expect(err.message).toBe(
      `repository at ${target.repository} has ID ${ids["copy-c"]}, the copy recorded ${stranger}: a different repository is at this location; nothing was written`,
    );
    expect(await jobsOn(target)).toEqual([]);
    expect(lockFiles(target)).toEqual([]);
    expect(existsSync(`${target.repository}.auxo`)).toBe(false);

    // The source is checked too: a copy never reads jobs from a stranger into its target.
    const fromStranger = await engineFailure(
      run("copy", {
        source: access(source, stranger),
        target: access(target, ids["copy-c"]),
        plan: { rules: { copyType: "Synchronous", backups: { mode: "All" } } },
      }),
    );
    expect(fromStranger).toMatchObject({ kind: "RepositoryMismatch", retryable: false });
    expect(await jobsOn(target)).toEqual([]);
  });

  it("ages nothing on a repository whose ID is not the recorded one, nor when its clock is off", async () => {
    const before = await jobsOn(source);
    const aging = { retention: { days: 1, cycles: 1 }, timeZone: "UTC", maxSharePercent: 100 };
    // The same decision on a dry run: the first cycle ages.
    const preview = await run("age", { target: access(source, ids.primary), aging: { ...aging, dryRun: true } });
    expect(preview).toMatchObject({ ok: true, aged: 2 });

    const mismatch = await engineFailure(
      run("age", { target: access(source, "f".repeat(64)), aging: { ...aging, at: new Date().toISOString() }, locks: {} }),
    );
    expect(mismatch).toMatchObject({ kind: "RepositoryMismatch", retryable: false });
    const skewed = new Date(Date.now() - 10 * 60_000).toISOString();
    const skew = await engineFailure(run("age", { target: access(source, ids.primary), aging: { ...aging, at: skewed }, locks: {} }));
    expect(skew).toMatchObject({ kind: "ClockSkew", retryable: true });
    expect(skew.message).toContain(`the operator decided at ${skewed}`);
    expect(skew.message).toContain("nothing was forgotten");
    expect(await jobsOn(source)).toEqual(before);
  });

  it("init and scan report the repository ID, also for a repository that was already there", async () => {
    const fresh = repoOf("fresh");
    const created = await run("init", { target: access(fresh) });
    expect(created).toMatchObject({ ok: true, created: true });
    expect(created.id).toMatch(/^[0-9a-f]{64}$/);
    const adopted = await run("init", { target: access(fresh) });
    expect(adopted).toEqual({ ok: true, task: "init", created: false, id: created.id });
    expect(JSON.parse(restic("-r", fresh.repository, "cat", "config")).id).toBe(created.id);
    expect(await run("scan", { target: access(source) })).toMatchObject({ ok: true, repositoryId: ids.primary, jobs: JOBS.length });
  });
});

describe("S3 library probe", () => {
  const bucket = "agent-probe";
  const s3 = () => world().s3;
  const probe = (repository: string, secret = s3().secretKey) =>
    run(
      "probe",
      { target: { repository, options: { "s3.region": s3().region } }, timeoutSeconds: 60 },
      { AWS_ACCESS_KEY_ID: s3().accessKey, AWS_SECRET_ACCESS_KEY: secret },
    );

  beforeAll(async () => {
    await createBucket(bucket);
  });

  it("proves bucket, prefix and credentials by writing a marker, and names what is wrong", async () => {
    const ok = await probe(`s3:${s3().endpoint}/${bucket}/team-a/libs`);
    expect(ok).toMatchObject({ ok: true, message: `wrote and deleted a marker in bucket "${bucket}" under "team-a/libs/"` });
    const client = s3Client();
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "team-a/" }));
    client.destroy();
    expect(listed.Contents ?? []).toEqual([]);

    const missing = await engineFailure(probe(`s3:${s3().endpoint}/no-such-bucket-${randomBytes(3).toString("hex")}/x`));
    expect(missing.message).toMatch(/^bucket "no-such-bucket-[0-9a-f]+" does not exist at http:\/\/127\.0\.0\.1:\d+$/);
    const wrongSecret = await engineFailure(probe(`s3:${s3().endpoint}/${bucket}/x`, "not-the-secret-key"));
    expect(wrongSecret.message).toMatch(/secret access key does not match|access denied/);
    expect(wrongSecret.message).not.toContain("not-the-secret-key");
    const refused = await engineFailure(probe(`s3:http://127.0.0.1:1/${bucket}/x`));
    expect(refused).toMatchObject({ kind: "Unreachable", retryable: true });
  });
});
