// A backup copy of one big VolumeSnapshot through the real CSI world, against plain `restic backup` of the same data in
// the same run. A pod writes N MiB of incompressible data into a PVC; a VolumeSnapshot of it is adopted by a SnapVault
// with an Offline backup copy into the gold policy's primary copy (a hostPath filesystem library); the vault copy runs
// first (not timed), then one offline backup copy is requested and timed from the request to the job seen Copied in
// status: csi-provisioner's restore, the MediaAgent pod (`auxo agent backupcopy`, uid 65532) and restic's full
// (`--force`) into the primary. Peers on the snapshot's own folder in the driver: `restic backup` into a fresh
// repository on the library's disk, and `cp -r` (the floor).
//   node bench/backupcopy.ts [MiB=1024]
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { registerControllers } from "../src/controllers/index.ts";
import { installCrds } from "../test/harness/crds.ts";
import type { Obj } from "../test/harness/kube-rest.ts";
import { waitFor } from "../test/harness/net.ts";
import { testManager } from "../test/harness/operator-testing.ts";
import { tools } from "../test/harness/tools.ts";
import { World } from "../test/harness/world.ts";
import { claim, cut, write } from "./csi-world.ts";
import { AGENT_UID, load, secs } from "./lib.ts";

const mib = Number(process.argv[2] ?? 1024);
if (!(mib > 0)) throw new Error(`usage: node bench/backupcopy.ts [MiB=1024], got ${process.argv.slice(2).join(" ")}`);
const ns = "bench";
const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-bench-bc-"));
chmodSync(dir, 0o755); // the MediaAgents (uid 65532) walk into the library folder below it
const world = new World({ dir: path.join(dir, "world") });
const password = randomBytes(16).toString("hex");
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const rate = (ms: number) => `${(mib / (ms / 1000)).toFixed(0)} MiB/s`;
const enc = { passwordSecret: { name: "repo-password" } };

