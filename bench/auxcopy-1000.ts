// One aux copy of many small jobs: a StoragePolicy with a primary copy and one synchronous secondary copy, both on a
// filesystem library (hostPath), the primary fed with N small real restic backups tagged as jobs; then one
// AuxCopyJob (default jobLimit 1000) copies them through MediaAgent pods. Measures the wall time from the AuxCopyJob's
// creation to Completed, the jobs on the target (read back with plain restic), and the API requests the operator made
// meanwhile (its own rest_client_requests_total). Peer: plain `restic copy` of the same N snapshots between two fresh
// repositories (a copy of the primary's folder, and a new repository with its chunker parameters), same run.
//   node bench/auxcopy-1000.ts [jobs=1000]
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { registerControllers } from "../src/controllers/index.ts";
import { tagsFor } from "../src/policy/catalog.ts";
import { installCrds } from "../test/harness/crds.ts";
import type { Obj } from "../test/harness/kube-rest.ts";
import { waitFor } from "../test/harness/net.ts";
import { testManager } from "../test/harness/operator-testing.ts";
import { World } from "../test/harness/world.ts";
import { AGENT_UID, countRequestsByResource, delta, load, pool, requestsByMethod, resticAsAgent, secs, sorted, total } from "./lib.ts";

const n = Number(process.argv[2] ?? 1000);
const FEEDERS = 4;
const SUBCLIENTS = 20;
const ns = "bench";
const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-bench-auxcopy-"));
chmodSync(dir, 0o755); // uid 65532 (the feeding restic) walks into it
const world = new World({ dir: path.join(dir, "world") });
const password = randomBytes(16).toString("hex");
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const enc = { passwordSecret: { name: "repo-password" } };
const terminal = ["Completed", "CompletedWithErrors", "Failed", "Killed"];

