// Reconcile latency of the runtime against a real API server: from sending a create request to the start of its
// reconcile (API write + watch delivery + queue), and to the end of the reconcile's own write (one server-side apply).
//   node bench/reconcile-latency.ts [objects=300]
import { ConfigMaps } from "../src/kube/resources.ts";
import { addDemoController, DEMO_LABEL } from "../test/fixtures/demo-controller.ts";
import { ControlPlane } from "../test/harness/control-plane.ts";
import { testManager } from "../test/harness/operator-testing.ts";

const n = Number(process.argv[2] ?? 300);
const cp = new ControlPlane({ controllerManager: false });
await cp.start();
const created = new Map<string, number>();
const started = new Map<string, number>();
const finished = new Map<string, number>();
const mgr = testManager(cp.kubeconfig);
addDemoController(mgr, "default", {
  onReconcile: (key) => {
    if (!started.has(key)) started.set(key, performance.now());
  },
  onAction: (key) => {
    if (!finished.has(key)) finished.set(key, performance.now());
  },
});
await mgr.start();
const inf = mgr.informer(ConfigMaps, { namespace: "default", labelSelector: `${DEMO_LABEL}=true` });

for (let i = 0; i < n; i++) {
  const name = `bench-${i}`;
  created.set(`default/${name}`, performance.now());
  await cp.client.create("/api/v1/namespaces/default/configmaps", {
    metadata: { name, labels: { [DEMO_LABEL]: "true" } },
    data: { value: String(i) },
  });
  // One object at a time: latency, not throughput.
  while (!finished.has(`default/${name}`)) await new Promise((r) => setTimeout(r, 1));
}

const pct = (xs: number[], p: number) => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] as number;
const toStart = [...created].map(([k, t]) => (started.get(k) as number) - t);
const toDone = [...created].map(([k, t]) => (finished.get(k) as number) - t);
const f = (x: number) => `${x.toFixed(1)} ms`;
console.log(`reconcile latency over ${n} objects (create request sent → reconcile starts / → reconcile's own write done):`);
console.log(`  to start: p50 ${f(pct(toStart, 50))}  p95 ${f(pct(toStart, 95))}  max ${f(Math.max(...toStart))}`);
console.log(`  to done:  p50 ${f(pct(toDone, 50))}  p95 ${f(pct(toDone, 95))}  max ${f(Math.max(...toDone))}`);
console.log(`  informer: ${inf.stats.lists} list, ${inf.stats.watches} watch, ${inf.stats.watchErrors} errors`);
await mgr.stop();
await cp.stop();
