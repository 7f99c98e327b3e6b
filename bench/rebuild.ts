// The rebuild of a storage policy's view after the cluster is lost: a policy's three repositories (primary, a
// synchronous copy "offsite" with every job, a selective copy "monthly" with a subset of the fulls) outlived the
// cluster on a filesystem library (hostPath); a fresh namespace gets the manifests again (the password Secret, the
// Library, the StoragePolicy and its three PolicyCopies) with the operator running in this process, and the run is
// timed from the first create request to the poll (every 100 ms) that sees every copy's repository ready, scanned,
// and its available jobs equal to the jobs in its repository. Peer: plain `restic snapshots --json` of the three
// repositories one after another, same run; the repositories are checked unchanged afterwards (same snapshot IDs).
//
// The fixture is not timed (bench/fixture.ts): one real snapshot per repository and the other N-1 snapshot files
// written in restic's format, with one job event per copied job beside each secondary repository.
//   node bench/rebuild.ts [jobs=1000]
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { registerControllers } from "../src/controllers/index.ts";
import type { Obj } from "../test/harness/kube-rest.ts";
import { installCrds } from "../test/harness/crds.ts";
import { waitFor } from "../test/harness/net.ts";
import { testManager } from "../test/harness/operator-testing.ts";
import { World } from "../test/harness/world.ts";
import { COPIES, type Copy, createPolicyManifests, policyFixture, removeNamespace, SUBCLIENTS } from "./fixture.ts";
import { AGENT_UID, countRequestsByResource, delta, load, requestsByMethod, secs, sorted, total } from "./lib.ts";

const n = Number(process.argv[2] ?? 1000);
if (!Number.isInteger(n) || n < 1) throw new Error(`usage: node bench/rebuild.ts [jobs=1000], got ${process.argv.slice(2).join(" ")}`);
const ns = "rebuild";

