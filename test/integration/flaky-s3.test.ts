// Errors classified by their cause (issue 12, item 4), with the MediaAgent's verify and copy tasks on a repository
// of the world's S3 server reached through a flaky TCP relay this file owns: it drops a share of new connections
// and cuts each connection after a random number of bytes, so restic retries its reads of data packs
// ("Load(<data/…>) returned error, retrying…"). Those retries are never corruption: a run the deadline stops is
// Unreachable (retried) and marks no job as failed verification; with a moderate share of failures a copy completes
// with every job. A pack that really is damaged (bytes overwritten on a filesystem repository) is still CorruptData.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeSync, closeSync, writeFileSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Repo, ResticEngine } from "../../src/engine/restic.ts";
import { type AgentResult, runTask } from "../../src/mediaagent/agent.ts";
import { metadataStore } from "../../src/mediaagent/metadata.ts";
import type { AgentTask, TaskSpec } from "../../src/mediaagent/pod.ts";
import { tagsFor } from "../../src/policy/catalog.ts";
import { createBucket, world } from "../harness/testing.ts";
import { engineFailure } from "../harness/checks.ts";
import { tools } from "../harness/tools.ts";

/** A relay to the S3 server that drops `dropShare` of new connections and cuts each after about `bytesPerConnection`. */
class FlakyRelay {
  port = 0;
  dropped = 0;
  cut = 0;
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly targetPort: number;
  private readonly dropShare: number;
  private readonly bytesPerConnection: number;
  constructor(targetPort: number, dropShare: number, bytesPerConnection: number) {
    this.targetPort = targetPort;
    this.dropShare = dropShare;
    this.bytesPerConnection = bytesPerConnection;
  }

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      client.on("error", () => {});
      if (Math.random() < this.dropShare) {
        this.dropped++;
        client.destroy();
        return;
      }
      const upstream = net.connect(this.targetPort, "127.0.0.1");
      this.sockets.add(client).add(upstream);
      let left = this.bytesPerConnection * (0.5 + Math.random());
      upstream.on("error", () => client.destroy());
      client.on("close", () => {
        this.sockets.delete(client);
        upstream.destroy();
      });
      upstream.on("close", () => {
        this.sockets.delete(upstream);
        client.destroy();
      });
      client.pipe(upstream);
      upstream.on("data", (b: Buffer) => {
        left -= b.length;
        client.write(b);
        if (left < 0) {
          this.cut++;
          client.destroy();
          upstream.destroy();
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

const bucket = "agent-flaky";
const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-flaky-s3-"));
const passwordFile = path.join(dir, "password");
writeFileSync(passwordFile, `pw-${randomBytes(8).toString("hex")}`, { mode: 0o600 });
const s3 = () => world().s3;
const s3env = () => ({ AWS_ACCESS_KEY_ID: s3().accessKey, AWS_SECRET_ACCESS_KEY: s3().secretKey });
const direct = (p: string) => `s3:${s3().endpoint}/${bucket}/${p}`;
const via = (relay: FlakyRelay, p: string) => `s3:http://127.0.0.1:${relay.port}/${bucket}/${p}`;
const backendErrors: string[] = [];
// No cache: every read goes to the storage.
const engine = new ResticEngine({ binary: tools().restic, onBackendError: (c) => backendErrors.push(c) });
const repo = (repository: string): Repo => ({ repository, passwordFile, env: s3env(), options: { "s3.region": s3().region } });
const access = (repository: string, metadata?: TaskSpec["target"]["metadata"]) => ({
  repository,
  passwordFile,
  options: { "s3.region": s3().region },
  metadata,
});
const sourceEvents = () => ({ s3: { endpoint: s3().endpoint, bucket, prefix: "src.auxo", region: s3().region } });
const run = (task: AgentTask, spec: Omit<TaskSpec, "task">): Promise<AgentResult> =>
  runTask(task, { task, ...spec }, { TMPDIR: dir, ...s3env() }, engine);
const JOBS = 6;
let snapshotIds: string[] = [];
const relays: FlakyRelay[] = [];
async function relay(dropShare: number, bytesPerConnection: number): Promise<FlakyRelay> {
  const r = new FlakyRelay(Number(new URL(s3().endpoint).port), dropShare, bytesPerConnection);
  await r.open();
  relays.push(r);
  return r;
}

beforeAll(async () => {
  await createBucket(bucket);
  await engine.init(repo(direct("src")));
  const data = path.join(dir, "data");
  mkdirSync(data, { recursive: true });
  for (let i = 1; i <= JOBS; i++) {
    rmSync(data, { recursive: true, force: true });
    mkdirSync(data);
    writeFileSync(path.join(data, "blob.bin"), randomBytes(1 << 20));
    const tags = tagsFor({ jobId: `job-${i}`, type: "full", status: "completed", client: "web", subclient: "app" });
    execFileSync(
      tools().restic,
      ["-r", direct("src"), "--password-file", passwordFile, "--no-cache", "backup", "-q", ...tags.flatMap((t) => ["--tag", t]), data],
      { env: { ...process.env, ...s3env() } },
    );
  }
  snapshotIds = (await engine.catalog(repo(direct("src")))).map((e) => e.snapshotId);
  expect(snapshotIds).toHaveLength(JOBS);
}, 180_000);

afterAll(async () => {
  await Promise.all(relays.map((r) => r.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe("errors on a flaky network", () => {
  it("a verification that restic keeps retrying until the deadline is Unreachable, and fails no job", async () => {
    const harsh = await relay(0.5, 150_000);
    backendErrors.length = 0;
    const err = await engineFailure(
      run("verify", { target: access(via(harsh, "src"), sourceEvents()), snapshotIds: snapshotIds.slice(0, 2), timeoutSeconds: 20 }),
    );
    expect(err).toMatchObject({ kind: "Unreachable", retryable: true });
    expect(err.message).toMatch(/no answer within 20 s; last: .*(unexpected EOF|connection reset|EOF)/);
    // restic really retried reads of data packs (the warnings the old classification took for corruption).
    expect(harsh.cut + harsh.dropped).toBeGreaterThan(0);
    expect(backendErrors.length).toBeGreaterThan(0);
    const events = await metadataStore(sourceEvents(), s3env())?.list();
    expect(events?.filter((e) => e.kind === "verify" && e.result === "failed")).toEqual([]);
  }, 180_000);

  it("a copy stopped at its deadline by the network is Unreachable, not corrupt data", async () => {
    const harsh = await relay(0.5, 150_000);
    const target = path.join(dir, "copy-stopped");
    await engine.init({ repository: target, passwordFile }, { chunkerFrom: repo(direct("src")) });
    const err = await engineFailure(
      run("copy", {
        source: access(via(harsh, "src")),
        target: { repository: target, passwordFile, options: {} },
        snapshotIds,
        timeoutSeconds: 20,
      }),
    );
    expect(err).toMatchObject({ kind: "Unreachable", retryable: true });
  }, 180_000);

  it("with a moderate share of failing connections, a copy retries and completes with every job", async () => {
    const moderate = await relay(0.2, 3_000_000);
    await engine.init(repo(direct("dst")), { chunkerFrom: repo(direct("src")) });
    backendErrors.length = 0;
    const r = await run("copy", {
      source: access(via(moderate, "src")),
      target: access(via(moderate, "dst")),
      snapshotIds,
      timeoutSeconds: 600,
    });
    expect(r).toMatchObject({ ok: true, copied: JOBS });
    expect(moderate.dropped + moderate.cut).toBeGreaterThan(0);
    const copied = (await engine.catalog(repo(direct("dst")))).map((e) => e.jobId).sort();
    expect(copied).toEqual(Array.from({ length: JOBS }, (_, i) => `job-${i + 1}`).sort());
    await engine.check(repo(direct("dst")), { readData: true });
  }, 600_000);

  it("a pack with overwritten bytes is still CorruptData, and its job is marked failed", async () => {
    const local = { repository: path.join(dir, "damaged"), passwordFile };
    await engine.init(local, { chunkerFrom: repo(direct("src")) });
    await engine.copyJobs(repo(direct("src")), local, await engine.catalog(repo(direct("src"))));
    const packs = readdirSync(path.join(local.repository, "data"), { recursive: true, encoding: "utf8" })
      .map((f) => path.join(local.repository, "data", f))
      .filter((f) => statSync(f).isFile())
      .sort((a, b) => statSync(b).size - statSync(a).size);
    const fd = openSync(packs[0] as string, "r+");
    writeSync(fd, randomBytes(64), 0, 64, 4096);
    closeSync(fd);
    const metadata = { path: `${local.repository}.auxo` };
    const localIds = (await engine.catalog(local)).map((e) => e.snapshotId);
    const r = await run("verify", { target: { ...local, options: {}, metadata }, snapshotIds: localIds, timeoutSeconds: 300 });
    expect(r).toMatchObject({ ok: false, kind: "CorruptData", retryable: false });
    const failed = r.failedJobs as string[];
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThan(JOBS);
    const events = (await metadataStore(metadata, {})?.list()) ?? [];
    expect(
      events
        .filter((e) => e.kind === "verify" && e.result === "failed")
        .map((e) => e.jobId)
        .sort(),
    ).toEqual([...failed].sort());
  }, 300_000);
});
