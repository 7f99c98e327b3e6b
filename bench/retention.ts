// Data aging: the retention decision over a large catalog, and the prune of a data aging run against repository size.
//   node bench/retention.ts [jobs=100000] [sizesMiB=128,512]
// 1. decideRetention over `jobs` synthetic jobs (50 subclients, a full every 7th job, one job an hour per subclient),
//    with two copies after this one; median of 5 runs after a warm-up.
// 2. For each size: a filesystem repository of 20 weekly jobs adding size/20 MiB of incompressible data each, aged by
//    the MediaAgent's `age` task (runTask: decide, forget, prune) with 30 days / 1 cycle (about 3/4 of the jobs age),
//    against plain `restic forget --prune` of the same snapshots on a copy of the same repository.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ResticEngine } from "../src/engine/restic.ts";
import { runTask } from "../src/mediaagent/agent.ts";
import { type CatalogEntry, tagsFor } from "../src/policy/catalog.ts";
import { decideRetention, type DownstreamCopy } from "../src/policy/retention.ts";
import { tools } from "../test/harness/tools.ts";

const jobs = Number(process.argv[2] ?? 100_000);
const sizes = (process.argv[3] ?? "128,512").split(",").map(Number);
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(", ");
const loadBefore = load();

// 1. The decision.
const now = Date.parse("2026-11-22T12:00:00Z");
const subclients = 50;
const perSub = Math.ceil(jobs / subclients);
const catalog: CatalogEntry[] = [];
for (let s = 0; s < subclients; s++)
  for (let k = 0; k < perSub && catalog.length < jobs; k++) {
    const start = new Date(now - (perSub - k) * 3600_000 - s * 60_000).toISOString();
    catalog.push({
      jobId: `s${s}-j${k}`,
      snapshotId: `${s}-${k}`,
      originalId: `${s}-${k}`,
      type: k % 7 === 0 ? "full" : "incremental",
      status: k % 97 === 5 ? "failed" : k % 53 === 3 ? "completedWithErrors" : "completed",
      client: "bench",
      subclient: `sub${s}`,
      startTime: start,
      endTime: start,
      tagged: true,
      bytes: 1 << 20,
    });
  }
const newest = new Set(catalog.slice(-Math.floor(jobs / 20)).map((e) => e.jobId));
const downstream: DownstreamCopy[] = [
  { name: "offsite", needs: newest, has: new Set(catalog.filter((e) => !newest.has(e.jobId)).map((e) => e.jobId)) },
  { name: "monthly", copyType: "Selective", needs: new Set(), has: new Set(catalog.filter((_, i) => i % 500 === 0).map((e) => e.jobId)) },
];
const time = (retention: Parameters<typeof decideRetention>[0]["retention"]) => {
  const input = { catalog, retention, now, timeZone: "Europe/Paris", downstream };
  decideRetention(input); // warm-up
  const ms: number[] = [];
  let aged = 0;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    aged = decideRetention(input).aged.length;
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { median: ms[2] as number, aged };
};
const basic = time({ days: 30, cycles: 2 });
const extended = time({
  days: 30,
  cycles: 2,
  extended: [
    { period: "Weekly", keepDays: 90 },
    { period: "Monthly", keepDays: 365 },
    { period: "Yearly", keepDays: -1 },
  ],
});
const heap = process.memoryUsage().heapUsed / 2 ** 20;

// 2. Prune against repository size.
const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-bench-retention-"));
const engine = new ResticEngine({ binary: tools().restic, cacheDir: path.join(dir, "cache") });
const passwordFile = path.join(dir, "password");
writeFileSync(passwordFile, randomBytes(16).toString("hex"), { mode: 0o600 });
const restic = (...args: string[]) =>
  execFileSync(tools().restic, ["--password-file", passwordFile, "--no-cache", ...args], { encoding: "utf8" });
const rows: string[] = [];
try {
  for (const size of sizes) {
    const repo = path.join(dir, `repo-${size}`);
    await engine.init({ repository: repo, passwordFile });
    const data = path.join(dir, `data-${size}`);
    for (let k = 0; k < 20; k++) {
      rmSync(data, { recursive: true, force: true }); // each job holds only its own data, so aged jobs free space
      mkdirSync(data, { recursive: true });
      writeFileSync(path.join(data, "blob.bin"), randomBytes(Math.round((size / 20) * 2 ** 20)));
      const job = {
        jobId: `job-${k}`,
        type: k % 4 === 0 ? "full" : "incremental",
        status: "completed",
        client: "bench",
        subclient: "data",
      } as const;
      const stamp = new Date(Date.now() - (20 - k) * 7 * 86_400_000).toISOString().slice(0, 19).replace("T", " ");
      restic("-r", repo, "backup", "-q", "--time", stamp, ...tagsFor(job).flatMap((t) => ["--tag", t]), data);
    }
    const peer = path.join(dir, `peer-${size}`);
    cpSync(repo, peer, { recursive: true });
    const storedBefore = await engine.storedBytes({ repository: repo, passwordFile });
    let t = performance.now();
    const r = await runTask(
      "age",
      {
        task: "age",
        target: { repository: repo, passwordFile, options: {} },
        aging: { retention: { days: 30, cycles: 1 }, timeZone: "UTC", maxSharePercent: 100 },
        timeoutSeconds: 3600,
      },
      { TMPDIR: dir },
      engine,
    );
    const taskSec = (performance.now() - t) / 1000;
    if (!r.ok) throw new Error(`age task failed: ${r.message}`);
    // The peer forgets the very snapshots the task aged.
    const aged = new Set(r.agedJobs as string[]);
    const ids = (await engine.catalog({ repository: peer, passwordFile })).filter((e) => aged.has(e.jobId)).map((e) => e.snapshotId);
    if (ids.length !== (r.aged as number)) throw new Error(`peer: ${ids.length} snapshots for ${String(r.aged)} aged jobs`);
    t = performance.now();
    restic("-r", peer, "forget", "--prune", ...ids);
    const peerSec = (performance.now() - t) / 1000;
    const mib = (b: number) => (b / 2 ** 20).toFixed(0);
    rows.push(
      `  ${String(size).padStart(5)} MiB repository (${mib(storedBefore)} MiB stored, 20 jobs): age task ${taskSec.toFixed(1)} s ` +
        `(aged ${String(r.aged)}, freed ${mib(r.reclaimedBytes as number)} MiB, ${(storedBefore / 2 ** 20 / taskSec).toFixed(0)} MiB/s of repository), ` +
        `restic forget --prune ${peerSec.toFixed(1)} s, ratio ${(taskSec / peerSec).toFixed(2)}×`,
    );
    rmSync(repo, { recursive: true, force: true });
    rmSync(peer, { recursive: true, force: true });
    rmSync(data, { recursive: true, force: true });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log(`retention decision over ${catalog.length} jobs (${subclients} subclients, a full every 7th, hourly), two copies after it:`);
console.log(`  30 days / 2 cycles: median ${basic.median.toFixed(0)} ms (aged ${basic.aged})`);
console.log(
  `  + 3 extended rules (weekly 90 d, monthly 365 d, yearly forever): median ${extended.median.toFixed(0)} ms (aged ${extended.aged})`,
);
console.log(`  heap used after: ${heap.toFixed(0)} MiB`);
console.log("data aging run (forget + prune) against repository size, same snapshots, same run:");
for (const r of rows) console.log(r);
console.log(`  load average before: ${loadBefore}; after: ${load()} (2 cores)`);
