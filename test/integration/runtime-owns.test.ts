// A controller reconciles its object when an object it owns changes (controller owner reference), and when a
// related object maps to it; deletions of owned objects count too.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigMaps, Secrets } from "../../src/kube/resources.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { done } from "../../src/runtime/result.ts";
import type { KubeRest } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import { admin, freshNamespace, world } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let mgr: Manager;
const seen: string[] = [];

beforeAll(async () => {
  kube = admin();
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "owns"));
  mgr = testManager(world().kubeconfig);
  const parents = mgr.informer(ConfigMaps, { namespace: ns, labelSelector: "role=parent" });
  const children = mgr.informer(ConfigMaps, { namespace: ns, labelSelector: "role=child" });
  const secrets = mgr.informer(Secrets, { namespace: ns });
  mgr.addController({
    name: "parents",
    forType: parents,
    owns: [children],
    // A Secret names the parent that uses it in an annotation.
    watches: [
      { informer: secrets, map: (s) => (s.metadata.annotations?.["used-by"] ? [`${ns}/${s.metadata.annotations["used-by"]}`] : []) },
    ],
    reconcile: async (req) => {
      seen.push(req.name);
      return done();
    },
  });
  await mgr.start();
});

afterAll(async () => {
  await mgr?.stop();
  await removeNs?.();
  kube?.close();
});

const count = (name: string) => seen.filter((s) => s === name).length;
const settle = () => new Promise((r) => setTimeout(r, 500));

describe("controller watches", () => {
  it("maps owned and related objects to their owner's key", async () => {
    const parent = await kube.create(`/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "p", labels: { role: "parent" } } });
    await waitFor("p reconciled", () => (count("p") >= 1 ? true : undefined));
    await settle();
    let before = count("p");
    const ref = { apiVersion: "v1", kind: "ConfigMap", name: "p", uid: parent.metadata.uid, controller: true };
    await kube.create(`/api/v1/namespaces/${ns}/configmaps`, {
      metadata: { name: "c1", labels: { role: "child" }, ownerReferences: [ref] },
    });
    await waitFor("p reconciled for its new child", () => (count("p") > before ? true : undefined));
    await settle();
    before = count("p");
    await kube.delete(`/api/v1/namespaces/${ns}/configmaps/c1`);
    await waitFor("p reconciled for its deleted child", () => (count("p") > before ? true : undefined));
    await settle();
    before = count("p");
    await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: "creds", annotations: { "used-by": "p" } },
      stringData: { k: "v" },
    });
    await waitFor("p reconciled for its Secret", () => (count("p") > before ? true : undefined));
    // An unowned child reconciles nothing.
    await settle();
    before = seen.length;
    await kube.create(`/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "orphan", labels: { role: "child" } } });
    await settle();
    expect(seen.length).toBe(before);
  });
});
