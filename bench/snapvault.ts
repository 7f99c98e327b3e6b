// SnapVault copies through the real CSI world: csi-provisioner restores a PVC from each VolumeSnapshot (the world's
// CSI driver copies the snapshot's files into a new volume), the operator starts a MediaAgent pod (`auxo agent
// snapcopy`, through the local node runner as uid 65532) that mounts it read-only and runs `restic backup` into the
// SnapVault's destination on a hostPath filesystem library. The operator runs in this process (testManager +
// registerControllers, every controller); runs are requested with the auxo.dev/run-requested annotation.
//   Part 1, one big snapshot: N MiB of incompressible data written into a PVC by a pod, one VolumeSnapshot adopted by
//     a SnapVault, one run timed from the request to its end; peers in the same run, on the snapshot's own folder in
//     the driver (`<csi dir>/snapshots/<id>/data`): plain `restic backup` into a fresh repository on the library's
//     disk, and `cp -r` (the floor).
//   Part 2, the fixed cost per snapshot: `small` VolumeSnapshots of a few KiB (5 PVCs, several snapshots each), one
//     run copying them all; peer: as many plain `restic backup` runs of the same snapshot folders, one after another.
//   node bench/snapvault.ts [MiB=1024] [small=50]
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
import { claim as claimOn, cut as cutOn, write as writeOn } from "./csi-world.ts";
import { AGENT_UID, load, pct, secs } from "./lib.ts";

const mib = Number(process.argv[2] ?? 1024);
const small = Number(process.argv[3] ?? 50);
if (!(mib > 0) || !(small > 0))
  throw new Error(`usage: node bench/snapvault.ts [MiB=1024] [small=50], got ${process.argv.slice(2).join(" ")}`);
const SMALL_PVCS = Math.min(5, small);
const ns = "bench";
const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-bench-sv-"));
chmodSync(dir, 0o755); // the MediaAgents (uid 65532) walk into the library folder below it
const world = new World({ dir: path.join(dir, "world") });
const password = randomBytes(16).toString("hex");
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const pvcPath = (name = "") => `/api/v1/namespaces/${ns}/persistentvolumeclaims${name ? `/${name}` : ""}`;
const podPath = (name = "") => `/api/v1/namespaces/${ns}/pods${name ? `/${name}` : ""}`;
const rate = (bytesMiB: number, ms: number) => `${(bytesMiB / (ms / 1000)).toFixed(0)} MiB/s`;
const since = (t0: number, t?: number) => (t === undefined ? "not seen" : `+${secs(t - t0)}`);

