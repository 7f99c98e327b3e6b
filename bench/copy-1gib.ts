// Copy throughput: 1 GiB of backup data (incompressible) copied from one filesystem repository to another
//   (a) by a MediaAgent pod (`auxo agent copy`, through the local node runner, timed from pod creation to Succeeded),
//   (b) by plain `restic copy`,
//   (c) by `cp -r` of the repository folder (no restic at all: the floor),
// on the same data, in the same run.  node bench/copy-1gib.ts [MiB=1024]
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ResticEngine } from "../src/engine/restic.ts";
import { buildAgentPod } from "../src/mediaagent/pod.ts";
import { repositoryAccess } from "../src/policy/repository.ts";
import { waitFor } from "../test/harness/net.ts";
import { tools } from "../test/harness/tools.ts";
import { World } from "../test/harness/world.ts";

const mib = Number(process.argv[2] ?? 1024);
const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-bench-copy-"));
const world = new World({ dir: path.join(dir, "world") });
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const rate = (ms: number) => `${(mib / (ms / 1000)).toFixed(0)} MiB/s`;

try {
  const info = await world.start();
  const kube = world.cp.client;
  const password = randomBytes(16).toString("hex");
  const pwFile = path.join(dir, "pw");
  writeFileSync(pwFile, password, { mode: 0o644 });
  const libRoot = path.join(dir, "library");
  mkdirSync(libRoot, { recursive: true });
  execFileSync("chown", ["-R", "65532:65532", libRoot]);
  const engine = new ResticEngine({ binary: tools().restic });
  const repo = (name: string) => ({ repository: path.join(libRoot, name), passwordFile: pwFile });

  // The data: 1 GiB in 64 MiB files of random bytes, backed up into the source repository (not timed).
  const data = path.join(dir, "data");
  mkdirSync(data);
  for (let i = 0; i < mib / 64; i++) writeFileSync(path.join(data, `part-${i}`), randomBytes(64 * 1024 * 1024));
  await engine.init(repo("source"));
  execFileSync(tools().restic, ["-r", repo("source").repository, "--password-file", pwFile, "--no-cache", "backup", "-q", data], {
    stdio: "ignore",
  });
  const [snap] = await engine.catalog(repo("source"));
  rmSync(data, { recursive: true });
  for (const name of ["pod", "cli"]) await engine.init(repo(name), { chunkerFrom: repo("source") });
  execFileSync("chown", ["-R", "65532:65532", libRoot]);

  // (a) a MediaAgent pod.
  await kube.create("/api/v1/namespaces", { metadata: { name: "bench" } });
  await waitFor("service account", async () =>
    (await kube.get("/api/v1/namespaces/bench/serviceaccounts/default").catch(() => undefined)) ? true : undefined,
  );
  await kube.create("/api/v1/namespaces/bench/secrets", { metadata: { name: "pw" }, stringData: { password } });
  const owner = await kube.create("/api/v1/namespaces/bench/configmaps", { metadata: { name: "owner" } });
  const lib = { filesystem: { hostPath: { path: libRoot } } };
  const pod = buildAgentPod({
    task: "copy",
    namespace: "bench",
    name: "copy-1gib",
    owner: { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata.uid, controller: true },
    image: "auxo:dev",
    source: repositoryAccess(lib, "source", { secret: "pw", key: "password" }, "source"),
    target: repositoryAccess(lib, "pod", { secret: "pw", key: "password" }, "target"),
    snapshotIds: [snap?.snapshotId as string],
    deadlineSeconds: 3600,
  });
  let t = performance.now();
  await kube.create("/api/v1/namespaces/bench/pods", pod);
  const done = await waitFor(
    "the copy pod",
    async () => {
      const p = await kube.get("/api/v1/namespaces/bench/pods/copy-1gib");
      return p.status?.phase === "Succeeded" || p.status?.phase === "Failed" ? p : undefined;
    },
    { timeoutMs: 1800_000, intervalMs: 100 },
  );
  const podMs = performance.now() - t;
  if (done.status.phase !== "Succeeded")
    throw new Error(`copy pod failed: ${done.status.containerStatuses?.[0]?.state?.terminated?.message}`);

  // (b) plain restic copy.
  t = performance.now();
  execFileSync(
    tools().restic,
    [
      "-r",
      repo("cli").repository,
      "--password-file",
      pwFile,
      "--no-cache",
      "copy",
      "--from-repo",
      repo("source").repository,
      "--from-password-file",
      pwFile,
      "-q",
    ],
    { stdio: "ignore" },
  );
  const cliMs = performance.now() - t;

  // (c) cp -r of the repository folder.
  t = performance.now();
  execFileSync("cp", ["-r", repo("source").repository, path.join(libRoot, "cp")]);
  const cpMs = performance.now() - t;

  const copied = (await engine.catalog(repo("pod"))).length;
  console.log(`copy of ${mib} MiB (1 snapshot, incompressible data), filesystem → filesystem, same run:`);
  console.log(`  MediaAgent pod (auxo agent copy): ${secs(podMs)}  ${rate(podMs)}  (snapshots on target: ${copied})`);
  console.log(`  restic copy:                      ${secs(cliMs)}  ${rate(cliMs)}`);
  console.log(`  cp -r of the repository:          ${secs(cpMs)}  ${rate(cpMs)}`);
  console.log(
    `  ratios: pod/restic ${(podMs / cliMs).toFixed(2)}×, pod/cp ${(podMs / cpMs).toFixed(2)}×, restic/cp ${(cliMs / cpMs).toFixed(2)}×`,
  );
  void info;
} finally {
  await world.stop();
  rmSync(dir, { recursive: true, force: true });
}
