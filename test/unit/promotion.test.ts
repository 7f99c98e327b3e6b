// Promotion rules (docs/operations.md, "Promoting a copy to primary"): preconditions, force, and the effects on sources
// and precedence.
import { describe, expect, it } from "vitest";
import type { CatalogEntry } from "../../src/policy/catalog.ts";
import { decidePromotion, type PromotionInput, promotionShortfall } from "../../src/policy/promotion.ts";
import { checkCopyPlacement, type CopyFacts, effectiveSource, type PolicyFacts, precedences } from "../../src/policy/references.ts";

const copy = (
  name: string,
  extra: Partial<CopyFacts & { libraryReady: boolean; repositoryReady: boolean }> = {},
): CopyFacts & { libraryReady: boolean; repositoryReady: boolean } => ({
  name,
  storagePolicy: "gold",
  copyType: "Synchronous",
  active: true,
  createdAt: `2026-01-0${name.length % 9}T00:00:00Z`,
  libraryReady: true,
  repositoryReady: true,
  ...extra,
});

const base = (over: Partial<PromotionInput> = {}): PromotionInput => ({
  policy: "gold",
  requested: "offsite",
  current: "primary",
  copies: new Map([
    ["primary", copy("primary")],
    ["offsite", copy("offsite")],
    ["monthly", copy("monthly", { copyType: "Selective" })],
    ["spare", copy("spare", { active: false })],
  ]),
  running: [],
  ...over,
});
const at = "2026-11-22T10:00:00Z";

describe("decidePromotion", () => {
  it("does nothing when the requested primary is in force", () => {
    expect(decidePromotion(base({ requested: "primary" }))).toEqual({ action: "none" });
  });

  it("adopts the first primary of a new policy, and a fix of a primary that never existed", () => {
    expect(decidePromotion(base({ current: undefined }))).toEqual({ action: "adopt" });
    expect(decidePromotion(base({ current: "typo" }))).toEqual({ action: "adopt" });
  });

  it("refuses a copy of another policy, a selective copy and an inactive copy", () => {
    expect(decidePromotion(base({ requested: "nope" }))).toMatchObject({
      action: "refuse",
      message: expect.stringContaining("not a copy"),
    });
    expect(decidePromotion(base({ requested: "monthly" }))).toMatchObject({
      action: "refuse",
      message: expect.stringContaining("only an active Synchronous copy"),
    });
    expect(decidePromotion(base({ requested: "spare" }))).toMatchObject({
      action: "refuse",
      message: expect.stringContaining("not active"),
    });
    // Force does not make a selective copy a primary.
    expect(decidePromotion(base({ requested: "monthly", forceTo: "monthly" }))).toMatchObject({ action: "refuse" });
  });

  it("waits while an aux copy of the policy runs, and for the candidate's storage", () => {
    expect(decidePromotion(base({ running: ["run-1", "run-2"] }))).toMatchObject({
      action: "wait",
      reason: "AuxCopyRunning",
      message: expect.stringContaining("run-1, run-2"),
    });
    const copies = new Map(base().copies);
    copies.set("offsite", copy("offsite", { libraryReady: false }));
    expect(decidePromotion(base({ copies }))).toMatchObject({ action: "wait", reason: "CopyNotReady" });
  });

  it("counts the jobs not copied yet before deciding", () => {
    expect(decidePromotion(base())).toEqual({ action: "check", from: "primary", to: "offsite" });
    expect(decidePromotion(base({ check: { ok: true, notCopied: 0, sample: [], at } }))).toEqual({
      action: "promote",
      from: "primary",
      to: "offsite",
      forced: false,
      notCopied: 0,
    });
  });

  it("refuses while jobs are not on the candidate, naming them, unless forced for that copy", () => {
    const check = { ok: true as const, notCopied: 12, sample: ["j-1", "j-2"], at };
    const refused = decidePromotion(base({ check }));
    expect(refused).toMatchObject({ action: "refuse", reason: "JobsNotCopied" });
    expect((refused as { message: string }).message).toContain('12 jobs of "primary" are not on "offsite" yet (j-1, j-2, ...)');
    // A force for another copy is no force for this one.
    expect(decidePromotion(base({ check, forceTo: "elsewhere" }))).toMatchObject({ action: "refuse" });
    expect(decidePromotion(base({ check, forceTo: "offsite" }))).toEqual({
      action: "promote",
      from: "primary",
      to: "offsite",
      forced: true,
      notCopied: 12,
    });
  });

  it("needs force when the current primary cannot be read", () => {
    const copies = new Map(base().copies);
    copies.set("primary", copy("primary", { libraryReady: false }));
    expect(decidePromotion(base({ copies }))).toMatchObject({ action: "refuse", reason: "PrimaryUnreadable" });
    expect(decidePromotion(base({ copies, forceTo: "offsite" }))).toMatchObject({ action: "promote", forced: true });
    const failed = { ok: false as const, message: "repository does not exist", at };
    expect(decidePromotion(base({ check: failed }))).toMatchObject({
      action: "refuse",
      message: expect.stringContaining("repository does not exist"),
    });
    expect(decidePromotion(base({ check: failed, forceTo: "offsite" }))).toMatchObject({ action: "promote", forced: true });
  });
});

