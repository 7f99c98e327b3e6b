import { describe, expect, it } from "vitest";
import {
  checkCopyPlacement,
  checkLibraryVolume,
  checkPolicy,
  checkSecrets,
  checkTimeZone,
  type CopyFacts,
  effectiveSource,
  holdersOf,
  precedences,
  promotionDownstream,
} from "../../src/policy/references.ts";

const c = (name: string, extra: Partial<CopyFacts> = {}): CopyFacts => ({
  name,
  storagePolicy: "gold",
  copyType: "Synchronous",
  active: true,
  createdAt: "2026-11-01T00:00:00Z",
  ...extra,
});
const gold = { name: "gold", primaryCopy: "primary" };
const map = (...cs: CopyFacts[]) => new Map(cs.map((x) => [x.name, x]));

describe("copy placement", () => {
  const copies = map(c("primary"), c("offsite"), c("monthly", { copyType: "Selective" }), c("vault", { sourceCopy: "offsite" }));
  it("accepts a tree rooted at the primary", () => {
    for (const name of ["primary", "offsite", "monthly", "vault"])
      expect(checkCopyPlacement(copies.get(name) as CopyFacts, gold, copies)).toEqual([]);
    expect(effectiveSource(c("offsite"), gold)).toBe("primary");
    expect(effectiveSource(c("primary"), gold)).toBeUndefined();
  });
  it("names each problem", () => {
    const reason = (copy: CopyFacts, all = copies, policy: typeof gold | undefined = gold) =>
      checkCopyPlacement(copy, policy, all)[0]?.reason;
    expect(checkCopyPlacement(c("x"), undefined, copies)[0]?.reason).toBe("StoragePolicyNotFound");
    expect(reason(c("x", { sourceCopy: "nowhere" }))).toBe("SourceCopyNotFound");
    expect(reason(c("x", { sourceCopy: "x" }))).toBe("SourceCycle");
    expect(reason(c("primary", { sourceCopy: "offsite" }))).toBe("PrimaryCopyHasSource");
    expect(reason(c("primary", { copyType: "Selective" }))).toBe("SelectivePrimary");
    expect(reason(c("x", { copyType: "Selective", sourceCopy: "monthly" }))).toBe("SourceNotAllowed");
    const other = map(...copies.values(), c("elsewhere", { storagePolicy: "silver" }));
    expect(reason(c("x", { sourceCopy: "elsewhere" }), other)).toBe("SourceCopyInOtherPolicy");
    const loop = map(c("primary"), c("a", { sourceCopy: "b" }), c("b", { sourceCopy: "c" }), c("c", { sourceCopy: "a" }));
    expect(checkCopyPlacement(loop.get("a") as CopyFacts, gold, loop)[0]?.message).toBe(
      "copies a → b → c → a form a cycle; every chain of sources must end at the primary copy",
    );
  });
  it("checks a policy's primary copy", () => {
    expect(checkPolicy(gold, copies)).toEqual([]);
    expect(checkPolicy({ name: "gold", primaryCopy: "gone" }, copies)[0]?.reason).toBe("PrimaryCopyNotFound");
    expect(checkPolicy({ name: "silver", primaryCopy: "offsite" }, copies)[0]?.reason).toBe("PrimaryCopyInOtherPolicy");
  });
});

describe("precedence", () => {
  it("gives the primary 1, keeps explicit numbers and fills the rest in creation order", () => {
    const p = precedences(gold, [
      c("late", { createdAt: "2026-11-03T00:00:00Z" }),
      c("pinned", { precedence: 2, createdAt: "2026-11-04T00:00:00Z" }),
      c("early", { createdAt: "2026-11-02T00:00:00Z" }),
      c("primary", { precedence: 7 }),
      c("other-policy", { storagePolicy: "silver" }),
    ]);
    expect(Object.fromEntries(p)).toEqual({ primary: 1, pinned: 2, early: 3, late: 4 });
  });
});

describe("secret references", () => {
  const secrets = new Map([["repo", new Set(["password"])]]);
  it("reports a missing Secret once and a missing key by name", () => {
    expect(
      checkSecrets(
        [
          { field: "f", name: "gone", key: "a" },
          { field: "f", name: "gone", key: "b" },
          { field: "g", name: "repo", key: "other" },
          { field: "h", name: "repo", key: "password" },
        ],
        secrets,
      ).map((p) => p.reason),
    ).toEqual(["SecretNotFound", "SecretKeyNotFound"]);
  });
});

