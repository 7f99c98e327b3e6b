// Many policies: P StoragePolicies × 3 PolicyCopies (a primary and two synchronous secondaries) on 3 shared
// filesystem Libraries, in one namespace, created as fast as the API server takes them, with the operator (all its
// controllers, testManager + registerControllers as in the tests) running in this process. Library probes are off
// (probeLibraries: false) and every policy's automatic aux copy is disabled, so no MediaAgent pod runs: this measures
// the control loop alone. The world is the control plane (etcd, kube-apiserver) without node runner or S3 server, so
// this process holds only the operator and the bench's own small client.
//   node bench/policies-200.ts [policies=200]
// Measures: the time until every policy's status lists its 3 copies; the operator process's memory (RSS, V8 heap used
// after a forced GC) before the objects exist and once everything is settled (every copy Ready=True for its current
// generation, every policy listing its 3 copies, both controllers' queues empty and idle for 3 s); and the
// storagepolicy and policycopy controllers' reconcile durations and counts.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { registerControllers } from "../src/controllers/index.ts";
import { PolicyCopies, StoragePolicies } from "../src/controllers/resources.ts";
import { type KubeObject, Secrets } from "../src/kube/resources.ts";
import type { Controller, ControllerOptions } from "../src/runtime/controller.ts";
import { ControlPlane } from "../test/harness/control-plane.ts";
import { installCrds } from "../test/harness/crds.ts";
import type { Obj, WatchHandle } from "../test/harness/kube-rest.ts";
import { sleep, waitFor } from "../test/harness/net.ts";
import { testManager } from "../test/harness/operator-testing.ts";
import { countRequestsByResource, delta, load, pct, pool, requestsByMethod, secs, sorted, total } from "./lib.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const p = Number(process.argv[2] ?? 200);
const LIBRARIES = 3;
const CREATORS = 8;
const ns = "bench";
const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-bench-policies-"));
const cp = new ControlPlane({ dir: path.join(dir, "cp"), controllerManager: false });
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;

