// Streams: the same J jobs (M MiB of incompressible data each, every job its own subclient, so they are independent)
// copied by one AuxCopyJob with `streams: 1` and then, to fresh targets, by one with `streams: 4`.
//
// What a stream is here (src/policy/auxcopy.ts, src/policy/streams.ts): one MediaAgent copy pod. An
// AuxCopyJob runs one copy pod per target copy at a time (one pass: it copies that copy's jobs one after another with
// a single `restic copy`), and spec.streams caps how many of its copy pods run at once (library maxStreams too, default
// 10). With a single target copy, 1 and 4 streams are the same thing, so the policy here has 4 synchronous secondary
// copies per run, all filled from the primary: `streams: 1` copies to them one after the other, `streams: 4` to all
// four at once. Each run moves 4 × J × M MiB. Primary and secondaries are on one filesystem library (hostPath).
// A third run is a control for the 1-stream figure: one stream enforced by the library's maxStreams: 1 instead of the
// job's streams: 1. Each run reports the most copy pods it was seen running at once.
//   node bench/streams.ts [jobs=16] [mib=64]
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
import { AGENT_UID, load, pool, resticAsAgent, secs } from "./lib.ts";

const jobs = Number(process.argv[2] ?? 16);
const mib = Number(process.argv[3] ?? 64);
const TARGETS = 4;
const ns = "bench";
const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-bench-streams-"));
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

  mgr = testManager(world.cp.kubeconfig);
  // The library is a hostPath folder: allowed only when the operator is told so (docs/tenancy.md).
  registerControllers(mgr, { agentImage: "auxo:dev", autoAuxCopy: false, allowHostPathLibraries: true });
  await mgr.start();

  // Three sets of 4 secondaries: one for each run, so that each starts from empty targets.
  const sets = { 1: ["s1-a", "s1-b", "s1-c", "s1-d"], l: ["l1-a", "l1-b", "l1-c", "l1-d"], 4: ["s4-a", "s4-b", "s4-c", "s4-d"] };
  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { hostPath: { path: libRoot } } }));
  await kube.create(api("storagepolicies"), auxo("StoragePolicy", "gold", { primaryCopy: "primary", auxCopySchedule: { enabled: false } }));
  await kube.create(api("policycopies"), auxo("PolicyCopy", "primary", { storagePolicy: "gold", library: "disk", encryption: enc }));
  for (const c of [...sets[1], ...sets.l, ...sets[4]])
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", c, {
        storagePolicy: "gold",
        library: "disk",
        deduplication: { enabled: true },
        backups: { mode: "All" },
        encryption: enc,
      }),
    );
  for (const c of ["primary", ...sets[1], ...sets.l, ...sets[4]])
    await waitFor(`${c} initialised`, async () => ((await kube.get(api("policycopies", c))).status?.repositoryReady ? true : undefined), {
      timeoutMs: 300_000,
      intervalMs: 300,
    });

  // The jobs: each its own folder of random bytes and its own subclient, a full. Fed 2 at once; not timed.
  const primary = path.join(libRoot, ns, "gold", "primary");
  const restic = resticAsAgent(world.dir, scratch, password);
  const data = path.join(scratch, "data");
  mkdirSync(data);
  let t = performance.now();
  await pool(
    Array.from({ length: jobs }, (_, i) => i),
    2,
    async (i) => {
      const folder = path.join(data, String(i));
      mkdirSync(folder);
      writeFileSync(path.join(folder, "blob"), randomBytes(mib << 20));
      execFileSync("chown", ["-R", `${AGENT_UID}:${AGENT_UID}`, folder]);
      const job = { jobId: `job-${i}`, type: "full", status: "completed", client: "app", subclient: `sub-${i}` } as const;
      await restic(primary, {}, "backup", "-q", "--host", "app", ...tagsFor(job).flatMap((x) => ["--tag", x]), folder);
      rmSync(folder, { recursive: true });
    },
  );
  const feedMs = performance.now() - t;
  await new Promise((r) => setTimeout(r, 2000));

  // Three runs, each to its own 4 fresh targets: spec.streams 1; one stream again, but capped by the library's
  // maxStreams (a control: that cap counts pods by label, the job's cap by the job's own pods); spec.streams 4.
  const runs = [
    { name: "streams-1", label: "streams: 1", spec: { streams: 1 }, targets: sets[1], libraryCap: undefined },
    { name: "library-1", label: "library maxStreams: 1", spec: {}, targets: sets.l, libraryCap: 1 },
    { name: "streams-4", label: "streams: 4", spec: { streams: 4 }, targets: sets[4], libraryCap: undefined },
  ];
  const results = new Map<
    string,
    { ms: number; pods: [string, number, number][]; onTargets: number[]; copied: number; maxAtOnce: number }
  >();
  for (const run of runs) {
    // Start from a quiet world: no scan pod of the previous run left running.
    await waitFor(
      "no pod running",
      async () => {
        const all = (await kube.get(`/api/v1/namespaces/${ns}/pods`)).items as Obj[];
        return all.every((p) => p.status?.phase === "Succeeded" || p.status?.phase === "Failed") ? true : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 250 },
    );
    if (run.libraryCap) await kube.patch(api("libraries", "disk"), { spec: { maxStreams: run.libraryCap } });
    const pods = new Map<string, { seen: number; done?: number }>();
    t = performance.now();
    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", run.name, { storagePolicy: "gold", copies: run.targets, ...run.spec }));
    const st = await waitFor(
      `auxcopyjob ${run.name} to finish`,
      async () => {
        const list = await kube.get(`/api/v1/namespaces/${ns}/pods?labelSelector=auxo.dev%2Fauxcopyjob%3D${run.name}`);
        const at = performance.now(); // one time per poll: a pod that ends and one that starts in it do not overlap
        for (const p of list.items as Obj[]) {
          const e = pods.get(p.metadata.name) ?? { seen: at };
          if (!e.done && (p.status?.phase === "Succeeded" || p.status?.phase === "Failed")) e.done = at;
          pods.set(p.metadata.name, e);
        }
        const s = (await kube.get(api("auxcopyjobs", run.name))).status;
        return s && terminal.includes(s.phase) ? s : undefined;
      },
      { timeoutMs: 1800_000, intervalMs: 100 },
    );
    const ms = performance.now() - t;
    if (run.libraryCap) await kube.patch(api("libraries", "disk"), { spec: { maxStreams: null } });
    if (st.phase !== "Completed") throw new Error(`${run.name} ended ${st.phase}: ${st.message}`);
    const onTargets: number[] = [];
    for (const c of run.targets)
      onTargets.push((JSON.parse(await restic(path.join(libRoot, ns, "gold", c), {}, "snapshots", "--json")) as unknown[]).length);
    const spans: [string, number, number][] = [...pods].map(([p, e]) => [p, e.seen - t, (e.done ?? performance.now()) - t]);
    // Most copy pods seen running at once (from the bench's 100 ms polls).
    const edges = spans.flatMap(([, a, b]) => [[a, 1] as const, [b, -1] as const]).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    let now = 0;
    let maxAtOnce = 0;
    for (const [, d] of edges) maxAtOnce = Math.max(maxAtOnce, (now += d));
    results.set(run.name, { ms, pods: spans, onTargets, copied: st.jobsCopied, maxAtOnce });
  }

  const moved = TARGETS * jobs * mib;
  console.log(
    `streams: ${jobs} jobs × ${mib} MiB (incompressible, one subclient each), copied from the primary to ${TARGETS} synchronous copies, filesystem → filesystem:`,
  );
  console.log(`  fed the primary: ${jobs} restic backups in ${secs(feedMs)} (not part of the runs)`);
  for (const run of runs) {
    const r = results.get(run.name) as NonNullable<ReturnType<typeof results.get>>;
    console.log(
      `  ${run.label}: ${secs(r.ms)}  ${(moved / (r.ms / 1000)).toFixed(0)} MiB/s  (${moved} MiB; jobs copied ${r.copied}; on the targets: ${r.onTargets.join(", ")}; most copy pods at once: ${r.maxAtOnce})`,
    );
    for (const [p, a, b] of r.pods) console.log(`    pod ${p}: +${secs(a)} → +${secs(b)}`);
  }
  const ms = (name: string) => (results.get(name) as { ms: number }).ms;
  console.log(
    `  ratio 4-stream/1-stream throughput: ${(ms("streams-1") / ms("streams-4")).toFixed(2)}× against streams: 1, ` +
      `${(ms("library-1") / ms("streams-4")).toFixed(2)}× against library maxStreams: 1`,
  );
  console.log(`  load average before: ${loadBefore}; after: ${load()} (2 cores)`);
} finally {
  await mgr?.stop();
  await world.stop();
  rmSync(dir, { recursive: true, force: true });
}
