// The work queue and reconcile contract against the real API server: a burst of 1,000 updates folds into a few
// reconciles; failures back off exponentially; a terminal error is not retried; /metrics carries
// controller-runtime's names.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Manager } from "../../src/runtime/manager.ts";
import { addDemoController, DEMO_LABEL, SEEN } from "../fixtures/demo-controller.ts";
import type { KubeRest } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import { admin, freshNamespace, world } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let mgr: Manager;
const reconciles: { key: string; value: string | undefined; at: number }[] = [];

const cmPath = (name?: string) => `/api/v1/namespaces/${ns}/configmaps${name ? `/${name}` : ""}`;
const demo = (name: string, data: Record<string, string>) => ({ metadata: { name, labels: { [DEMO_LABEL]: "true" } }, data });

beforeAll(async () => {
  kube = admin();
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "queue"));
  mgr = testManager(world().kubeconfig, { leaderElection: { namespace: ns, name: "queue-test" }, probeAddress: "127.0.0.1:0" });
  addDemoController(mgr, ns, {
    delayMs: 200,
    failures: true,
    onReconcile: (key, value) => reconciles.push({ key, value, at: Date.now() }),
  });
  await mgr.start();
  await waitFor("leadership", () => (mgr.isLeader() ? true : undefined));
});

afterAll(async () => {
  await mgr?.stop();
  await removeNs?.();
  kube?.close();
});

describe("work queue", () => {
  it("folds a burst of 1,000 updates to one object into a handful of reconciles", async () => {
    await kube.create(cmPath(), demo("burst", { value: "0" }));
    await waitFor("first reconcile", async () =>
      (await kube.get(cmPath("burst"))).metadata.annotations?.[SEEN] === "0" ? true : undefined,
    );
    const mark = reconciles.length;
    const started = Date.now();
    // 1,000 updates, 20 in flight at a time.
    let next = 1;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next <= 1000) {
          const i = next++;
          await kube.patch(cmPath("burst"), { data: { value: String(i), seq: String(i) } });
        }
      }),
    );
    const burstMs = Date.now() - started;
    const final = (await kube.get(cmPath("burst"))).data.value;
    await waitFor("the final state reconciled", async () =>
      (await kube.get(cmPath("burst"))).metadata.annotations?.[SEEN] === final ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const during = reconciles.slice(mark).filter((r) => r.key === `${ns}/burst`);
    console.log(`1,000 updates in ${burstMs} ms → ${during.length} reconciles (each takes 200 ms)`);
    // Every reconcile takes 200 ms, so the queue can fold the burst into at most one reconcile per 200 ms (+2).
    expect(during.length).toBeLessThanOrEqual(Math.ceil(burstMs / 200) + 3);
    expect(during.length).toBeLessThan(60);
    expect(during.at(-1)?.value).toBe(final);
  });

  it("backs off failing items exponentially and never retries a terminal error", async () => {
    await kube.create(cmPath(), demo("flaky", { value: "x", fail: "retry" }));
    await waitFor("five attempts", () => (reconciles.filter((r) => r.key === `${ns}/flaky`).length >= 5 ? true : undefined), {
      timeoutMs: 20_000,
    });
    const at = reconciles.filter((r) => r.key === `${ns}/flaky`).map((r) => r.at);
    const gaps = at.slice(1, 5).map((t, i) => t - (at[i] as number) - 200); // minus the 200 ms of work
    console.log(`retry gaps (ms, work time removed): ${gaps.join(", ")}`);
    // base 100 ms, doubling: 100, 200, 400, 800 (timers are never early; allow 150 ms of lateness)
    gaps.forEach((g, i) => {
      expect(g).toBeGreaterThanOrEqual(100 * 2 ** i - 5);
      expect(g).toBeLessThan(100 * 2 ** i + 150);
    });
    await kube.create(cmPath(), demo("doomed", { value: "x", fail: "terminal" }));
    await waitFor("doomed's attempt", () => (reconciles.some((r) => r.key === `${ns}/doomed`) ? true : undefined));
    await new Promise((r) => setTimeout(r, 3000));
    expect(reconciles.filter((r) => r.key === `${ns}/doomed`)).toHaveLength(1);
    // Fixing the object ends the retries: a success resets the backoff.
    await kube.patch(cmPath("flaky"), { data: { fail: "no" } });
    await waitFor("flaky reconciled", async () =>
      (await kube.get(cmPath("flaky"))).metadata.annotations?.[SEEN] === "x" ? true : undefined,
    );
  });

  it("serves controller-runtime's metric names on /metrics", async () => {
    const text = await (await fetch(`http://127.0.0.1:${mgr.ports[0]}/metrics`)).text();
    for (const name of [
      "controller_runtime_reconcile_total",
      "controller_runtime_reconcile_errors_total",
      "controller_runtime_reconcile_time_seconds_bucket",
      "workqueue_depth",
      "workqueue_adds_total",
      "workqueue_retries_total",
      "leader_election_master_status",
    ]) {
      expect(text).toContain(name);
    }
    expect(text).toMatch(/controller_runtime_reconcile_total\{controller="demo",result="success"\} [1-9]/);
    expect(text).toMatch(/controller_runtime_reconcile_errors_total\{controller="demo"\} [1-9]/);
    expect(text).toMatch(/leader_election_master_status\{name="queue-test"\} 1/);
    const ready = await fetch(`http://127.0.0.1:${mgr.ports[0]}/readyz`);
    expect(ready.status).toBe(200);
  });
});
