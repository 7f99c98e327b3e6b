// A SnapVault destination's aging rules (policy/snapvault-aging.ts): the Vault's retention as data aging sees it, and
// what a Mirror forgets.
import { describe, expect, it } from "vitest";
import type { CatalogEntry } from "../../src/policy/catalog.ts";
import { decideRetention } from "../../src/policy/retention.ts";
import { mirrorForgets, vaultRetention } from "../../src/policy/snapvault-aging.ts";

const copy = (jobId: string, subclient: string, day: number, status: CatalogEntry["status"] = "completed"): CatalogEntry => ({
  jobId,
  snapshotId: `s-${jobId}`,
  originalId: `s-${jobId}`,
  type: "full",
  status,
  client: "team",
  subclient,
  startTime: new Date(Date.UTC(2026, 0, day)).toISOString(),
  tagged: true,
});
const NOW = Date.UTC(2026, 2, 1);

describe("a Vault's retention", () => {
  it("ages copies older than its days, by their own age", () => {
    const catalog = [copy("j1", "a", 1), copy("j2", "a", 20), copy("j3", "a", 55)];
    const d = decideRetention({ catalog, retention: vaultRetention({ days: 30 }), now: NOW });
    expect(d.aged).toEqual(["j1", "j2"]);
  });
  it("keeps at least recoveryPoints copies per PVC, whatever their age", () => {
    const catalog = [copy("a1", "a", 1), copy("a2", "a", 2), copy("a3", "a", 3), copy("b1", "b", 1)];
    const d = decideRetention({ catalog, retention: vaultRetention({ days: 7, recoveryPoints: 2 }), now: NOW });
    expect(d.aged).toEqual(["a1"]);
  });
  it("lets extended rules keep a copy of a snap job with missing snaps only with ignoreCompletedWithErrorsForExtendedRetention", () => {
    const catalog = [copy("jan", "a", 3, "completedWithErrors"), copy("feb", "a", 58)];
    const rules = { days: 14, extended: [{ period: "Monthly" as const, keepDays: 365, select: "First" as const }] };
    expect(decideRetention({ catalog, retention: vaultRetention(rules), now: NOW }).aged).toEqual(["jan"]);
    expect(
      decideRetention({ catalog, retention: vaultRetention({ ...rules, ignoreCompletedWithErrorsForExtendedRetention: true }), now: NOW })
        .aged,
    ).toEqual([]);
  });
});

describe("a Mirror", () => {
  it("forgets exactly the named copies, never the newest copy of a PVC", () => {
    const catalog = [copy("a1", "a", 1), copy("a2", "a", 2), copy("b1", "b", 1)];
    expect(mirrorForgets(catalog, ["a1", "a2", "b1", "zz"])).toEqual(["s-a1"]);
    expect(mirrorForgets(catalog, [])).toEqual([]);
  });
});