const loadBefore = load();
let mgr: ReturnType<typeof testManager> | undefined;
try {
  await world.start();
  const kube = world.cp.client;
  await installCrds(kube);
  await kube.create("/api/v1/namespaces", { metadata: { name: ns } });
  await waitFor("service account", async () =>
    (await kube.get(`/api/v1/namespaces/${ns}/serviceaccounts/default`).catch(() => undefined)) ? true : undefined,
  );
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
  const libRoot = path.join(dir, "library");
  const scratch = path.join(dir, "scratch");
  mkdirSync(libRoot);
  mkdirSync(scratch);
  execFileSync("chown", [`${AGENT_UID}:${AGENT_UID}`, libRoot, scratch]);

  // The operator in this process, with its defaults (progress read every 2 s); no automatic aux copy.
  mgr = testManager(world.cp.kubeconfig);
  // The library is a hostPath folder: allowed only when the operator is told so (docs/tenancy.md).
  registerControllers(mgr, { agentImage: "auxo:dev", autoAuxCopy: false, allowHostPathLibraries: true });
  const byResource = countRequestsByResource(mgr);
  await mgr.start();

  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { hostPath: { path: libRoot } } }));
  await kube.create(api("storagepolicies"), auxo("StoragePolicy", "gold", { primaryCopy: "primary", auxCopySchedule: { enabled: false } }));
  await kube.create(api("policycopies"), auxo("PolicyCopy", "primary", { storagePolicy: "gold", library: "disk", encryption: enc }));
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "secondary", {
      storagePolicy: "gold",
      library: "disk",
      deduplication: { enabled: true },
      backups: { mode: "All" },
      encryption: enc,
    }),
  );
  for (const c of ["primary", "secondary"])
    await waitFor(`${c} initialised`, async () => ((await kube.get(api("policycopies", c))).status?.repositoryReady ? true : undefined), {
      timeoutMs: 180_000,
      intervalMs: 300,
    });

  // N small jobs (1 KiB of random bytes each, its own folder), 20 subclients, a full then incrementals, fed by
  // several restic processes at once. Not timed as part of the run.
  const primary = path.join(libRoot, ns, "gold", "primary");
  const secondary = path.join(libRoot, ns, "gold", "secondary");
  const restic = resticAsAgent(world.dir, scratch, password);
  const data = path.join(scratch, "data");
  mkdirSync(data);
  for (let i = 0; i < n; i++) {
    mkdirSync(path.join(data, String(i)));
    writeFileSync(path.join(data, String(i), "file"), randomBytes(1024));
  }
  execFileSync("chown", ["-R", `${AGENT_UID}:${AGENT_UID}`, data]);
  let t = performance.now();
  await pool(
    Array.from({ length: n }, (_, i) => i),
    FEEDERS,
    async (i) => {
      const sub = i % SUBCLIENTS;
      const job = {
        jobId: `job-${i}`,
        type: i < SUBCLIENTS ? "full" : "incremental",
        status: "completed",
        client: "app",
        subclient: `sub-${sub}`,
      } as const;
      await restic(
        primary,
        {},
        "backup",
        "-q",
        "--no-scan",
        "--host",
        "app",
        ...tagsFor(job).flatMap((x) => ["--tag", x]),
        path.join(data, String(i)),
      );
    },
  );
  const feedMs = performance.now() - t;
  const onPrimary = (JSON.parse(await restic(primary, {}, "snapshots", "--json")) as unknown[]).length;
  if (onPrimary !== n) throw new Error(`${onPrimary} snapshots on the primary, expected ${n}`);
  // Let the operator settle (its informers and any scan in flight) before counting.
  await new Promise((r) => setTimeout(r, 2000));

  // The run.
  const before = await requestsByMethod(mgr);
  byResource.reset();
  const podTimes = new Map<string, { seen: number; done?: number }>();
  const runs: Obj[] = [];
  const runStart = performance.now();
  await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "run-1", { storagePolicy: "gold" }));
  let name: string | undefined = "run-1";
  while (name) {
    const current: string = name;
    const st = await waitFor(
      `auxcopyjob ${current} to finish`,
      async () => {
        const pods = await kube.get(`/api/v1/namespaces/${ns}/pods?labelSelector=auxo.dev%2Fauxcopyjob%3D${current}`);
        for (const p of pods.items as Obj[]) {
          const e = podTimes.get(p.metadata.name) ?? { seen: performance.now() };
          if (!e.done && (p.status?.phase === "Succeeded" || p.status?.phase === "Failed")) e.done = performance.now();
          podTimes.set(p.metadata.name, e);
        }
        const s = (await kube.get(api("auxcopyjobs", current))).status;
        return s && terminal.includes(s.phase) ? s : undefined;
      },
      { timeoutMs: 1800_000, intervalMs: 100 },
    );
    runs.push({ name: current, ...st });
    name = st.followUpJob;
  }
  const runMs = performance.now() - runStart;
  const requests = delta(await requestsByMethod(mgr), before);
  const resources = new Map(byResource.counts);

  // Read back with plain restic.
  const snaps = JSON.parse(await restic(secondary, {}, "snapshots", "--json")) as { tags?: string[] }[];
  const jobIds = new Set(snaps.map((s) => (s.tags ?? []).find((x) => x.startsWith("auxo.dev/job="))));
  const copied = runs.reduce((a, r) => a + (r.jobsCopied ?? 0), 0);

  // Peer: plain restic copy of the same N snapshots, between a copy of the primary's folder and a fresh repository.
  const peer = path.join(dir, "peer");
  const peerSrc = path.join(peer, "source");
  const peerDst = path.join(peer, "target");
  mkdirSync(peer);
  execFileSync("cp", ["-a", primary, peerSrc]);
  execFileSync("chown", ["-R", `${AGENT_UID}:${AGENT_UID}`, peer]);
  const from = ["--from-repo", peerSrc, "--from-password-file", path.join(scratch, "pw")];
  await restic(peerDst, {}, "init", "-q", ...from, "--copy-chunker-params");
  t = performance.now();
  await restic(peerDst, {}, "copy", "-q", ...from);
  const peerMs = performance.now() - t;
  const onPeer = (JSON.parse(await restic(peerDst, {}, "snapshots", "--json")) as unknown[]).length;

  console.log(
    `aux copy of ${n} small jobs (1 KiB each, ${SUBCLIENTS} subclients), primary → one synchronous copy, filesystem → filesystem:`,
  );
  console.log(`  fed the primary: ${n} restic backups, ${FEEDERS} at once, in ${secs(feedMs)} (not part of the run)`);
  console.log(
    `  AuxCopyJob${runs.length > 1 ? `s ${runs.map((r) => r.name).join(" → ")}` : ` ${runs[0]?.name}`}: created → ${runs.at(-1)?.phase} in ${secs(runMs)}` +
      `  (${(n / (runMs / 1000)).toFixed(1)} jobs/s)`,
  );
  for (const [p, e] of podTimes)
    console.log(
      `    pod ${p}: ${e.done ? `${secs(e.done - e.seen)} from first seen to finished` : "not seen finishing"} (first seen at +${secs(e.seen - runStart)})`,
    );
  console.log(
    `  jobs copied: ${copied} (status); on the target (restic snapshots): ${snaps.length} snapshots, ${jobIds.size} distinct jobs`,
  );
  console.log(
    `  operator API requests during the run: ${total(requests)} (${(total(requests) / Math.max(1, snaps.length)).toFixed(3)} per copied job)`,
  );
  console.log(
    `    by method: ${sorted(requests)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  );
  console.log(
    `    by resource: ${sorted(resources)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  );
  console.log(
    `  restic copy (peer, same ${onPeer} snapshots, fresh repositories): ${secs(peerMs)}  (${(n / (peerMs / 1000)).toFixed(1)} jobs/s)`,
  );
  console.log(`  ratio AuxCopyJob/restic copy: ${(runMs / peerMs).toFixed(2)}×`);
  console.log(`  load average before: ${loadBefore}; after: ${load()} (2 cores)`);
  if (snaps.length !== n || jobIds.size !== n) process.exitCode = 1;
} finally {
  await mgr?.stop();
  await world.stop();
  rmSync(dir, { recursive: true, force: true });
}
