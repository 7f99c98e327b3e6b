// SnapVault references: its destination library, password Secret (and key) and the storage policy it belongs to.
import { describe, expect, it } from "vitest";
import { referenceProblems, type SnapVaultFacts } from "../../src/policy/snapvault.ts";

const facts = (over: Partial<SnapVaultFacts> = {}): SnapVaultFacts => ({
  spec: {
    storagePolicy: "gold",
    source: { persistentVolumeClaims: ["data"] },
    destination: { library: "disk", encryption: { passwordSecret: { name: "pw" } } },
    backupCopy: { enabled: true },
  },
  libraryExists: true,
  policyExists: true,
  secrets: new Map([["pw", new Set(["password"])]]),
  ...over,
});

describe("SnapVault references", () => {
  it("resolve", () => {
    expect(referenceProblems(facts())).toEqual([]);
  });
  it("name what is missing, one problem each", () => {
    expect(referenceProblems(facts({ libraryExists: false, policyExists: false, secrets: new Map([["pw", new Set(["other"])]]) }))).toEqual(
      [
        { reason: "LibraryNotFound", message: 'destination library "disk" does not exist in this namespace' },
        { reason: "SecretKeyNotFound", message: 'spec.destination.encryption.passwordSecret: Secret "pw" has no key "password"' },
        { reason: "StoragePolicyNotFound", message: 'storagePolicy "gold" does not exist in this namespace' },
      ],
    );
  });
  it("need no policy when it names none", () => {
    const { storagePolicy: _, ...spec } = facts().spec;
    expect(referenceProblems(facts({ spec: { ...spec, backupCopy: undefined }, policyExists: false }))).toEqual([]);
  });
});
