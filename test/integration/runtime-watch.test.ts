// The informer against a real API server that goes away: it recovers after a restart and reconciles what changed
// while the server was down; when its resourceVersion has expired (410) it relists and reconciles the final state
// exactly once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigMaps } from "../../src/kube/resources.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { addDemoController, BY, DEMO_LABEL, SEEN } from "../fixtures/demo-controller.ts";
import { ControlPlane } from "../harness/control-plane.ts";
import { KubeRest } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";

const ns = "default";
const cp = new ControlPlane({ controllerManager: false });
let mgr: Manager;
let other: { kubeconfig: string; stop: () => Promise<void> };
let viaOther: KubeRest;
const actions: { key: string; value: string; at: number }[] = [];

const cmPath = (name?: string) => `/api/v1/namespaces/${ns}/configmaps${name ? `/${name}` : ""}`;
const demo = (name: string, value: string) => ({ metadata: { name, labels: { [DEMO_LABEL]: "true" } }, data: { value } });
const observed = async (kube: KubeRest, name: string, value: string) => {
  const cm = await kube.get(cmPath(name));
  return cm.metadata.annotations?.[SEEN] === value && cm.metadata.annotations?.[BY] === mgr.identity ? true : undefined;
};

beforeAll(async () => {
  await cp.start();
  other = await cp.startSecondApiServer();
  viaOther = KubeRest.fromKubeconfig(other.kubeconfig);
  mgr = testManager(cp.kubeconfig);
  addDemoController(mgr, ns, { onAction: (key, value) => actions.push({ key, value, at: Date.now() }) });
  await mgr.start();
});

afterAll(async () => {
  await mgr?.stop();
  viaOther?.close();
  await cp.stop();
});

describe("informer resilience", () => {
  it("recovers after the API server restarts and reconciles a change made while it was down", async () => {
    await cp.client.create(cmPath(), demo("alpha", "1"));
    await waitFor("alpha reconciled", () => observed(cp.client, "alpha", "1"));
    const inf = mgr.informer(ConfigMaps, { namespace: ns, labelSelector: `${DEMO_LABEL}=true` });
    const watchesBefore = inf.stats.watches;

    await cp.stopApiServer();
    // The cluster moves on through another API server while the operator's is down.
    await viaOther.patch(cmPath("alpha"), { data: { value: "2" } });
    await viaOther.create(cmPath(), demo("beta", "1"));
    await new Promise((r) => setTimeout(r, 2000));
    await cp.startApiServerAgain();

    await waitFor("alpha's change reconciled", () => observed(cp.client, "alpha", "2"), { timeoutMs: 60_000 });
    await waitFor("beta reconciled", () => observed(cp.client, "beta", "1"), { timeoutMs: 60_000 });
    expect(inf.stats.watches).toBeGreaterThan(watchesBefore);
    expect(inf.stats.watchErrors).toBeGreaterThan(0);
  });

  it("relists after a 410 and reconciles the final state once, losing nothing", async () => {
    await cp.client.create(cmPath(), demo("gamma", "0"));
    await waitFor("gamma reconciled", () => observed(cp.client, "gamma", "0"));
    const inf = mgr.informer(ConfigMaps, { namespace: ns, labelSelector: `${DEMO_LABEL}=true` });
    const relists = inf.stats.relistsAfterExpiry;
    const listsBefore = inf.stats.lists;

    await cp.stopApiServer();
    for (let i = 1; i <= 50; i++) await viaOther.patch(cmPath("gamma"), { data: { value: String(i) } });
    await viaOther.delete(cmPath("beta"));
    // Compacting etcd's history makes the informer's last resourceVersion unusable: the watch must get 410.
    cp.compactEtcd();
    const mark = actions.length;
    await cp.startApiServerAgain();

    await waitFor("gamma's final state reconciled", () => observed(cp.client, "gamma", "50"), { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 1500)); // room for a duplicate to show up, if there were one
    expect(inf.stats.relistsAfterExpiry).toBeGreaterThan(relists);
    expect(inf.stats.lists).toBeGreaterThan(listsBefore);
    const gamma = actions.slice(mark).filter((a) => a.key === `${ns}/gamma`);
    expect(gamma.map((a) => a.value)).toEqual(["50"]);
    // The object deleted while the server was down is gone from the cache too.
    expect(inf.get(ns, "beta")).toBeUndefined();
  });
});