const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-bench-rebuild-"));
chmodSync(dir, 0o755); // uid 65532 (restic, the MediaAgents) walks into it
const world = new World({ dir: path.join(dir, "world") });
const password = randomBytes(16).toString("hex");
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const loadBefore = load();
let mgr: ReturnType<typeof testManager> | undefined;
let nsCreated = false;
try {
  await world.start();
  const kube = world.cp.client;
  await installCrds(kube);

  // The fixture, not timed: three repositories that outlived the cluster.
  const fx = await policyFixture({ dir, worldDir: world.dir, ns, n, password });
  const { expected, before, list } = fx;
  let t: number;

  // The operator, running before the manifests come back.
  mgr = testManager(world.cp.kubeconfig);
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    allowHostPathLibraries: true,
    autoAuxCopy: false,
    dataAging: false,
    scanIntervalSeconds: 3600,
  });
  const byResource = countRequestsByResource(mgr);
  await mgr.start();
  // The namespace and its default ServiceAccount (MediaAgent pods need it) exist before the clock starts.
  await kube.create("/api/v1/namespaces", { metadata: { name: ns } });
  nsCreated = true;
  await waitFor("service account", async () =>
    (await kube.get(`/api/v1/namespaces/${ns}/serviceaccounts/default`).catch(() => undefined)) ? true : undefined,
  );
  await sleep(1000);

  // The run: the manifests, one create after another, then polls every 100 ms.
  const reqBefore = await requestsByMethod(mgr);
  byResource.reset();
  const runStart = performance.now();
  await createPolicyManifests(kube, ns, fx.libRoot, password);
  const createdMs = performance.now() - runStart;
  const at: Record<Copy, { ready?: number; scanned?: number; available?: number; status?: Obj }> = {
    primary: {},
    offsite: {},
    monthly: {},
  };
  type PodSpan = { task: string; seen: number; last: number; ended?: number; phase?: string };
  const pods = new Map<string, PodSpan>();
  let libraryReady: number | undefined;
  const deadline = runStart + Math.max(600_000, n * 60);
  for (;;) {
    const now = performance.now();
    const [copies, lib, podList] = await Promise.all([
      kube.get(api("policycopies")),
      libraryReady === undefined ? kube.get(api("libraries", "disk")) : undefined,
      kube.get(`/api/v1/namespaces/${ns}/pods`),
    ]);
    if (lib?.status?.phase === "Ready") libraryReady = now;
    for (const p of podList.items as Obj[]) {
      const e: PodSpan = pods.get(p.metadata.name) ?? {
        task: p.metadata.labels?.["auxo.dev/task"] ?? "?",
        seen: now,
        last: now,
      };
      e.last = now;
      if (!e.ended && (p.status?.phase === "Succeeded" || p.status?.phase === "Failed")) {
        e.ended = now;
        e.phase = p.status.phase;
      }
      pods.set(p.metadata.name, e);
    }
    for (const o of copies.items as Obj[]) {
      const c = o.metadata.name as Copy;
      const s = o.status ?? {};
      const a = at[c];
      if (!a) continue;
      a.status = s;
      if (s.repositoryReady === true) a.ready ??= now;
      if (s.lastScanTime) a.scanned ??= now;
      if (s.repositoryReady === true && s.lastScanTime && s.jobs?.available === expected.get(c)) a.available ??= now;
    }
    if (COPIES.every((c) => at[c].available !== undefined)) break;
    if (now > deadline) {
      for (const c of COPIES) console.error(`${c}: ${JSON.stringify(at[c].status)}`);
      throw new Error(`the copies were not all ready and scanned after ${secs(now - runStart)}`);
    }
    await sleep(Math.max(0, 100 - (performance.now() - now)));
  }
  const runMs = Math.max(...COPIES.map((c) => at[c].available as number)) - runStart;
  const requests = delta(await requestsByMethod(mgr), reqBefore);
  const resources = new Map(byResource.counts);

  // Peer: plain restic snapshots --json of the three repositories, one after another; and the repositories unchanged.
  const peer = new Map<Copy, number>();
  const after = new Map<Copy, Set<string>>();
  for (const c of COPIES) {
    t = performance.now();
    const snaps = await list(c);
    peer.set(c, performance.now() - t);
    after.set(c, new Set(snaps.map((s) => s.id)));
  }
  const peerMs = [...peer.values()].reduce((a, b) => a + b, 0);
  const unchanged = COPIES.map((c) => {
    const b = before.get(c) as Set<string>;
    const a = after.get(c) as Set<string>;
    return { c, same: a.size === b.size && [...b].every((id) => a.has(id)), b: b.size, a: a.size };
  });

  const rel = (ms: number | undefined) => (ms === undefined ? "never" : `+${secs(ms - runStart)}`);
  const counts = COPIES.map((c) => `${c} ${expected.get(c)}`).join(", ");
  console.log(
    `rebuild of a storage policy's view from its library after losing the cluster, ${n} jobs (${SUBCLIENTS} subclients, hourly, a full every 7th), 3 copies on one filesystem library (hostPath):`,
  );
  console.log(
    `  fixture (not part of the run): ${secs(fx.ms.total)}: restic init ×3, 1 backup, 2 copies ${secs(fx.ms.restic)}; ${fx.files} snapshot files and ${fx.events} job events written ${secs(fx.ms.gen)}; restic snapshots ×3 + check of offsite ${secs(fx.ms.check)}`,
  );
  console.log(`    jobs in the repositories: ${counts} (monthly: every 28th job, all fulls)`);
  console.log(
    `  manifests created (Secret, Library, StoragePolicy, 3 PolicyCopies; namespace ready before): ${secs(createdMs)}; library Ready ${rel(libraryReady)}`,
  );
  console.log(`  every copy ready and scanned, jobs available as in its repository: ${secs(runMs)} after the first create`);
  for (const c of COPIES) {
    const a = at[c];
    console.log(
      `    ${c}: repository ready ${rel(a.ready)}, scanned ${rel(a.scanned)}, available ${a.status?.jobs?.available}/${expected.get(c)} ${rel(a.available)}`,
    );
  }
  for (const [name, p] of [...pods].sort((x, y) => x[1].seen - y[1].seen))
    console.log(
      `    pod ${name} (${p.task}): first listed ${rel(p.seen)}, ${p.ended ? `${p.phase} ${rel(p.ended)}` : `last listed ${rel(p.last)}`}`,
    );
  console.log(
    `  operator API requests during the run: ${total(requests)}: ${sorted(requests)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  );
  console.log(
    `    by resource: ${sorted(resources)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  );
  console.log(
    `  restic snapshots --json (peer, the 3 repositories one after another, uid ${AGENT_UID}): ${secs(peerMs)} (${COPIES.map((c) => `${c} ${secs(peer.get(c) as number)}`).join(", ")})`,
  );
  console.log(`  ratio rebuild/restic snapshots: ${(runMs / peerMs).toFixed(2)}×`);
  console.log(
    `  repositories unchanged (snapshot IDs from restic snapshots, before → after): ${unchanged
      .map((u) => `${u.c} ${u.b} → ${u.a} ${u.same ? "same" : "CHANGED"}`)
      .join(", ")}`,
  );
  console.log(`  load average before: ${loadBefore}; after: ${load()} (${os.cpus().length} cores)`);
  if (unchanged.some((u) => !u.same)) process.exitCode = 1;
} finally {
  if (nsCreated) await removeNamespace(world.cp.client, ns);
  await mgr?.stop();
  await world.stop();
  rmSync(dir, { recursive: true, force: true });
}
