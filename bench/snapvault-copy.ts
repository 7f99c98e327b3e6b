// Snapshot copy throughput: a folder of N MiB standing for a PVC restored from a VolumeSnapshot, copied into a fresh
// filesystem repository
//   (a) by the MediaAgent's snapcopy task (runTask in process: identity check, snapshot listing, restic backup with
//       the copy's tags, --time and parent, the job event), as `auxo agent snapcopy` does in its pod,
//   (b) by plain `restic backup` of the same folder into another fresh repository,
//   (c) by `cp -r` of the folder (no restic at all: the floor),
// on the same data, in the same run; then the task once more (the copy is found on the destination, nothing written).
//   node bench/snapvault-copy.ts [MiB=1024]      (or AUXO_BENCH_MIB=…)
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type Repo, ResticEngine } from "../src/engine/restic.ts";
import { runTask } from "../src/mediaagent/agent.ts";
import type { SnapCopyTask } from "../src/mediaagent/protocol.ts";
import { snapJobId } from "../src/policy/snaptags.ts";
import { tools } from "../test/harness/tools.ts";
import { load, secs } from "./lib.ts";

const mib = Number(process.argv[2] ?? process.env.AUXO_BENCH_MIB ?? 1024);
if (!(mib > 0)) throw new Error(`size in MiB, got ${process.argv[2] ?? process.env.AUXO_BENCH_MIB}`);
const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-bench-snapcopy-"));
const rate = (ms: number) => `${(mib / (ms / 1000)).toFixed(0)} MiB/s`;
const loadBefore = load();

try {
  const passwordFile = path.join(dir, "pw");
  writeFileSync(passwordFile, randomBytes(16).toString("hex"), { mode: 0o600 });
  const repo = (name: string): Repo => ({ repository: path.join(dir, name), passwordFile });
  const engine = new ResticEngine({ binary: tools().restic });

  // The restored volume: incompressible data in files of at most 64 MiB, at a stable path per PVC (not timed).
  const volume = path.join(dir, "snapshots", "data-pg-0");
  mkdirSync(volume, { recursive: true });
  for (let left = mib, i = 0; left > 0; left -= 64, i++)
    writeFileSync(path.join(volume, `part-${i}`), randomBytes(Math.min(64, left) * 1024 * 1024));
  const repositoryId = await engine.init(repo("task"));
  await engine.init(repo("cli"));

  const uid = "6f1c2a9e-0b7d-4c1e-9a55-3d2e8f0c1b42";
  const snapshot: SnapCopyTask = {
    path: volume,
    jobId: snapJobId("bench", "pg-1", uid),
    status: "completed",
    client: "bench",
    subclient: "data-pg-0",
    snapVault: "pg-vault",
    volumeSnapshot: { name: "pg-1", uid, creationTime: new Date().toISOString() },
  };
  const task = () =>
    runTask(
      "snapcopy",
      {
        task: "snapcopy",
        target: {
          repository: repo("task").repository,
          passwordFile,
          options: {},
          repositoryId,
          metadata: { path: `${repo("task").repository}.auxo` },
        },
        snapshot,
        timeoutSeconds: 3600,
      },
      { TMPDIR: dir },
      engine,
    );

  // (a) the snapcopy task.
  let t = performance.now();
  const r = await task();
  const taskMs = performance.now() - t;
  if (!r.ok || r.already) throw new Error(`snapcopy: ${JSON.stringify(r)}`);

  // (b) plain restic backup.
  t = performance.now();
  execFileSync(tools().restic, ["-r", repo("cli").repository, "--password-file", passwordFile, "--no-cache", "backup", "-q", volume], {
    stdio: "ignore",
  });
  const cliMs = performance.now() - t;

  // (c) cp -r of the folder.
  t = performance.now();
  execFileSync("cp", ["-r", volume, path.join(dir, "cp")]);
  const cpMs = performance.now() - t;

  // The task again: the copy is on the destination, nothing is written.
  t = performance.now();
  const again = await task();
  const againMs = performance.now() - t;
  if (!again.already) throw new Error(`snapcopy repeat wrote again: ${JSON.stringify(again)}`);
  const onTarget = (await engine.snapshots(repo("task"))).length;

  console.log(
    `snapshot copy of ${mib} MiB (${Math.ceil(mib / 64)} file${Math.ceil(mib / 64) === 1 ? "" : "s"}, incompressible data), folder → filesystem repository, same run:`,
  );
  console.log(
    `  snapcopy task (runTask in process): ${secs(taskMs)}  ${rate(taskMs)}  (added ${((r.added as number) / 2 ** 20).toFixed(0)} MiB)`,
  );
  console.log(`  restic backup:                      ${secs(cliMs)}  ${rate(cliMs)}`);
  console.log(`  cp -r of the folder:                ${secs(cpMs)}  ${rate(cpMs)}`);
  console.log(
    `  ratios: task/restic ${(taskMs / cliMs).toFixed(2)}×, task/cp ${(taskMs / cpMs).toFixed(2)}×, restic/cp ${(cliMs / cpMs).toFixed(2)}×`,
  );
  console.log(`  the task again (found on the destination, nothing written): ${secs(againMs)}  (snapshots on target: ${onTarget})`);
  console.log(`  load average before: ${loadBefore}; after: ${load()} (${os.cpus().length} cores)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
