// Which jobs an aux copy takes (docs/operations.md, "Which jobs a copy takes"): valid data only, windows, selective
// frequencies with their calendars and time zones, carried incrementals, overrides, limits.
import { describe, expect, it } from "vitest";
import type { CatalogEntry, JobStatus, JobType } from "../../src/policy/catalog.ts";
import { largeSourceHold, periodKey, planCopy, selectFulls } from "../../src/policy/selection.ts";

let n = 0;
function job(startTime: string, type: JobType = "full", status: JobStatus = "completed", subclient = "pg"): CatalogEntry {
  n++;
  return {
    jobId: `j${n}`,
    snapshotId: `s${n}`,
    originalId: `s${n}`,
    type,
    status,
    client: "db",
    subclient,
    startTime,
    endTime: startTime,
    tagged: true,
  };
}
const ids = (es: CatalogEntry[]) => es.map((e) => e.jobId);
const now = Date.parse("2026-11-22T12:00:00Z");

describe("synchronous copies", () => {
  it("take every valid job of every type in start order, never failed or killed ones", () => {
    const src = [
      job("2026-01-03T00:00:00Z", "incremental"),
      job("2026-01-01T00:00:00Z", "full"),
      job("2026-01-02T00:00:00Z", "log", "failed"),
      job("2026-01-04T00:00:00Z", "differential", "completedWithErrors"),
      job("2026-01-05T00:00:00Z", "incremental", "killed"),
    ];
    const plan = planCopy(src, [], {}, { now });
    expect(ids(plan.toCopy)).toEqual([src[1], src[0], src[3]].map((e) => e?.jobId));
    expect(plan.counts.ToBeCopied).toBe(3);
  });

  it("skip what the copy already holds, by the original snapshot id, and count it Available", () => {
    const src = [job("2026-01-01T00:00:00Z"), job("2026-01-02T00:00:00Z", "incremental")];
    const copied = { ...(src[0] as CatalogEntry), snapshotId: "other" };
    const plan = planCopy(src, [copied], {}, { now });
    expect(ids(plan.toCopy)).toEqual([src[1]?.jobId]);
    expect(plan.counts.Available).toBe(1);
  });

  it("honour backups on and after a date in the policy's time zone, the defer period and the pick-new-backups cutoff", () => {
    // 23:30 UTC on 31 Dec is already 1 January in Paris.
    const src = [job("2025-12-31T22:30:00Z"), job("2025-12-31T23:30:00Z"), job("2026-11-21T00:00:00Z"), job("2026-11-22T11:00:00Z")];
    const rules = { backups: { mode: "OnAndAfter" as const, date: "2026-01-01" }, timeZone: "Europe/Paris" };
    expect(ids(planCopy(src, [], rules, { now }).toCopy)).toEqual(ids(src.slice(1)));
    expect(ids(planCopy(src, [], { ...rules, deferDays: 1 }, { now }).toCopy)).toEqual(ids(src.slice(1, 3)));
    expect(ids(planCopy(src, [], rules, { now, cutoff: Date.parse("2026-11-22T00:00:00Z") }).toCopy)).toEqual(ids(src.slice(1, 3)));
  });

  it("apply overrides, verification skips and the job limit", () => {
    const src = Array.from({ length: 6 }, (_, i) => job(`2026-02-0${i + 1}T00:00:00Z`, i ? "incremental" : "full"));
    const plan = planCopy(
      src,
      [],
      {
        jobOverrides: [
          { jobId: src[1]?.jobId as string, action: "DoNotCopy" },
          { jobId: src[2]?.jobId as string, action: "MarkBad" },
        ],
      },
      { now, skipJobs: new Set([src[3]?.jobId as string]), limit: 1 },
    );
    expect(plan.counts).toEqual({ ToBeCopied: 3, PartiallyCopied: 0, Available: 0, DoNotCopy: 1, Bad: 2 });
    // A job whose latest copy attempt failed is Partially Copied, and still copied.
    const partial = planCopy(src, [], {}, { now, partial: new Set([src[4]?.jobId as string]) });
    expect(partial.counts).toMatchObject({ ToBeCopied: 5, PartiallyCopied: 1 });
    expect(partial.toCopy).toHaveLength(6);
    expect(ids(plan.toCopy)).toEqual([src[0]?.jobId]);
    expect(plan.remaining).toBe(2);
  });

  it("copy a Recopy job again once, even when the copy holds it: done once it was copied at or after the request", () => {
    const src = [job("2026-03-01T00:00:00Z"), job("2026-03-02T00:00:00Z", "incremental"), job("2026-03-03T00:00:00Z", "incremental")];
    const [a, b, c] = ids(src) as [string, string, string];
    const rules = { jobOverrides: [{ jobId: b, action: "Recopy" as const, at: "2026-11-20T10:00:00Z" }] };
    const target = src.slice(0, 2); // a and b are on the copy, c is not
    const before = new Map([
      [a, "2026-03-05T00:00:00Z"],
      [b, "2026-03-05T00:00:00Z"],
    ]);
    const plan = planCopy(src, target, rules, { now, lastCopied: before });
    expect(ids(plan.toCopy)).toEqual([b, c]);
    expect(plan.recopy).toEqual([b]);
    expect(plan.counts).toMatchObject({ ToBeCopied: 2, Available: 1 });
    // Copied after the request: done, however long the override stays in spec.
    const after = new Map(before).set(b, "2026-11-20T10:00:00Z");
    expect(planCopy(src, target, rules, { now, lastCopied: after })).toMatchObject({ recopy: [], counts: { Available: 2 } });
    // Without job events (a REST server library) a held job is never forgotten on a guess.
    expect(planCopy(src, target, rules, { now }).recopy).toEqual([]);
    // A job limit that leaves the recopy out leaves it for the follow-up.
    expect(planCopy(src, target, rules, { now, lastCopied: before, limit: 0 }).recopy).toEqual([]);
  });
});