const loadBefore = load();
let mgr: ReturnType<typeof testManager> | undefined;
try {
  const info = await world.start();
  const kube = world.cp.client;
  const merge = (p: string, body: Obj) => kube.request("PATCH", p, body, "application/merge-patch+json");
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
  // Plain restic as root, with the agents' flags (no cache); the peers' repositories sit on the library's disk.
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
  });
  await mgr.start();
  // maxStreams left at its default (10): part 2's run copies that many snapshots at once.
  await kube.create(api("libraries"), {
    apiVersion: "auxo.dev/v1alpha1",
    kind: "Library",
    metadata: { name: "disk" },
    spec: { filesystem: { hostPath: { path: libRoot } } },
  });
  await waitFor(
    "library disk Ready",
    async () => ((await kube.get(api("libraries", "disk"))).status?.phase === "Ready" ? true : undefined),
    { timeoutMs: 180_000, intervalMs: 300 },
  );

  const b = { kube, ns, csi: info.csi };
  const claim = (name: string, size: string) => claimOn(b, name, size);
  const write = (name: string, claimName: string, script: string, timeoutMs: number) => writeOn(b, name, claimName, script, timeoutMs);
  const cut = (part: string, of: { name: string; pvc: string }[]) => cutOn(b, part, of);

  /** A SnapVault adopting the VolumeSnapshots labelled bench=<part>, suspended (runs on request only), repository open. */
  async function snapVault(name: string, part: string): Promise<void> {
    await kube.create(api("snapvaults"), {
      apiVersion: "auxo.dev/v1alpha1",
      kind: "SnapVault",
      metadata: { name },
      spec: {
        source: { adopt: { volumeSnapshotSelector: { matchLabels: { bench: part } } } },
        destination: { library: "disk", encryption: { passwordSecret: { name: "repo-password" } } },
        schedule: { every: "168h", suspend: true },
      },
    });
    await waitFor(
      `snapvault ${name} repository opened`,
      async () => ((await kube.get(api("snapvaults", name))).status?.repositoryId ? true : undefined),
      {
        timeoutMs: 180_000,
        intervalMs: 300,
      },
    );
  }

  /**
   * One snapshot's copy as the polls saw it (performance.now() of the first poll that showed each state): its restored
   * volume and copy pod, matched by the snapshot's uid label; `*Gone`: no longer listed (the operator deletes both
   * once it has read the result).
   */
  interface Span {
    seen: number;
    bound?: number;
    running?: number;
    done?: number;
    podGone?: number;
    claimGone?: number;
  }
  /**
   * Requests one run and polls (every 100 ms) the SnapVault, its restored volumes and its copy pods until the run's
   * endTime is set, then until its destination aging is decided (so that nothing of it overlaps what follows).
   */
  async function timedRun(name: string, token: string) {
    const spans = new Map<string, Span>();
    const seenPods = new Set<string>();
    const seenClaims = new Set<string>();
    let mostPods = 0;
    const sel = `labelSelector=auxo.dev%2Fsnapvault%3D${name}`;
    const uidOf = (o: Obj): string | undefined => o.metadata.labels?.["auxo.dev/volumesnapshot-uid"];
    const before = (await kube.get(api("snapvaults", name))).status?.runs ?? 0;
    const wall0 = Date.now();
    const t0 = performance.now();
    await merge(api("snapvaults", name), { metadata: { annotations: { "auxo.dev/run-requested": token } } });
    let last: Obj | undefined;
    const status = await waitFor(
      `snapvault ${name} run for ${token} ended`,
      async () => {
        const [s, cl, pl] = await Promise.all([
          kube.get(api("snapvaults", name)),
          kube.get(`${pvcPath()}?${sel}`),
          kube.get(`${podPath()}?${sel}`),
        ]);
        const now = performance.now();
        const span = (uid: string) => spans.get(uid) ?? (spans.set(uid, { seen: now }).get(uid) as Span);
        const claimsNow = new Set<string>();
        const podsNow = new Set<string>();
        for (const c of cl.items as Obj[]) {
          const uid = uidOf(c);
          if (!uid) continue;
          claimsNow.add(uid);
          seenClaims.add(uid);
          const e = span(uid);
          if (e.bound === undefined && c.status?.phase === "Bound") e.bound = now;
        }
        // Copy pods only (they carry the snapshot's uid; the repository's init pod does not).
        for (const p of pl.items as Obj[]) {
          const uid = uidOf(p);
          if (!uid) continue;
          podsNow.add(uid);
          seenPods.add(uid);
          const e = span(uid);
          const phase = p.status?.phase;
          if (e.running === undefined && (phase === "Running" || phase === "Succeeded" || phase === "Failed")) e.running = now;
          if (e.done === undefined && (phase === "Succeeded" || phase === "Failed")) e.done = now;
        }
        for (const [uid, e] of spans) {
          if (e.podGone === undefined && seenPods.has(uid) && !podsNow.has(uid)) e.podGone = now;
          if (e.claimGone === undefined && seenClaims.has(uid) && !claimsNow.has(uid)) e.claimGone = now;
        }
        mostPods = Math.max(mostPods, [...podsNow].filter((uid) => spans.get(uid)?.done === undefined).length);
        last = s.status;
        return s.status?.lastRequest === token && (s.status?.runs ?? 0) > before && s.status?.run?.endTime ? s.status : undefined;
      },
      { timeoutMs: 3600_000, intervalMs: 100 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last status: ${JSON.stringify(last)}`, { cause: err });
    });
    const ms = performance.now() - t0;
    const endMs = Date.parse(status.run.endTime) - wall0;
    if (status.run.phase !== "Completed") throw new Error(`run ${status.run.number} ended ${status.run.phase}: ${status.run.message}`);
    const aged = await waitFor(
      `snapvault ${name} aging after run ${status.run.number}`,
      async () => {
        const s = (await kube.get(api("snapvaults", name))).status;
        return s?.run?.number === status.run.number && s.run.aging !== undefined ? s : undefined;
      },
      { timeoutMs: 600_000, intervalMs: 200 },
    );
    return { ms, endMs, status, aging: aged.run.aging as string, t0, spans: [...spans.values()], mostPods };
  }

  /** Milestones of the copies, each from the snapshot's first sighting: p50 / max over the snapshots that reached it. */
  function milestones(spans: Span[]): string {
    const step = (what: string, pick: (e: Span) => number | undefined) => {
      const xs = spans.map((e) => pick(e)).filter((x): x is number => x !== undefined);
      if (!xs.length) return `${what} not seen`;
      return spans.length === 1 ? `${what} +${secs(xs[0] as number)}` : `${what} p50 +${secs(pct(xs, 50))} max +${secs(Math.max(...xs))}`;
    };
    const rel = (k: keyof Span) => (e: Span) => (e[k] === undefined ? undefined : (e[k] as number) - e.seen);
    return [
      step("volume Bound", rel("bound")),
      step("pod running", rel("running")),
      // A pod the operator deleted between two polls was not seen Succeeded: its end is when it went.
      step("pod ended", (e) =>
        (e.done ?? e.podGone) === undefined ? undefined : Math.min(e.done ?? Infinity, e.podGone ?? Infinity) - e.seen,
      ),
      step("volume deleted", rel("claimGone")),
    ].join(", ");
  }

  const onDestination = (sv: string) =>
    (JSON.parse(restic(path.join(libRoot, ns, "snapvault", sv), "snapshots", "--no-lock", "--json")) as unknown[]).length;

  // ---- Part 1: one big snapshot ----
  // Written by a pod through the node runner's mount of the volume (not straight into the driver's folder): the
  // volume's files are what a workload left, owned and laid out as a pod writes them.
  const sizes: number[] = [];
  for (let left = mib; left > 0; left -= 64) sizes.push(Math.min(64, left));
  await claim("big", `${Math.ceil(mib / 1024) + 1}Gi`);
  const writeMs = await write(
    "writer-big",
    "big",
    sizes.map((m, i) => `head -c ${m * 1024 * 1024} /dev/urandom > /data/part-${i}`).join(" && "),
    1800_000,
  );
  let t = performance.now();
  const bigFolder = (await cut("big", [{ name: "big-1", pvc: "big" }])).get("big-1") as string;
  const cutMs = performance.now() - t;
  await snapVault("big", "big");
  const big = await timedRun("big", "big-1");
  const bigCopies = onDestination("big");

  // Peers, on the snapshot's own folder in the driver.
  const peerRepo = path.join(libRoot, "peer-restic");
  restic(peerRepo, "init", "-q");
  t = performance.now();
  restic(peerRepo, "backup", "-q", bigFolder);
  const resticMs = performance.now() - t;
  t = performance.now();
  execFileSync("cp", ["-r", bigFolder, path.join(libRoot, "peer-cp")]);
  const cpMs = performance.now() - t;
  rmSync(path.join(libRoot, "peer-cp"), { recursive: true, force: true });

  // ---- Part 2: many tiny snapshots ----
  const smallPvcs = Array.from({ length: SMALL_PVCS }, (_, i) => `small-${i}`);
  for (const p of smallPvcs) await claim(p, "1Gi");
  t = performance.now();
  for (const p of smallPvcs)
    await write(
      `writer-${p}`,
      p,
      `mkdir -p /data/sub && head -c 4096 /dev/urandom > /data/a && head -c 1024 /dev/urandom > /data/sub/b && printf '${p}' > /data/name`,
      120_000,
    );
  const smallWriteMs = performance.now() - t;
  const smallSnaps = Array.from({ length: small }, (_, i) => ({
    name: `${smallPvcs[i % SMALL_PVCS]}-${Math.floor(i / SMALL_PVCS) + 1}`,
    pvc: smallPvcs[i % SMALL_PVCS] as string,
  }));
  t = performance.now();
  const smallFolders = await cut("small", smallSnaps);
  const smallCutMs = performance.now() - t;
  await snapVault("small", "small");
  const many = await timedRun("small", "small-1");
  const smallCopies = onDestination("small");
  // Every adopted snapshot must be on the destination: a fast run that left one out measures nothing.
  if (smallCopies !== small) {
    const left = (many.status.snapshots as Obj[]).filter((e) => e.state !== "Copied");
    throw new Error(
      `${smallCopies} of ${small} snapshots on the destination; counts ${JSON.stringify(many.status.counts)}, listed ${many.status.snapshots.length}, not Copied: ${JSON.stringify(left)}`,
    );
  }

  const peerSmall = path.join(libRoot, "peer-restic-small");
  restic(peerSmall, "init", "-q");
  t = performance.now();
  for (const folder of smallFolders.values()) restic(peerSmall, "backup", "-q", folder);
  const resticSmallMs = performance.now() - t;

  // ---- Report ----
  console.log(
    `SnapVault copy through the CSI world (csi-provisioner restore + MediaAgent pod \`auxo agent snapcopy\` as uid ${AGENT_UID}), filesystem library, same run:`,
  );
  console.log(
    `part 1: one VolumeSnapshot of ${mib} MiB (${sizes.length} file${sizes.length === 1 ? "" : "s"} of up to 64 MiB from /dev/urandom, written by a pod)`,
  );
  console.log(`  not part of the run: written in ${secs(writeMs)}; VolumeSnapshot cut and ready in ${secs(cutMs)}`);
  console.log(
    `  SnapVault run (request → endTime seen, 100 ms polls): ${secs(big.ms)}  ${rate(mib, big.ms)}  (status.run.endTime − request: ${secs(big.endMs)}, whole seconds; copied ${big.status.run.copied}, ${((big.status.run.bytes ?? 0) / 2 ** 20).toFixed(0)} MiB; on the destination: ${bigCopies})`,
  );
  console.log(`    restored volume and copy pod first seen ${since(big.t0, big.spans[0]?.seen)}; then ${milestones(big.spans)}`);
  console.log(`  restic backup of the snapshot's folder:  ${secs(resticMs)}  ${rate(mib, resticMs)}`);
  console.log(`  cp -r of the snapshot's folder:          ${secs(cpMs)}  ${rate(mib, cpMs)}`);
  console.log(
    `  ratios: run/restic ${(big.ms / resticMs).toFixed(2)}×, run/cp ${(big.ms / cpMs).toFixed(2)}×, restic/cp ${(resticMs / cpMs).toFixed(2)}×`,
  );
  console.log(
    `part 2: ${small} VolumeSnapshots of about 5 KiB (${SMALL_PVCS} PVCs × ${Math.ceil(small / SMALL_PVCS)}), adopted by one SnapVault, one run`,
  );
  console.log(
    `  not part of the run: ${SMALL_PVCS} writer pods in ${secs(smallWriteMs)}; ${small} VolumeSnapshots cut and ready in ${secs(smallCutMs)}`,
  );
  console.log(
    `  SnapVault run: ${secs(many.ms)}, ${secs(many.ms / small)} per snapshot  (status.run.endTime − request: ${secs(many.endMs)}; copied ${many.status.run.copied}; on the destination: ${smallCopies}; most copy pods at once: ${many.mostPods}, library maxStreams 10)`,
  );
  const firstSeen = Math.min(...many.spans.map((e) => e.seen));
  const lastDone = Math.max(...many.spans.map((e) => Math.min(e.done ?? Infinity, e.podGone ?? Infinity)).filter(Number.isFinite));
  console.log(
    `    copies first seen ${since(many.t0, firstSeen)}, last copy pod ended ${since(many.t0, lastDone)}; per snapshot from its first sighting: ${milestones(many.spans)}`,
  );
  console.log(
    `  plain restic backup × ${small} of the same folders, one after another: ${secs(resticSmallMs)}, ${secs(resticSmallMs / small)} per run`,
  );
  console.log(
    `  ratio run/restic: ${(many.ms / resticSmallMs).toFixed(2)}× (the run copies up to ${many.mostPods} at once; restic runs one at a time)`,
  );
  console.log(`  destination aging after the runs: part 1 "${big.aging}", part 2 "${many.aging}"`);
  console.log(`  load average before: ${loadBefore}; after: ${load()} (${os.cpus().length} cores)`);
  if (bigCopies !== 1 || smallCopies !== small) process.exitCode = 1;
} finally {
  await mgr?.stop();
  await world.stop();
  rmSync(dir, { recursive: true, force: true });
}
