// Events as `kubectl describe` shows them: repeats fold into one Event with a count, and a hot loop on one object
// is cut off by the per-object rate limit.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient } from "../../src/kube/client.ts";
import { loadClusterConfig } from "../../src/kube/config.ts";
import { EventRecorder } from "../../src/kube/events.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { admin, freshNamespace, world } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let client: KubeClient;

beforeAll(async () => {
  kube = admin();
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "events"));
  client = new KubeClient(loadClusterConfig(world().kubeconfig, {}).kubeConfig);
});
afterAll(async () => {
  client?.close();
  await removeNs?.();
  kube?.close();
});

const eventsFor = async (name: string): Promise<Obj[]> =>
  (await kube.get(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=${name}`)).items;

describe("event recorder", () => {
  it("folds repeats into one Event with a count and keeps distinct events apart", async () => {
    const cm = await kube.create(`/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "subject" } });
    const rec = new EventRecorder(client, { component: "auxo-test" });
    for (let i = 0; i < 3; i++) {
      rec.event(cm as never, "Warning", "LibraryUnreachable", "s3 endpoint http://127.0.0.1:1 refused the connection");
      await rec.flush();
    }
    rec.event(cm as never, "Normal", "CopyCompleted", "copied 3 jobs");
    await rec.flush();
    const events = await eventsFor("subject");
    expect(events).toHaveLength(2);
    const warning = events.find((e) => e.reason === "LibraryUnreachable") as Obj;
    expect(warning.count).toBe(3);
    expect(warning.type).toBe("Warning");
    expect(warning.source.component).toBe("auxo-test");
    expect(warning.involvedObject.uid).toBe(cm.metadata.uid);
  });

  it("rate-limits a flood on one object", async () => {
    const cm = await kube.create(`/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "flooded" } });
    const rec = new EventRecorder(client, { component: "auxo-test", burst: 5 });
    for (let i = 0; i < 40; i++) rec.event(cm as never, "Normal", "Tick", `tick ${i}`);
    await rec.flush();
    expect(await eventsFor("flooded")).toHaveLength(5);
    expect(rec.dropped).toBe(35);
  });
});
