// Properties of aux copy selection over random catalogs: what must hold for every input, not just the examples.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type CatalogEntry, JobStatuses, JobTypes } from "../../src/policy/catalog.ts";
import { type CopyRules, planCopy } from "../../src/policy/selection.ts";
import { blockingWindow } from "../../src/policy/windows.ts";

const now = Date.parse("2026-11-22T12:00:00Z");
const start = Date.parse("2024-01-01T00:00:00Z");

const catalog = fc
  .array(
    fc.record({
      t: fc.integer({ min: start, max: now }),
      type: fc.constantFrom(...JobTypes),
      status: fc.constantFrom(...JobStatuses),
      subclient: fc.constantFrom("pg", "files", "mysql"),
    }),
    { maxLength: 120 },
  )
  .map((jobs) =>
    jobs.map((j, i): CatalogEntry => ({
      jobId: `j${i}`,
      snapshotId: `s${i}`,
      originalId: `s${i}`,
      type: j.type,
      status: j.status,
      client: "db",
      subclient: j.subclient,
      startTime: new Date(j.t).toISOString(),
      endTime: new Date(j.t + 60_000).toISOString(),
      tagged: true,
    })),
  );

const rules: fc.Arbitrary<CopyRules> = fc.record({
  copyType: fc.constantFrom("Synchronous" as const, "Selective" as const),
  timeZone: fc.constantFrom("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"),
  selection: fc.record({
    frequency: fc.constantFrom("AllFulls", "Hourly", "Daily", "Weekly", "Monthly", "Quarterly", "HalfYearly", "Yearly") as fc.Arbitrary<
      NonNullable<NonNullable<CopyRules["selection"]>["frequency"]>
    >,
    full: fc.constantFrom("First" as const, "Last" as const, "LastWait" as const),
  }),
  deferDays: fc.integer({ min: 0, max: 30 }),
});

describe("selection properties", () => {
  it("copies only valid jobs not on the copy, in start order, and counts what it leaves", () => {
    fc.assert(
      fc.property(catalog, rules, fc.integer({ min: 0, max: 120 }), fc.integer({ min: 1, max: 50 }), (src, r, held, limit) => {
        const target = src.slice(0, held).filter((e) => e.status === "completed");
        const plan = planCopy(src, target, r, { now, limit });
        const onTarget = new Set(target.map((e) => e.originalId));
        for (const e of plan.toCopy) {
          expect(["completed", "completedWithErrors"]).toContain(e.status);
          expect(onTarget.has(e.originalId)).toBe(false);
        }
        const times = plan.toCopy.map((e) => e.startTime);
        expect(times).toEqual([...times].sort());
        expect(plan.toCopy.length).toBeLessThanOrEqual(limit);
        expect(plan.counts.ToBeCopied).toBe(plan.toCopy.length + plan.remaining);
      }),
      { numRuns: 300 },
    );
  });

  it("makes a selective copy a subset of the synchronous one, and a repeat after copying a no-op", () => {
    fc.assert(
      fc.property(catalog, rules, (src, r) => {
        const sync = new Set(planCopy(src, [], { ...r, copyType: "Synchronous" }, { now }).toCopy.map((e) => e.jobId));
        const sel = planCopy(src, [], { ...r, copyType: "Selective" }, { now });
        for (const e of sel.toCopy) expect(sync.has(e.jobId)).toBe(true);
        // Whatever was copied is never selected again.
        expect(planCopy(src, sel.toCopy, { ...r, copyType: "Selective" }, { now }).toCopy).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it("ends every blocking window after the moment it blocks", () => {
    const hhmm = fc
      .tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
      .map(([h, m]) => `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`);
    fc.assert(
      fc.property(
        hhmm,
        hhmm,
        fc.integer({ min: start, max: now }),
        fc.constantFrom("UTC", "Europe/Paris", "Australia/Lord_Howe"),
        (s, e, t, tz) => {
          fc.pre(s !== e);
          const w = blockingWindow([{ name: "w", operations: ["AuxCopy"], days: [], start: s, end: e }], "AuxCopy", t, tz);
          if (w) {
            expect(w.endsAt).toBeGreaterThan(t);
            expect(w.endsAt - t).toBeLessThanOrEqual(25 * 3600_000);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