const loadBefore = load();
let mgr: ReturnType<typeof testManager> | undefined;
try {
  const info = await world.start();
  const kube = world.cp.client;
  const b = { kube, ns, csi: info.csi };
  const merge = (p: string, body: Obj) => kube.request("PATCH", p, body, "application/merge-patch+json");
  const status = async (plural: string, name: string, what: string, ok: (s: Obj) => boolean, timeoutMs = 1800_000) =>
    await waitFor(
      `${name} ${what}`,
      async () => {
        const s = (await kube.get(api(plural, name))).status;
        return s && ok(s) ? s : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
  await installCrds(kube);
  await kube.create("/api/v1/namespaces", { metadata: { name: ns } });
  await waitFor("service account", async () =>
    (await kube.get(`/api/v1/namespaces/${ns}/serviceaccounts/default`).catch(() => undefined)) ? true : undefined,
  );
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
  const libRoot = path.join(dir, "library");
  mkdirSync(libRoot);
  execFileSync("chown", [`${AGENT_UID}:${AGENT_UID}`, libRoot]);
  const pwFile = path.join(dir, "pw");
  writeFileSync(pwFile, password, { mode: 0o600 });
  const restic = (repo: string, ...args: string[]) =>
    execFileSync(tools().restic, ["-r", repo, "--password-file", pwFile, "--no-cache", ...args], { encoding: "utf8", maxBuffer: 64 << 20 });

  mgr = testManager(world.cp.kubeconfig);
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    volumeSnapshots: true,
    retryBaseMs: 1000,
    progressIntervalMs: 1000,
    probeTimeoutSeconds: 5,
    allowHostPathLibraries: true,
    autoAuxCopy: false,
  });
  await mgr.start();
  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { hostPath: { path: libRoot } } }));
  await kube.create(api("storagepolicies"), auxo("StoragePolicy", "gold", { primaryCopy: "primary", auxCopySchedule: { enabled: false } }));
  await kube.create(api("policycopies"), auxo("PolicyCopy", "primary", { storagePolicy: "gold", library: "disk", encryption: enc }));
  await status("policycopies", "primary", "repository ready", (s) => s.repositoryReady === true, 180_000);

  const sizes: number[] = [];
  for (let left = mib; left > 0; left -= 64) sizes.push(Math.min(64, left));
  await claim(b, "big", `${Math.ceil(mib / 1024) + 1}Gi`);
  const writeMs = await write(
    b,
    "writer-big",
    "big",
    sizes.map((m, i) => `head -c ${m * 1024 * 1024} /dev/urandom > /data/part-${i}`).join(" && "),
    1800_000,
  );
  let t = performance.now();
  const folder = (await cut(b, "big", [{ name: "big-1", pvc: "big" }])).get("big-1") as string;
  const cutMs = performance.now() - t;

  await kube.create(
    api("snapvaults"),
    auxo("SnapVault", "big", {
      storagePolicy: "gold",
      source: { adopt: { volumeSnapshotSelector: { matchLabels: { bench: "big" } } } },
      destination: { library: "disk", encryption: enc },
      schedule: { every: "168h", suspend: true },
      backupCopy: { enabled: true, mode: "Offline", schedule: { every: "168h", suspend: true } },
    }),
  );
  await status("snapvaults", "big", "repository opened", (s) => !!s.repositoryId, 180_000);
  // The vault copy first, not timed: the backup copy then has the machine to itself.
  await merge(api("snapvaults", "big"), { metadata: { annotations: { "auxo.dev/run-requested": "vault" } } });
  t = performance.now();
  await status("snapvaults", "big", "vault copy done", (s) => s.lastRequest === "vault" && !!s.run?.endTime && s.run?.aging !== undefined);
  const vaultMs = performance.now() - t;

  await merge(api("snapvaults", "big"), { metadata: { annotations: { "auxo.dev/backup-copy-requested": "bench" } } });
  const t0 = performance.now();
  let copyingAt: number | undefined;
  const done = await status("snapvaults", "big", "backup copy done", (s) => {
    const e = (s.snapshots as Obj[] | undefined)?.[0]?.backupCopy;
    if (e?.state === "Copying") copyingAt ??= performance.now();
    return e?.state === "Copied" || e?.state === "Missing" || e?.state === "Retrying";
  });
  const bcMs = performance.now() - t0;
  const entry = (done.snapshots as Obj[])[0]?.backupCopy as Obj;
  const onPrimary = JSON.parse(restic(path.join(libRoot, ns, "gold", "primary"), "snapshots", "--no-lock", "--json")) as {
    tags?: string[];
  }[];

  const peerRepo = path.join(libRoot, "peer-restic");
  restic(peerRepo, "init", "-q");
  t = performance.now();
  restic(peerRepo, "backup", "-q", folder);
  const resticMs = performance.now() - t;
  t = performance.now();
  execFileSync("cp", ["-r", folder, path.join(libRoot, "peer-cp")]);
  const cpMs = performance.now() - t;
  rmSync(path.join(libRoot, "peer-cp"), { recursive: true, force: true });

  console.log(
    `Backup copy through the CSI world (csi-provisioner restore + MediaAgent pod \`auxo agent backupcopy\` as uid ${AGENT_UID}) into a policy's primary copy on a filesystem library, same run:`,
  );
  console.log(`one VolumeSnapshot of ${mib} MiB (${sizes.length} file(s) of up to 64 MiB from /dev/urandom, written by a pod)`);
  console.log(`  not timed: written in ${secs(writeMs)}; cut and ready in ${secs(cutMs)}; its vault copy (run) in ${secs(vaultMs)}`);
  console.log(
    `  offline backup copy (request → Copied seen, 100 ms polls): ${secs(bcMs)}  ${rate(bcMs)}  (Copying seen after ${copyingAt === undefined ? "never" : secs(copyingAt - t0)}; state ${entry.state}, type ${entry.type}, ${((entry.bytes ?? 0) / 2 ** 20).toFixed(0)} MiB; jobs on the primary: ${onPrimary.length})`,
  );
  console.log(`  restic backup of the snapshot's folder: ${secs(resticMs)}  ${rate(resticMs)}`);
  console.log(`  cp -r of the snapshot's folder:         ${secs(cpMs)}  ${rate(cpMs)}`);
  console.log(
    `  ratios: backup copy/restic ${(bcMs / resticMs).toFixed(2)}×, backup copy/cp ${(bcMs / cpMs).toFixed(2)}×, restic/cp ${(resticMs / cpMs).toFixed(2)}×`,
  );
  console.log(`  load average before: ${loadBefore}; after: ${load()} (${os.cpus().length} cores)`);
  if (entry.state !== "Copied" || entry.type !== "full" || onPrimary.length !== 1) process.exitCode = 1;
} finally {
  await mgr?.stop();
  await world.stop();
  rmSync(dir, { recursive: true, force: true });
}