describe("which copies hold jobs for a copy (data aging)", () => {
  const copies = map(
    c("primary"),
    c("offsite"),
    c("monthly", { copyType: "Selective" }),
    c("vault", { sourceCopy: "primary" }),
    c("tape", { sourceCopy: "offsite" }),
    c("typo", { sourceCopy: "primray" }),
  );
  it("its source; a copy whose source does not exist is held by the primary, which cannot read it", () => {
    expect(holdersOf(copies.get("monthly") as CopyFacts, gold, copies)).toEqual([{ name: "primary" }]);
    expect(holdersOf(copies.get("tape") as CopyFacts, gold, copies)).toEqual([{ name: "offsite" }]);
    expect(holdersOf(copies.get("typo") as CopyFacts, gold, copies)).toEqual([{ name: "primary", unreadable: true }]);
    expect(holdersOf(copies.get("primary") as CopyFacts, gold, copies)).toEqual([]);
    // A cycle never reaches the primary either.
    const loop = map(c("primary"), c("a", { sourceCopy: "b" }), c("b", { sourceCopy: "a" }));
    expect(holdersOf(loop.get("a") as CopyFacts, gold, loop)).toEqual([{ name: "primary", unreadable: true }]);
  });
  it("after a promotion, the old primary also holds for the copies re-pointed to the new one", () => {
    const promoted = { name: "gold", primaryCopy: "offsite", promotedFrom: { name: "primary" } };
    expect(holdersOf(copies.get("monthly") as CopyFacts, promoted, copies)).toEqual([{ name: "offsite" }, { name: "primary" }]);
    expect(holdersOf(copies.get("vault") as CopyFacts, promoted, copies)).toEqual([{ name: "offsite" }, { name: "primary" }]);
    // Not the old primary itself, nor a cascade that always came from another copy.
    expect(holdersOf(copies.get("primary") as CopyFacts, promoted, copies)).toEqual([{ name: "offsite" }]);
    expect(holdersOf(copies.get("tape") as CopyFacts, promoted, copies)).toEqual([{ name: "offsite" }]);
  });
  it("a promotion's check counts for the copies it re-points, and for those that cannot be read", () => {
    expect(promotionDownstream("primary", "offsite", gold, copies)).toEqual([
      { name: "monthly" },
      { name: "vault" },
      { name: "typo", unreadable: true },
    ]);
  });
});

describe("time zone", () => {
  it("accepts IANA zones and UTC, refuses an unknown one naming the field", () => {
    expect(checkTimeZone(undefined)).toEqual([]);
    expect(checkTimeZone("UTC")).toEqual([]);
    expect(checkTimeZone("Europe/Paris")).toEqual([]);
    expect(checkTimeZone("America/Argentina/Buenos_Aires")).toEqual([]);
    expect(checkTimeZone("Europe/Pariss")).toEqual([
      { reason: "InvalidTimeZone", message: expect.stringMatching(/^spec\.timeZone "Europe\/Pariss" is not a known IANA time zone/) },
    ]);
  });
});

describe("library volumes (tenancy)", () => {
  it("refuses hostPath and NFS unless allowed, naming the field and the operator setting", () => {
    const host = { filesystem: { hostPath: { path: "/srv/tape" } } };
    const nfs = { filesystem: { nfs: { server: "nas", path: "/export" } } };
    expect(checkLibraryVolume(host, {})).toEqual([
      { reason: "HostPathNotAllowed", message: expect.stringMatching(/^spec\.filesystem\.hostPath: .*--allow-host-path-libraries/) },
    ]);
    expect(checkLibraryVolume(nfs, { hostPath: true })).toEqual([
      { reason: "NFSNotAllowed", message: expect.stringMatching(/^spec\.filesystem\.nfs: .*--allow-nfs-libraries/) },
    ]);
    expect(checkLibraryVolume(host, { hostPath: true })).toEqual([]);
    expect(checkLibraryVolume(nfs, { nfs: true })).toEqual([]);
    expect(checkLibraryVolume({ filesystem: { persistentVolumeClaim: { claimName: "disk" } } } as never, {})).toEqual([]);
  });
});
