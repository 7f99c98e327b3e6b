// A reconcile never decides on a status its own last write replaced (runtime/writes.ts, runtime/controller.ts): the
// cache that still shows the version a write was based on is behind, and the controller waits for it.
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { KubeObject, ResourceType } from "../../src/kube/resources.ts";
import { Controller } from "../../src/runtime/controller.ts";
import { done } from "../../src/runtime/result.ts";
import { OwnWrites } from "../../src/runtime/writes.ts";

const R: ResourceType = { group: "auxo.dev", version: "v1alpha1", plural: "storagepolicies", kind: "StoragePolicy", namespaced: true };
const obj = (rv: string): KubeObject => ({
  apiVersion: "auxo.dev/v1alpha1",
  kind: "StoragePolicy",
  metadata: { name: "gold", namespace: "t", resourceVersion: rv },
});

describe("own status writes", () => {
  it("is behind while the cache shows the version the write replaced, and not after it moved on or 5 s passed", () => {
    const w = new OwnWrites();
    w.record(R, obj("10"), obj("11"), 0);
    expect(w.behind(R, obj("10"), 100)).toBe(true);
    expect(w.behind(R, obj("11"), 200)).toBe(false);
    // Once caught up it is forgotten: a later read of the old version (never happens) is not judged.
    expect(w.behind(R, obj("10"), 300)).toBe(false);
    w.record(R, obj("12"), obj("13"), 1000);
    expect(w.behind(R, obj("12"), 5999)).toBe(true);
    expect(w.behind(R, obj("12"), 6000)).toBe(false);
    // Another object, or a write that changed nothing, is never behind.
    w.record(R, obj("20"), obj("20"), 0);
    expect(w.behind(R, obj("20"), 1)).toBe(false);
  });

  it("a controller does not reconcile on a cache behind its write, and does once the cache caught up", async () => {
    const writes = new OwnWrites();
    let cached = obj("10");
    const handlers: ((t: "add" | "update" | "delete", o: KubeObject) => void)[] = [];
    const seen: string[] = [];
    const ctl = new Controller(
      {
        name: "test",
        forType: { resource: R as never, on: (h) => void handlers.push(h), get: () => cached },
        reconcile: async () => {
          seen.push(cached.metadata.resourceVersion as string);
          return done();
        },
      },
      pino({ level: "silent" }),
      undefined,
      writes,
    );
    ctl.start();
    writes.record(R, cached, obj("11"));
    ctl.queue.add("t/gold");
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([]);
    cached = obj("11");
    handlers.forEach((h) => h("update", cached));
    await new Promise((r) => setTimeout(r, 400));
    // Only the caught-up version is decided on (the requeue and the watch event may both bring it).
    expect(seen.length).toBeGreaterThan(0);
    expect([...new Set(seen)]).toEqual(["11"]);
    await ctl.stop();
  });
});