function memory(): { rss: number; heap: number } {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

const loadBefore = load();
let mgr: ReturnType<typeof testManager> | undefined;
try {
  await cp.start();
  const kube = cp.client;
  await installCrds(kube);
  await kube.create("/api/v1/namespaces", { metadata: { name: ns } });
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password: "x".repeat(32) } });
  for (let l = 0; l < LIBRARIES; l++)
    await kube.create(api("libraries"), auxo("Library", `lib-${l}`, { filesystem: { hostPath: { path: path.join(dir, `lib-${l}`) } } }));

  // The operator: every controller, reconcile durations and counts taken around each reconcile.
  mgr = testManager(cp.kubeconfig);
  const durations = new Map<string, number[]>();
  const add = mgr.addController.bind(mgr);
  mgr.addController = <T extends KubeObject>(opts: ControllerOptions<T>): Controller<T> => {
    const list: number[] = [];
    durations.set(opts.name, list);
    return add({
      ...opts,
      reconcile: async (req, ctx) => {
        const t0 = performance.now();
        try {
          return await opts.reconcile(req, ctx);
        } finally {
          list.push(performance.now() - t0);
        }
      },
    });
  };
  registerControllers(mgr, { agentImage: "auxo:dev", probeLibraries: false, autoAuxCopy: false });
  const byResource = countRequestsByResource(mgr);
  await mgr.start();
  await waitFor("the libraries' status", async () => {
    const libs = (await kube.get(api("libraries"))).items as Obj[];
    return libs.every((l) => l.status?.conditions?.some((c: Obj) => c.type === "Ready")) ? true : undefined;
  });
  await sleep(2000);
  const memBefore = memory();
  const requestsBefore = await requestsByMethod(mgr);
  byResource.reset();
  for (const l of durations.values()) l.length = 0;

  // Watch the policies: when each first lists its 3 copies in status.
  const listed = new Map<string, number>();
  let watching = true;
  let watch: WatchHandle | undefined;
  const watcher = (async () => {
    while (watching) {
      const rv = (await kube.get(api("storagepolicies"))).metadata.resourceVersion as string;
      watch = kube.watch(api("storagepolicies"), rv, (type, o) => {
        if (type !== "ADDED" && type !== "MODIFIED") return;
        if ((o.status?.copies ?? []).length === 3 && !listed.has(o.metadata.name)) listed.set(o.metadata.name, performance.now());
      });
      await watch.done;
    }
  })();
  await sleep(500);

  // Create everything: each policy, then its copies (primary on lib i%3, the secondaries on the two others).
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  const copyCreated = new Map<string, number>(); // policy → when its last copy's create returned
  const t0 = performance.now();
  await pool(
    Array.from({ length: p }, (_, i) => i),
    CREATORS,
    async (i) => {
      const policy = `policy-${i}`;
      await kube.create(
        api("storagepolicies"),
        auxo("StoragePolicy", policy, { primaryCopy: `${policy}-primary`, auxCopySchedule: { enabled: false } }),
      );
      for (const [k, role] of ["primary", "offsite", "vault"].entries())
        await kube.create(
          api("policycopies"),
          auxo("PolicyCopy", `${policy}-${role}`, {
            storagePolicy: policy,
            library: `lib-${(i + k) % LIBRARIES}`,
            encryption: { passwordSecret: { name: "repo-password" } },
            ...(role === "primary" ? {} : { backups: { mode: "All" } }),
          }),
        );
      copyCreated.set(policy, performance.now());
    },
  );
  const createdMs = performance.now() - t0;
  await waitFor("every policy to list its 3 copies", () => (listed.size === p ? true : undefined), {
    timeoutMs: 1200_000,
    intervalMs: 50,
  });
  const allListedMs = Math.max(...listed.values()) - t0;

  // Settled: every copy Ready for its generation, and both controllers idle with empty queues for 3 s.
  const readyCopies = async () =>
    ((await kube.get(api("policycopies"))).items as Obj[]).filter((c) =>
      c.status?.conditions?.some((x: Obj) => x.type === "Ready" && x.status === "True" && x.observedGeneration === c.metadata.generation),
    ).length;
  await waitFor("every copy Ready", async () => ((await readyCopies()) === 3 * p ? true : undefined), {
    timeoutMs: 1200_000,
    intervalMs: 250,
  });
  const readyMs = performance.now() - t0;
  const gauge = async (metric: { get: () => Promise<{ values: { labels: Obj; value: number }[] }> }) =>
    (await metric.get()).values.filter((v) => ["storagepolicy", "policycopy"].includes(String(v.labels.controller)));
  let quietSince = performance.now();
  await waitFor(
    "the queues to drain",
    async () => {
      const busy =
        (await gauge(mgr!.metrics.workqueueDepth)).some((v) => v.value > 0) ||
        (await gauge(mgr!.metrics.activeWorkers)).some((v) => v.value > 0);
      if (busy) quietSince = performance.now();
      return performance.now() - quietSince >= 3000 ? true : undefined;
    },
    { timeoutMs: 1200_000, intervalMs: 20 },
  );
  const settledMs = quietSince - t0;
  clearInterval(sampler);
  const memAfter = memory();
  peakRss = Math.max(peakRss, memAfter.rss);
  const requests = delta(await requestsByMethod(mgr), requestsBefore);
  // What the operator's caches hold (the shared informers registerControllers made), as JSON.
  const cached = [StoragePolicies, PolicyCopies, Secrets].map((t) => {
    const items = mgr!.informer(t).list();
    return `${items.length} ${t.plural} ${mib(Buffer.byteLength(JSON.stringify(items)))}`;
  });
  watching = false;
  watch?.stop();
  await watcher;

  const perPolicy = [...listed].map(([name, at]) => at - (copyCreated.get(name) as number));
  console.log(`${p} StoragePolicies × 3 PolicyCopies (${3 * p} copies) on ${LIBRARIES} filesystem libraries, one namespace, no pods:`);
  console.log(`  created (${CREATORS} clients at once): ${secs(createdMs)}`);
  console.log(`  every policy's status lists its 3 copies: ${secs(allListedMs)} after the first create`);
  console.log(
    `    per policy, from its last copy's create to its status listing 3: p50 ${secs(pct(perPolicy, 50))}  p95 ${secs(pct(perPolicy, 95))}  max ${secs(Math.max(...perPolicy))}`,
  );
  console.log(`  every copy Ready=True (own generation): ${secs(readyMs)}; queues empty (settled): ${secs(settledMs)}`);
  console.log(
    `  operator process memory (this process; after a forced GC): before RSS ${mib(memBefore.rss)}, heap ${mib(memBefore.heap)}` +
      `; settled RSS ${mib(memAfter.rss)}, heap ${mib(memAfter.heap)}` +
      `; growth RSS +${mib(memAfter.rss - memBefore.rss)}, heap +${mib(memAfter.heap - memBefore.heap)}` +
      ` (${((memAfter.heap - memBefore.heap) / (4 * p) / 1024).toFixed(1)} KiB heap per object); peak RSS ${mib(peakRss)}`,
  );
  console.log(`    the caches hold (as JSON): ${cached.join(", ")}`);
  for (const c of ["storagepolicy", "policycopy"]) {
    const d = durations.get(c) ?? [];
    const sum = d.reduce((a, b) => a + b, 0) / 1000;
    console.log(
      `  ${c} reconciles: ${d.length} (${(d.length / (c === "storagepolicy" ? p : 3 * p)).toFixed(1)} per object), duration p50 ${ms(pct(d, 50) / 1000)}  p95 ${ms(pct(d, 95) / 1000)}  max ${ms(Math.max(...d) / 1000)}, total ${secs(sum * 1000)}`,
    );
  }
  const hist = (await mgr.metrics.reconcileTime.get()).values;
  const h = (c: string, suffix: string) =>
    hist.find((v) => v.labels.controller === c && (v as { metricName?: string }).metricName?.endsWith(suffix))?.value ?? 0;
  console.log(
    `  (histogram controller_runtime_reconcile_time_seconds since start: storagepolicy count ${h("storagepolicy", "_count")} sum ${h("storagepolicy", "_sum").toFixed(1)} s; policycopy count ${h("policycopy", "_count")} sum ${h("policycopy", "_sum").toFixed(1)} s)`,
  );
  console.log(
    `  operator API requests: ${total(requests)}: ${sorted(requests)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  );
  console.log(
    `    by resource: ${sorted(byResource.counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  );
  console.log(`  load average before: ${loadBefore}; after: ${load()} (2 cores)`);
} finally {
  await mgr?.stop();
  await cp.stop();
  rmSync(dir, { recursive: true, force: true });
}
