import { describe, expect, it } from "vitest";
import { formatMicroTime, formatTime, keyOf, parseTime, splitKey } from "../../src/kube/resources.ts";
import { controllerOf, controllerRef } from "../../src/runtime/objects.ts";

describe("keys and times", () => {
  it("round-trips keys", () => {
    expect(splitKey(keyOf({ namespace: "ns", name: "a" }))).toEqual({ namespace: "ns", name: "a" });
    expect(splitKey("cluster-wide")).toEqual({ name: "cluster-wide" });
  });
  it("formats and parses API timestamps one way", () => {
    const ms = Date.UTC(2026, 10, 22, 1, 2, 3, 456);
    expect(formatTime(ms)).toBe("2026-11-22T01:02:03Z");
    expect(formatMicroTime(ms)).toBe("2026-11-22T01:02:03.456000Z");
    expect(parseTime("2026-11-22T01:02:03Z")).toBe(Date.UTC(2026, 10, 22, 1, 2, 3));
    expect(parseTime(formatMicroTime(ms))).toBe(ms);
    expect(parseTime("yesterday")).toBeUndefined();
  });
});

describe("owners", () => {
  const obj = { metadata: { name: "o", namespace: "ns", uid: "u1" } };
  it("builds controller references and finds an object's controller", () => {
    const type = { group: "auxo.dev", version: "v1alpha1", plural: "auxcopyjobs", kind: "AuxCopyJob", namespaced: true };
    const ref = controllerRef(obj, type);
    expect(ref).toEqual({
      apiVersion: "auxo.dev/v1alpha1",
      kind: "AuxCopyJob",
      name: "o",
      uid: "u1",
      controller: true,
      blockOwnerDeletion: true,
    });
    expect(controllerOf({ metadata: { name: "p", ownerReferences: [{ ...ref, controller: false }, ref] } })).toBe(ref);
  });
});
