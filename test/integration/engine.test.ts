// The restic engine with real restic, on a filesystem library and on the real S3 server: init (deduplicating
// secondaries take their source's chunker parameters), a catalog of 50 jobs of mixed types and statuses, a copy of
// a selection and its idempotent repeat, verification that finds a corrupted pack, the documented errors, a killed
// run's lock cleared by rule, and a restore from the secondary with the plain restic CLI.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineError } from "../../src/engine/errors.ts";
import { type Repo, ResticEngine } from "../../src/engine/restic.ts";
import { type JobMetadata, tagsFor } from "../../src/policy/catalog.ts";
import { world } from "../harness/testing.ts";
import { hashTree } from "../harness/checks.ts";
import { tools } from "../harness/tools.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-engine-"));
const engine = new ResticEngine({ binary: tools().restic, cacheDir: path.join(dir, "cache") });
const password = `pw-${randomBytes(8).toString("hex")}`;
const passwordFile = path.join(dir, "password");
writeFileSync(passwordFile, password, { mode: 0o600 });
const s3 = world().s3;
const s3env = { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey, AWS_DEFAULT_REGION: s3.region };
const fsRepo = (name: string): Repo => ({ repository: path.join(dir, name), passwordFile });
const s3Repo = (prefix: string): Repo => ({ repository: `s3:${s3.endpoint}/engine/${prefix}`, passwordFile, env: s3env });

const primary = fsRepo("primary");
const offsite = s3Repo("offsite");
const data = path.join(dir, "data");

/** A backup producer (here the restic CLI, as K8up or a script would be). */
function backup(repo: Repo, job: JobMetadata | undefined, host = "db-1"): void {
  const tags = job ? tagsFor(job).flatMap((t) => ["--tag", t]) : [];
  execFileSync(
    tools().restic,
    ["-r", repo.repository, "--password-file", passwordFile, "--no-cache", "backup", "--host", host, "--json", "-q", ...tags, data],
    {
      env: { ...process.env, ...repo.env },
      stdio: "ignore",
    },
  );
}

