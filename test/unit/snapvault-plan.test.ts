// SnapVault references: its destination library, password Secret (and key) and the backup copy's policy.
import { describe, expect, it } from "vitest";
import { planSnapVault, type SnapVaultFacts } from "../../src/policy/snapvault.ts";

const facts = (over: Partial<SnapVaultFacts> = {}): SnapVaultFacts => ({
  spec: {
    source: { persistentVolumeClaims: ["data"] },
    destination: { library: "disk", encryption: { passwordSecret: { name: "pw" } } },
    backupCopy: { enabled: true, storagePolicy: "gold" },
  },
  libraryExists: true,
  policyExists: true,
  secrets: new Map([["pw", new Set(["password"])]]),
  ...over,
});

describe("SnapVault references", () => {
  it("resolve", () => {
    expect(planSnapVault(facts()).ready).toEqual({
      problems: [],
      ok: { reason: "ReferencesResolved", message: "destination library and password Secret resolve" },
    });
  });
  it("name what is missing, one problem each", () => {
    const plan = planSnapVault(facts({ libraryExists: false, policyExists: false, secrets: new Map([["pw", new Set(["other"])]]) }));
    expect(plan.ready?.problems).toEqual([
      { reason: "LibraryNotFound", message: 'destination library "disk" does not exist in this namespace' },
      { reason: "SecretKeyNotFound", message: 'spec.destination.encryption.passwordSecret: Secret "pw" has no key "password"' },
      { reason: "StoragePolicyNotFound", message: 'backupCopy.storagePolicy "gold" does not exist in this namespace' },
    ]);
  });
  it("need no policy while the backup copy is off", () => {
    const spec = { ...facts().spec, backupCopy: { enabled: false, storagePolicy: "gold" } };
    expect(planSnapVault(facts({ spec, policyExists: false })).ready?.problems).toEqual([]);
  });
});