describe("selective copies", () => {
  it("cut weeks on Friday by default, and on the configured day", () => {
    // 2026-11-19 is a Thursday, 2026-11-20 a Friday.
    const thu = Date.parse("2026-11-19T10:00:00Z");
    const fri = Date.parse("2026-11-20T10:00:00Z");
    expect(periodKey(thu, "Weekly")).not.toBe(periodKey(fri, "Weekly"));
    expect(periodKey(thu, "Weekly", { weekStartsOn: "Monday" })).toBe(periodKey(fri, "Weekly", { weekStartsOn: "Monday" }));
  });

  it("cut days at dayStartsAt in the time zone, and months at monthStartsOn", () => {
    const a = Date.parse("2026-03-10T04:00:00Z");
    const b = Date.parse("2026-03-10T07:00:00Z");
    expect(periodKey(a, "Daily", { dayStartsAt: "06:00" })).not.toBe(periodKey(b, "Daily", { dayStartsAt: "06:00" }));
    // 03:00 UTC is still 9 March in New York (EDT, UTC-4, since 8 March).
    expect(periodKey(Date.parse("2026-03-10T03:00:00Z"), "Daily", {}, "America/New_York")).toBe("2026-03-09");
    expect(periodKey(Date.parse("2026-03-14T12:00:00Z"), "Monthly", { monthStartsOn: 15 })).toBe(
      periodKey(Date.parse("2026-02-20T12:00:00Z"), "Monthly", { monthStartsOn: 15 }),
    );
    expect(periodKey(Date.parse("2026-03-31T12:00:00Z"), "Quarterly")).not.toBe(periodKey(Date.parse("2026-04-01T12:00:00Z"), "Quarterly"));
    expect(periodKey(Date.parse("2026-03-31T12:00:00Z"), "Quarterly", { yearStartsOn: "February" })).toBe(
      periodKey(Date.parse("2026-04-01T12:00:00Z"), "Quarterly", { yearStartsOn: "February" }),
    );
  });

  it("take the first or last full of each month per subclient; LastWait waits for the month to close", () => {
    const fulls = [
      job("2026-10-01T00:00:00Z"),
      job("2026-10-15T00:00:00Z"),
      job("2026-11-01T00:00:00Z"),
      job("2026-11-08T00:00:00Z"),
      job("2026-11-02T00:00:00Z", "full", "completed", "mysql"),
    ];
    const [oct1, oct15, nov1, nov8, mysql] = ids(fulls);
    expect([...selectFulls(fulls, { frequency: "Monthly", full: "First" }, "UTC", now)].sort()).toEqual([oct1, nov1, mysql].sort());
    expect([...selectFulls(fulls, { frequency: "Monthly", full: "Last" }, "UTC", now)].sort()).toEqual([oct15, nov8, mysql].sort());
    expect([...selectFulls(fulls, { frequency: "Monthly", full: "LastWait" }, "UTC", now)]).toEqual([oct15]);
  });

  it("take every x-th cycle by the cycle number (x = 4, first: 1, 5, 9; last: 4, 8)", () => {
    const fulls = Array.from({ length: 9 }, (_, i) => job(`2026-01-${String(i + 1).padStart(2, "0")}T00:00:00Z`));
    const num = (s: Set<string>) => fulls.map((f, i) => (s.has(f.jobId) ? i + 1 : 0)).filter(Boolean);
    expect(num(selectFulls(fulls, { frequency: "Advanced", full: "First", advanced: { every: 4, unit: "Cycles" } }, "UTC", now))).toEqual([
      1, 5, 9,
    ]);
    expect(num(selectFulls(fulls, { frequency: "Advanced", full: "Last", advanced: { every: 4, unit: "Cycles" } }, "UTC", now))).toEqual([
      4, 8,
    ]);
  });

  it("carry the incrementals after a selected full up to the first that completed without errors", () => {
    const src = [
      job("2026-10-01T00:00:00Z", "full"),
      job("2026-10-02T00:00:00Z", "incremental", "completedWithErrors"),
      job("2026-10-03T00:00:00Z", "incremental"),
      job("2026-10-04T00:00:00Z", "incremental"),
      job("2026-10-05T00:00:00Z", "full"),
      job("2026-10-06T00:00:00Z", "incremental"),
    ];
    const plan = planCopy(src, [], { copyType: "Selective", selection: { frequency: "Monthly", full: "First" } }, { now });
    expect(ids(plan.toCopy)).toEqual(ids(src.slice(0, 3)));
  });

  it("send the latest successful full of each subclient with Use Most Recent Full, with the incrementals it carries", () => {
    const src = [
      job("2026-11-01T00:00:00Z", "full"),
      job("2026-11-08T00:00:00Z", "full"),
      job("2026-11-09T00:00:00Z", "incremental"),
      job("2026-11-15T00:00:00Z", "full", "completedWithErrors"),
      job("2026-11-10T00:00:00Z", "full", "completed", "mysql"),
    ];
    const [nov1, nov8, inc9, , mysql] = ids(src) as string[];
    const rules = { copyType: "Selective" as const, selection: { frequency: "Monthly" as const, full: "First" as const } };
    expect(ids(planCopy(src, [], rules, { now }).toCopy)).toEqual([nov1, mysql]);
    // The Nov 15 full completed with errors: the latest successful one is Nov 8.
    expect(ids(planCopy(src, [], rules, { now, mostRecentFull: true }).toCopy)).toEqual([nov1, nov8, inc9, mysql]);
  });

  it("copy only picked jobs in manual mode", () => {
    const src = [job("2026-10-01T00:00:00Z"), job("2026-10-02T00:00:00Z", "incremental")];
    const rules = {
      copyType: "Selective" as const,
      selection: { mode: "Manual" as const },
      jobOverrides: [{ jobId: src[1]?.jobId as string, action: "PickForCopy" as const }],
    };
    expect(ids(planCopy(src, [], rules, { now }).toCopy)).toEqual([src[1]?.jobId]);
  });
});

describe("large-source hold", () => {
  it("holds a new copy without spec.backups when its source has jobs older than 14 days or more than 10 TiB", () => {
    const day = 86_400_000;
    expect(largeSourceHold(undefined, { oldestJob: new Date(now - 15 * day).toISOString() }, now)).toContain("15 days ago");
    expect(largeSourceHold(undefined, { oldestJob: new Date(now - 14 * day).toISOString() }, now)).toBeUndefined();
    expect(largeSourceHold(undefined, { oldestJob: new Date(now).toISOString(), bytes: 11 * 1024 ** 4 }, now)).toContain("11.0 TiB");
    expect(largeSourceHold({ mode: "All" }, { oldestJob: "2020-01-01T00:00:00Z" }, now)).toBeUndefined();
    expect(largeSourceHold(undefined, {}, now)).toBeUndefined();
    // Not a new copy: it holds jobs already (an old primary after a promotion).
    expect(largeSourceHold(undefined, { oldestJob: new Date(now - 15 * day).toISOString() }, now, 7)).toBeUndefined();
  });
});