describe("after a promotion", () => {
  const copies = [
    copy("primary", { createdAt: "2026-01-01T00:00:00Z" }),
    copy("offsite", { createdAt: "2026-01-02T00:00:00Z", precedence: 3 }),
    copy("vault", { createdAt: "2026-01-03T00:00:00Z", sourceCopy: "primary" }),
    copy("tape", { createdAt: "2026-01-04T00:00:00Z", sourceCopy: "offsite" }),
    copy("monthly", { createdAt: "2026-01-05T00:00:00Z", copyType: "Selective" }),
  ];
  const before: PolicyFacts = { name: "gold", primaryCopy: "primary" };
  const after: PolicyFacts = { name: "gold", primaryCopy: "offsite", promotedFrom: { name: "primary", precedence: 3 } };
  const byName = new Map(copies.map((c) => [c.name, c]));

  it("the old primary becomes a secondary filled from the new one; cascades from the old primary are re-pointed", () => {
    const source = (p: PolicyFacts) => Object.fromEntries(copies.map((c) => [c.name, effectiveSource(c, p)]));
    expect(source(before)).toEqual({ primary: undefined, offsite: "primary", vault: "primary", tape: "offsite", monthly: "primary" });
    expect(source(after)).toEqual({ primary: "offsite", offsite: undefined, vault: "offsite", tape: "offsite", monthly: "offsite" });
    for (const c of copies) expect(checkCopyPlacement(c, after, byName)).toEqual([]);
  });

  it("the promoted copy may keep the sourceCopy it had as a secondary", () => {
    const promoted = copy("offsite", { sourceCopy: "primary" });
    const m = new Map(byName).set("offsite", promoted);
    expect(checkCopyPlacement(promoted, after, m)).toEqual([]);
    // Without a promotion, a primary with a source is a mistake.
    expect(checkCopyPlacement(promoted, { name: "gold", primaryCopy: "offsite" }, m)).toMatchObject([{ reason: "PrimaryCopyHasSource" }]);
  });

  it("precedences swap: the promoted copy is 1, the old primary takes the promoted copy's number", () => {
    expect(Object.fromEntries(precedences(before, copies))).toEqual({ primary: 1, offsite: 3, vault: 2, tape: 4, monthly: 5 });
    expect(Object.fromEntries(precedences(after, copies))).toEqual({ offsite: 1, primary: 3, vault: 2, tape: 4, monthly: 5 });
  });
});

describe("the promotion check's count", () => {
  // The primary's jobs: a full and an incremental on the 1st and the 20th of November.
  const job = (id: string, day: number, type: "full" | "incremental", originalId = `snap-${id}`): CatalogEntry => ({
    jobId: id,
    snapshotId: originalId,
    originalId,
    type,
    status: "completed",
    client: "app",
    subclient: "data",
    startTime: `2026-11-${String(day).padStart(2, "0")}T01:00:00Z`,
    endTime: `2026-11-${String(day).padStart(2, "0")}T01:10:00Z`,
    tagged: true,
  });
  const primary = [job("j1", 1, "full"), job("j2", 2, "incremental"), job("j3", 20, "full"), job("j4", 21, "incremental")];
  const copied = (ids: string[]) => primary.filter((e) => ids.includes(e.jobId)).map((e) => ({ ...e, snapshotId: `copy-${e.jobId}` }));
  // The candidate takes jobs on and after 15 November: it has all of those.
  const rules = { copyType: "Synchronous" as const, backups: { mode: "OnAndAfter" as const, date: "2026-11-15" }, timeZone: "UTC" };
  const candidate = copied(["j3", "j4"]);
  const monthly = { copyType: "Selective" as const, selection: { frequency: "Monthly" as const, full: "First" as const }, timeZone: "UTC" };
  const now = Date.parse("2026-12-01T00:00:00Z");

  it("counts the jobs a re-pointed copy still needs, whatever the candidate's own backups date", () => {
    expect(promotionShortfall(primary, candidate, rules, [], now)).toEqual({ notCopied: 0, sample: [], neededBy: [] });
    // The monthly copy has not taken November's first full (and the incremental it carries) yet: only the old
    // primary has them.
    expect(promotionShortfall(primary, candidate, rules, [{ name: "monthly", rules: monthly, catalog: [] }], now)).toEqual({
      notCopied: 2,
      sample: ["j1", "j2"],
      neededBy: ["monthly"],
    });
    // Once it has them, nothing is missing.
    const has = [{ name: "monthly", rules: monthly, catalog: copied(["j1", "j2"]) }];
    expect(promotionShortfall(primary, candidate, rules, has, now)).toMatchObject({ notCopied: 0 });
  });

  it("a copy that cannot be read may need any job the candidate lacks", () => {
    expect(promotionShortfall(primary, candidate, rules, [{ name: "typo", rules: monthly }], now)).toEqual({
      notCopied: 2,
      sample: ["j1", "j2"],
      neededBy: ["typo"],
    });
  });

  it("an unknown time zone stops the promotion, saying why", () => {
    expect(decidePromotion(base({ timeZoneProblem: 'spec.timeZone "Europe/Pariss" is not a known IANA time zone' }))).toEqual({
      action: "wait",
      reason: "InvalidTimeZone",
      message: 'spec.timeZone "Europe/Pariss" is not a known IANA time zone',
    });
  });
});