beforeAll(async () => {
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
  });
  await client.send(new CreateBucketCommand({ Bucket: "engine" }));
  client.destroy();
  mkdirSync(path.join(data, "db"), { recursive: true });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("restic engine", () => {
  it("initialises a primary on a filesystem library and catalogs 50 jobs of mixed types and statuses", async () => {
    await engine.init(primary);
    const types = ["full", "incremental", "incremental", "differential", "incremental", "synthfull", "log"] as const;
    const statuses = ["completed", "completed", "completed", "completedWithErrors", "failed", "killed"] as const;
    for (let i = 0; i < 45; i++) {
      writeFileSync(path.join(data, "db", `rows-${i % 7}.dat`), randomBytes(2048));
      backup(primary, {
        jobId: `job-${String(i).padStart(3, "0")}`,
        type: types[i % types.length] as never,
        status: statuses[i % statuses.length] as never,
        client: "db-1",
        subclient: "postgres",
      });
    }
    for (let i = 0; i < 5; i++) backup(primary, undefined, "legacy-host"); // restic CLI, no Auxo tags
    const catalog = await engine.catalog(primary);
    expect(catalog).toHaveLength(50);
    const count = (f: (e: (typeof catalog)[number]) => boolean) => catalog.filter(f).length;
    expect(count((e) => e.type === "full")).toBe(7 + 5);
    expect(count((e) => e.type === "incremental")).toBe(20);
    expect(count((e) => e.status === "failed")).toBe(7);
    expect(count((e) => e.status === "completedWithErrors")).toBe(7);
    const foreign = catalog.filter((e) => !e.tagged);
    expect(foreign).toHaveLength(5);
    expect(foreign[0]).toMatchObject({ type: "full", status: "completed", client: "legacy-host", subclient: data });
    expect(catalog.find((e) => e.jobId === "job-000")).toMatchObject({
      type: "full",
      status: "completed",
      client: "db-1",
      subclient: "postgres",
    });
  }, 180_000);

  it("initialises a deduplicating secondary on S3 with the source's chunker parameters", async () => {
    await engine.init(offsite, { chunkerFrom: primary });
    const cfg = (repo: Repo) =>
      JSON.parse(
        execFileSync(tools().restic, ["-r", repo.repository, "--password-file", passwordFile, "--no-cache", "cat", "config"], {
          env: { ...process.env, ...repo.env },
          encoding: "utf8",
        }),
      );
    expect(cfg(offsite).chunker_polynomial).toBe(cfg(primary).chunker_polynomial);
    await expect(engine.init(offsite)).rejects.toMatchObject({ kind: "RepositoryExists" });
  });

  it("copies a selection, then repeats it as a no-op", async () => {
    const catalog = await engine.catalog(primary);
    const selection = catalog.filter((e) => e.type === "full").map((e) => e.snapshotId);
    const first = await engine.copy(primary, offsite, selection);
    expect(first.copied.sort()).toEqual([...selection].sort());
    expect(first.skipped).toEqual([]);
    const onOffsite = await engine.catalog(offsite);
    expect(onOffsite.map((e) => e.jobId).sort()).toEqual(
      catalog
        .filter((e) => e.type === "full")
        .map((e) => e.jobId)
        .sort(),
    );
    const again = await engine.copy(primary, offsite, selection);
    expect(again.copied).toEqual([]);
    expect(again.skipped.sort()).toEqual([...selection].sort());
    expect(await engine.catalog(offsite)).toHaveLength(selection.length);
  }, 120_000);

  it("restores a job from the secondary with the plain restic CLI, byte for byte", async () => {
    writeFileSync(path.join(data, "db", "final.dat"), randomBytes(300_000));
    backup(primary, { jobId: "job-final", type: "full", status: "completed", client: "db-1", subclient: "postgres" });
    const original = hashTree(data);
    const snap = (await engine.catalog(primary)).find((e) => e.jobId === "job-final") as { snapshotId: string };
    await engine.copy(primary, offsite, [snap.snapshotId]);
    const copied = (await engine.catalog(offsite)).find((e) => e.jobId === "job-final") as { snapshotId: string };
    const target = path.join(dir, "restored");
    execFileSync(
      tools().restic,
      ["-r", offsite.repository, "--password-file", passwordFile, "--no-cache", "restore", copied.snapshotId, "--target", target],
      {
        env: { ...process.env, ...s3env },
        stdio: "ignore",
      },
    );
    expect(hashTree(path.join(target, data))).toEqual(original);
  }, 120_000);

  it("finds a deliberately corrupted pack when verifying a job", async () => {
    const repo = fsRepo("corrupt");
    await engine.init(repo);
    backup(repo, { jobId: "victim", type: "full", status: "completed", client: "db-1", subclient: "postgres" });
    const [job] = await engine.catalog(repo);
    await engine.verify(repo, (job as { snapshotId: string }).snapshotId); // intact: passes
    // Flip bytes inside every data pack.
    const packsDir = path.join(repo.repository, "data");
    for (const sub of readdirSync(packsDir)) {
      for (const f of readdirSync(path.join(packsDir, sub))) {
        const p = path.join(packsDir, sub, f);
        const buf = readFileSync(p);
        for (let i = 64; i < buf.length - 64; i += 97) buf[i] = (buf[i] as number) ^ 0xff;
        writeFileSync(p, buf);
      }
    }
    const err = await engine.verify(repo, (job as { snapshotId: string }).snapshotId).catch((e) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ kind: "CorruptData", retryable: false });
  }, 60_000);

  it("names a wrong password, and never prints it", async () => {
    const wrongFile = path.join(dir, "wrong");
    writeFileSync(wrongFile, "not-the-password");
    const err = await engine.snapshots({ ...primary, passwordFile: wrongFile }).catch((e) => e);
    expect(err).toMatchObject({ kind: "WrongPassword", retryable: false, exitCode: 12 });
    expect(err.message).toContain("the repository password is wrong");
    expect(err.message).not.toContain("not-the-password");
    const missing = await engine.snapshots(fsRepo("nowhere")).catch((e) => e);
    expect(missing).toMatchObject({ kind: "RepositoryNotFound", retryable: false });
  });

  it("names an unreachable S3 endpoint within its deadline, without the credentials", async () => {
    const started = Date.now();
    const err = await engine.probe({ repository: "s3:http://127.0.0.1:1/engine/x", passwordFile, env: s3env }, 15_000).catch((e) => e);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(err).toMatchObject({ kind: "Unreachable", retryable: true });
    expect(err.message).toContain("connection refused");
    expect(err.message).not.toContain(s3.secretKey);
  });

  it("clears the lock a killed copy left, by restic's stale-lock rule, and then prunes", async () => {
    const repo = fsRepo("killed");
    await engine.init(repo);
    writeFileSync(path.join(data, "big.dat"), randomBytes(64 * 1024 * 1024));
    // A run killed mid-way (as when a MediaAgent pod is deleted): its lock stays behind.
    const child = spawn(tools().restic, ["-r", repo.repository, "--password-file", passwordFile, "--no-cache", "backup", data], {
      stdio: "ignore",
    });
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        const locks = path.join(repo.repository, "locks");
        // A finished lock file has a 64-hex-digit name (restic writes a temporary file, then renames it).
        if (readdirSync(locks).some((f) => /^[0-9a-f]{64}$/.test(f))) {
          clearInterval(t);
          child.kill("SIGKILL");
          child.on("exit", () => resolve());
        }
      }, 20);
    });
    rmSync(path.join(data, "big.dat"));
    expect(await engine.locks(repo)).toHaveLength(1);
    const blocked = await engine.prune(repo).catch((e) => e);
    expect(blocked).toMatchObject({ kind: "LockHeld", retryable: true });
    await engine.unlock(repo); // the lock's process is gone on this host: stale
    expect(await engine.locks(repo)).toHaveLength(0);
    await engine.prune(repo);
    await engine.check(repo);
  }, 120_000);
});
