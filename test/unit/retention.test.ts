// Retention and data aging of one copy and Auxo's safety rules (docs/retention.md): each case asserts the exact set of
// aged job ids.
import { describe, expect, it } from "vitest";
import type { PolicyCopySpec } from "../../src/api/v1alpha1/policycopy.ts";
import type { CatalogEntry, JobStatus, JobType } from "../../src/policy/catalog.ts";
import {
  type DownstreamCopy,
  type RetentionInput,
  type RetentionOverride,
  type RetentionSpec,
  decideRetention,
  massDeletionBreaker,
  nextAgingRun,
  periodStart,
  previewAging,
} from "../../src/policy/retention.ts";

const DAY = 86_400_000;
const HOUR = 3_600_000;
// Sunday 4 January 2026, 00:00 UTC: day 0 of most examples.
const T0 = Date.parse("2026-01-04T00:00:00Z");
const at = (d: number, h = 1) => T0 + d * DAY + h * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();

function job(
  jobId: string,
  start: number | string,
  type: JobType = "full",
  status: JobStatus = "completed",
  extra: Partial<CatalogEntry> = {},
): CatalogEntry {
  return {
    jobId,
    snapshotId: `s-${jobId}`,
    originalId: `s-${jobId}`,
    type,
    status,
    client: "db",
    subclient: "pg",
    startTime: typeof start === "number" ? iso(start) : start,
    endTime: typeof start === "number" ? iso(start + HOUR) : start,
    bytes: 1000,
    tagged: true,
    ...extra,
  };
}
const F = (id: string, t: number | string, status: JobStatus = "completed", extra: Partial<CatalogEntry> = {}) =>
  job(id, t, "full", status, extra);
const I = (id: string, t: number | string, status: JobStatus = "completed", extra: Partial<CatalogEntry> = {}) =>
  job(id, t, "incremental", status, extra);
const D = (id: string, t: number | string) => job(id, t, "differential");

const aged = (input: RetentionInput) => [...decideRetention(input).aged].sort();
const verdict = (input: RetentionInput, id: string) => decideRetention(input).verdicts.find((v) => v.jobId === id);
const sorted = (ids: string[]) => [...ids].sort();

/** Weekly full on Sunday 01:00 and incrementals Monday to Saturday 01:00: ids w<week>-<day>, day 0 is the full. */
function weekly(weeks: number): CatalogEntry[] {
  const out: CatalogEntry[] = [];
  for (let w = 1; w <= weeks; w++) for (let d = 0; d < 7; d++) out.push(job(`w${w}-${d}`, at((w - 1) * 7 + d), d ? "incremental" : "full"));
  return out;
}
const upTo = (catalog: CatalogEntry[], now: number) => catalog.filter((e) => Date.parse(e.startTime) <= now);
const week = (w: number) => Array.from({ length: 7 }, (_, d) => `w${w}-${d}`);

describe("API field names", () => {
  it("take PolicyCopy spec.retention and spec.jobOverrides as they are", () => {
    const spec: PolicyCopySpec["retention"] = {
      enableDataAging: true,
      days: 30,
      cycles: 1,
      spool: false,
      doNotRetainIntermediateIncrementals: false,
      extended: [{ period: "Monthly", keepDays: 365, graceDays: 1, select: "Last", everyHours: 1 }],
      ignoreCompletedWithErrorsForExtendedRetention: false,
      calendar: { weekStartsOn: "Friday", monthStartsOn: 1, yearStartsOn: "January", dayStartsAt: "00:00" },
    };
    const overrides: PolicyCopySpec["jobOverrides"] = [{ jobId: "j", action: "RetainUntil", until: "2026-12-31" }];
    const r: RetentionSpec | undefined = spec;
    const o: readonly RetentionOverride[] | undefined = overrides;
    expect(decideRetention({ catalog: [], retention: r, jobOverrides: o, now: T0 }).verdicts).toEqual([]);
  });
});

describe("basic retention: days and cycles", () => {
  it("defaults to 30 days and 1 cycle: with daily fulls, fulls that started more than 30 days ago age", () => {
    const catalog = Array.from({ length: 40 }, (_, d) => F(`f${d}`, at(d, 0)));
    // f10 started at day 10 00:00; 30 days later is day 40 00:00, before now.
    expect(aged({ catalog, now: at(40, 12) })).toEqual(sorted(Array.from({ length: 11 }, (_, d) => `f${d}`)));
  });

  it("worked example: 14 days and 2 cycles with a weekly full; the oldest week ages once the third week's cycle completes", () => {
    const all = weekly(6);
    const retention = { days: 14, cycles: 2 };
    // Week 3 is complete only once week 4's full exists (Sunday of day 21, 01:00).
    expect(aged({ catalog: upTo(all, at(21, 0)), retention, now: at(21, 0) })).toEqual([]);
    expect(aged({ catalog: upTo(all, at(21, 1)), retention, now: at(21, 1) })).toEqual(sorted(week(1)));
    expect(aged({ catalog: upTo(all, at(27, 23)), retention, now: at(27, 23) })).toEqual(sorted(week(1)));
    expect(aged({ catalog: upTo(all, at(28, 1)), retention, now: at(28, 1) })).toEqual(sorted([...week(1), ...week(2)]));
    // The cycles rule held week 1 although its days were exceeded on day 20.
    expect(verdict({ catalog: upTo(all, at(20, 12)), retention, now: at(20, 12) }, "w1-0")?.reason).toBe("CyclesNotExceeded");
  });

  it("worked example: at least two weeks are always on disk, hour by hour over six weeks", () => {
    const all = weekly(6);
    for (let t = at(0, 1); t <= at(42, 0); t += HOUR) {
      const catalog = upTo(all, t);
      const d = decideRetention({ catalog, retention: { days: 14, cycles: 2 }, now: t });
      const kept = new Set(d.verdicts.filter((v) => v.action === "keep").map((v) => v.jobId));
      for (const e of catalog) if (Date.parse(e.startTime) + 14 * DAY >= t) expect(kept.has(e.jobId)).toBe(true);
      // Two complete weeks (a full with a newer full after it) stay once they exist.
      const fulls = catalog.filter((e) => e.type === "full").map((e) => e.jobId);
      const completeKept = fulls.slice(0, -1).filter((f) => kept.has(f)).length;
      expect(completeKept).toBeGreaterThanOrEqual(Math.min(2, fulls.length - 1));
    }
  });

  it("with more days than cycles need, days decide: 30 days and 2 cycles ages week 1 only after its Saturday is 30 days old", () => {
    const all = weekly(6);
    const retention = { days: 30, cycles: 2 };
    // w1-6 started on day 6 at 01:00; 30 days later is day 36 at 01:00, and the days must be exceeded.
    expect(aged({ catalog: upTo(all, at(36, 1)), retention, now: at(36, 1) })).toEqual([]);
    expect(aged({ catalog: upTo(all, at(36, 1) + 1), retention, now: at(36, 1) + 1 })).toEqual(sorted(week(1)));
  });

  it("worked example (DA-FAQ): 1 day and 1 cycle keeps the whole cycle until its last job is more than a day old", () => {
    const catalog = [F("f1", at(0)), I("i1", at(1)), I("i2", at(2, 20)), F("f2", at(3, 0)), F("f3", at(3, 6))];
    const retention = { days: 1, cycles: 1 };
    expect(aged({ catalog, retention, now: at(3, 12) })).toEqual([]);
    expect(verdict({ catalog, retention, now: at(3, 12) }, "f1")?.reason).toBe("DaysNotExceeded");
    expect(aged({ catalog, retention, now: at(3, 21) })).toEqual(["f1", "i1", "i2"]);
    // Without a newer complete cycle (f3 missing), the cycle stays whatever its age.
    expect(aged({ catalog: catalog.slice(0, 4), retention, now: at(300) })).toEqual([]);
  });

  it("needs the days exceeded, not reached, counted from the job's start time (not its end)", () => {
    const catalog = [F("f1", at(0, 0), "completed", { endTime: iso(at(2, 0)) }), F("f2", at(5)), F("f3", at(6))];
    const retention = { days: 30, cycles: 1 };
    expect(aged({ catalog, retention, now: at(30, 0) })).toEqual([]);
    expect(aged({ catalog, retention, now: at(30, 0) + 1 })).toEqual(["f1"]);
  });

  it("counts days in the policy's time zone: 30 days across the spring DST change end an hour earlier in UTC", () => {
    const start = Date.parse("2026-03-01T12:00:00+01:00"); // noon in Paris, before DST (29 March)
    const catalog = [F("f1", start), F("f2", start + 40 * DAY), F("f3", start + 41 * DAY)];
    const retention = { days: 30, cycles: 1 };
    const parisEnd = Date.parse("2026-03-31T12:00:00+02:00"); // noon in Paris, 30 calendar days later
    expect(parisEnd).toBe(start + 30 * DAY - HOUR);
    expect(aged({ catalog, retention, now: parisEnd, timeZone: "Europe/Paris" })).toEqual([]);
    expect(aged({ catalog, retention, now: parisEnd + 1, timeZone: "Europe/Paris" })).toEqual(["f1"]);
    expect(aged({ catalog, retention, now: parisEnd + 1, timeZone: "UTC" })).toEqual([]);
  });

  it("with a single full the cycle stays open and nothing ages, whatever the days", () => {
    const catalog = [F("f1", at(0)), ...Array.from({ length: 100 }, (_, d) => I(`i${d + 1}`, at(d + 1)))];
    for (const retention of [{}, { days: 0, cycles: 0 }, { days: 1, cycles: 1 }, { daysOnly: true, days: 1 }])
      expect(aged({ catalog, retention, now: at(500) })).toEqual([]);
    expect(verdict({ catalog, retention: { days: 0, cycles: 0 }, now: at(500) }, "f1")?.reason).toBe("CycleOpen");
  });

  it("a full that completed with errors starts a cycle for a file-system agent, not for a database agent", () => {
    const catalog = [
      F("f1", at(0)),
      I("i1", at(1)),
      F("cwe", at(2), "completedWithErrors"),
      I("i3", at(3)),
      F("f4", at(4)),
      I("i5", at(5)),
    ];
    const retention = { days: 1, cycles: 1 };
    // File system: [f1 i1] [cwe i3] [f4 i5]; the first cycle has one newer complete cycle.
    expect(aged({ catalog, retention, now: at(40) })).toEqual(["f1", "i1"]);
    // Database: [f1 i1 cwe i3] [f4 i5]; the only complete cycle has no newer complete one.
    const db = { catalog, retention, now: at(40), agentKind: () => "Database" as const };
    expect(aged(db)).toEqual([]);
    expect(aged({ ...db, catalog: [...catalog, F("f6", at(6))] })).toEqual(["cwe", "f1", "i1", "i3"]);
  });

  it("ages incrementals and differentials with their full as one cycle, never before it", () => {
    const catalog = [F("f1", at(0)), I("i1", at(1)), D("d2", at(2)), I("i3", at(25)), F("f2", at(26)), F("f3", at(27))];
    const retention = { days: 7, cycles: 1 };
    // f1 and i1 are old enough, i3 is not: the whole cycle waits for i3.
    expect(aged({ catalog, retention, now: at(30) })).toEqual([]);
    expect(aged({ catalog, retention, now: at(33) })).toEqual(["d2", "f1", "i1", "i3"]);
  });

  it("never lets a failed or killed full start a cycle; such jobs age with the cycle they fall in", () => {
    const catalog = [F("f1", at(0)), F("bad", at(1), "failed"), I("k", at(2), "killed"), F("f2", at(3)), F("f3", at(4))];
    expect(aged({ catalog, retention: { days: 1, cycles: 1 }, now: at(10) })).toEqual(["bad", "f1", "k"]);
    // With f3 missing, the failed full does not complete the first cycle.
    expect(aged({ catalog: catalog.slice(0, 4), retention: { days: 1, cycles: 1 }, now: at(10) })).toEqual([]);
  });

  it("treats jobs before the first full on the copy (their full is gone) as a leading group that ages by the same rules", () => {
    const catalog = [I("o1", at(0)), I("o2", at(1)), F("f1", at(2)), F("f2", at(3))];
    expect(aged({ catalog, retention: { days: 1, cycles: 1 }, now: at(10) })).toEqual(["o1", "o2"]);
    expect(aged({ catalog: catalog.slice(0, 3), retention: { days: 1, cycles: 1 }, now: at(10) })).toEqual([]);
  });

  it("counts cycles per client and subclient, in any catalog order", () => {
    const a = [F("a1", at(0)), F("a2", at(1)), F("a3", at(2))];
    const b = [F("b1", at(0), "completed", { client: "other" }), F("b2", at(1), "completed", { client: "other" })];
    const c = [F("c1", at(0), "completed", { subclient: "logs" }), F("c2", at(5), "completed", { subclient: "logs" })];
    const catalog = [...c, ...b, ...a].reverse();
    expect(aged({ catalog, retention: { days: 1, cycles: 1 }, now: at(10) })).toEqual(["a1"]);
  });

  it("with cycles 0, ages every complete cycle once its days pass, never the open one", () => {
    const catalog = [F("f1", at(0)), I("i1", at(1)), F("f2", at(2)), I("i2", at(3))];
    expect(aged({ catalog, retention: { days: 1, cycles: 0 }, now: at(10) })).toEqual(["f1", "i1"]);
  });
});

describe("data aging off and infinite retention", () => {
  const catalog = weekly(10);
  it("ages nothing when data aging is off, whatever else the spec says", () => {
    const d = decideRetention({ catalog, retention: { enableDataAging: false, days: 0, cycles: 0, spool: true }, now: at(1000) });
    expect(d.aged).toEqual([]);
    expect(new Set(d.verdicts.map((v) => v.reason))).toEqual(new Set(["DataAgingDisabled"]));
  });
  it("ages nothing with days -1, even on a spool copy (a contradictory spec keeps data)", () => {
    const downstream: DownstreamCopy[] = [{ name: "b", needs: new Set(), has: new Set(catalog.map((e) => e.jobId)) }];
    for (const retention of [
      { days: -1, cycles: 0 },
      { days: -1, spool: true },
    ]) {
      const d = decideRetention({ catalog, retention, downstream, now: at(1000) });
      expect(d.aged).toEqual([]);
      expect(new Set(d.verdicts.map((v) => v.reason))).toEqual(new Set(["InfiniteRetention"]));
    }
  });
});

describe("days-only retention", () => {
  it("ignores cycles: each job ages by its own age, but a kept job keeps the jobs it needs", () => {
    const catalog = [F("f1", at(0)), I("i1", at(1)), D("d33", at(33)), F("f2", at(40)), I("i41", at(41))];
    const retention = { days: 10, cycles: 5, daysOnly: true };
    // d33 is 9 days old at day 42: kept, and it needs f1; i1 is old and nothing kept needs it.
    expect(aged({ catalog, retention, now: at(42, 12) })).toEqual(["i1"]);
    expect(verdict({ catalog, retention, now: at(42, 12) }, "f1")?.reason).toBe("NeededByKeptJob");
    expect(aged({ catalog, retention, now: at(45) })).toEqual(["d33", "f1", "i1"]);
    // The cycles rule alone (5 cycles) would keep everything.
    expect(aged({ catalog, retention: { days: 10, cycles: 5 }, now: at(45) })).toEqual([]);
  });
});

describe("intermediate incrementals (doNotRetainIntermediateIncrementals)", () => {
  const catalog = [
    F("f", at(0)),
    I("i1", at(1)),
    I("i2", at(2)),
    D("d3", at(3)),
    I("i4", at(4)),
    D("d5", at(5)),
    I("i6", at(6)),
    F("f2", at(7)),
  ];
  it("drops incrementals and differentials before a newer differential once their days pass, in a cycle kept by cycles", () => {
    const retention = { days: 2, cycles: 5, doNotRetainIntermediateIncrementals: true };
    expect(aged({ catalog, retention, now: at(8, 12) })).toEqual(["d3", "i1", "i2", "i4"]);
    expect(aged({ catalog, retention: { days: 2, cycles: 5 }, now: at(8, 12) })).toEqual([]);
  });
  it("still honours the days, and keeps what a younger intermediate job depends on", () => {
    const retention = { days: 5, cycles: 5, doNotRetainIntermediateIncrementals: true };
    // i4 (day 4) is not 5 days old: kept, and it needs d3 (which needs only f); i1 and i2 go.
    expect(aged({ catalog, retention, now: at(8, 12) })).toEqual(["i1", "i2"]);
    expect(verdict({ catalog, retention, now: at(8, 12) }, "d3")?.reason).toBe("NeededByKeptJob");
  });
  it("keeps intermediate jobs of the newest cycle: it is the last restorable chain", () => {
    const retention = { days: 0, cycles: 5, doNotRetainIntermediateIncrementals: true };
    expect(aged({ catalog: catalog.slice(0, 7), retention, now: at(20) })).toEqual([]);
  });
});

describe("spool copies", () => {
  const catalog = [F("f1", at(0)), I("i1", at(1)), I("i2", at(2)), F("f2", at(3)), I("x", at(3, 5), "failed"), I("i3", at(4))];
  const copy = (name: string, has: string[], needs: string[] = [], more: Partial<DownstreamCopy> = {}): DownstreamCopy => ({
    name,
    has: new Set(has),
    needs: new Set(needs),
    ...more,
  });
  const spool = { spool: true };
  const now = at(4, 12);

  it("ages a job as soon as every copy that sources from it holds it, whatever its age, except the last full chain", () => {
    const downstream = [copy("offsite", ["f1", "i1", "i2", "f2"]), copy("vault", ["f1", "i1", "i2", "f2"])];
    expect(aged({ catalog, retention: spool, downstream, now })).toEqual(["f1", "i1", "i2"]);
    expect(verdict({ catalog, retention: spool, downstream, now }, "f2")?.reason).toBe("LastRestorableFull");
  });
  it("keeps a job a copy still needs, and the full and incrementals that job needs", () => {
    const downstream = [copy("offsite", ["f1", "i1", "i2", "f2"]), copy("vault", ["f1", "i1", "f2"], ["i2"])];
    expect(aged({ catalog, retention: spool, downstream, now })).toEqual([]);
    const d = decideRetention({ catalog, retention: spool, downstream, now });
    expect(d.verdicts.find((v) => v.jobId === "i2")?.reason).toBe("DownstreamNeeds");
    expect(d.verdicts.find((v) => v.jobId === "f1")?.reason).toBe("NeededByKeptJob");
  });
  it("keeps a job a synchronous copy does not hold yet even when nobody lists it as needed (deferred)", () => {
    const downstream = [copy("offsite", ["f1", "i1"])];
    expect(aged({ catalog, retention: spool, downstream, now })).toEqual([]);
    expect(verdict({ catalog, retention: spool, downstream, now }, "i2")).toMatchObject({
      reason: "SpoolNotCopied",
      message: "spool copy: not yet on offsite",
    });
  });
  it("does not wait for jobs a copy will never take: skipped ones, failed ones, and what a selective copy does not select", () => {
    const downstream = [
      copy("offsite", ["f1"], [], { skips: new Set(["i1", "i2"]) }),
      copy("monthly", [], ["i1"], { copyType: "Selective" }),
    ];
    // i1 is still needed by the selective copy (and needs f1); i2 is skipped by offsite and not selected by monthly.
    expect(aged({ catalog, retention: spool, downstream, now })).toEqual(["i2"]);
    expect(verdict({ catalog, retention: spool, downstream, now }, "i2")?.reason).toBe("SpoolNotTaken");
    // A failed job is never copied, so it goes at once, except inside the last full chain, which is kept whole.
    expect(verdict({ catalog, retention: spool, downstream, now }, "x")?.reason).toBe("LastRestorableFull");
    const older = [F("f0", at(-2)), I("y", at(-1), "killed"), ...catalog];
    expect(aged({ catalog: older, retention: spool, downstream: [copy("offsite", ["f0"])], now })).toEqual(["f0", "y"]);
  });
  it("ages nothing when no copy sources from it: the data would exist nowhere else", () => {
    expect(aged({ catalog, retention: spool, now })).toEqual([]);
    expect(verdict({ catalog, retention: spool, now }, "f1")?.reason).toBe("SpoolNoDownstream");
  });
  it("waits for inactive copies unless the inactive-copy check is off", () => {
    const downstream = [copy("offsite", ["f1", "i1", "i2"]), copy("old", ["f1", "i1"], [], { active: false })];
    expect(aged({ catalog, retention: spool, downstream, now })).toEqual([]);
    expect(aged({ catalog, retention: spool, downstream, now, considerInactiveCopies: false })).toEqual(["f1", "i1", "i2"]);
  });
});

describe("downstream copies hold source jobs, inactive ones too", () => {
  const catalog = [F("f1", at(0)), I("i1", at(1)), I("i2", at(2)), I("i3", at(3)), F("f2", at(10)), F("f3", at(11))];
  const retention = { days: 1, cycles: 1 };
  const now = at(20);
  it("keeps a job a copy still needs (To Be Copied or Partially Copied), with the jobs it depends on", () => {
    expect(aged({ catalog, retention, now })).toEqual(["f1", "i1", "i2", "i3"]);
    const downstream: DownstreamCopy[] = [{ name: "offsite", needs: new Set(["i2"]), has: new Set() }];
    expect(aged({ catalog, retention, now, downstream })).toEqual(["i3"]);
    const d = decideRetention({ catalog, retention, now, downstream });
    expect(d.verdicts.find((v) => v.jobId === "i2")).toMatchObject({
      reason: "DownstreamNeeds",
      message: expect.stringContaining("offsite"),
    });
    expect(d.verdicts.find((v) => v.jobId === "f1")?.reason).toBe("NeededByKeptJob");
  });
  it("keeps it for an inactive copy while inactive copies count (the default), not once they do not", () => {
    const downstream: DownstreamCopy[] = [{ name: "cold", active: false, needs: new Set(["f1"]), has: new Set() }];
    expect(aged({ catalog, retention, now, downstream })).toEqual(["i1", "i2", "i3"]);
    expect(aged({ catalog, retention, now, downstream, considerInactiveCopies: false })).toEqual(["f1", "i1", "i2", "i3"]);
  });
});

describe("the last restorable full of each subclient (safety)", () => {
  it("keeps the newest full that completed, and everything after it, even when a newer full completed with errors", () => {
    const catalog = [F("f1", at(0)), I("i1", at(1)), F("cwe", at(2), "completedWithErrors"), I("i3", at(3))];
    // Without the rule, cycles 0 would age the complete cycle [f1 i1].
    expect(aged({ catalog, retention: { days: 0, cycles: 0 }, now: at(10) })).toEqual([]);
    expect(verdict({ catalog, retention: { days: 0, cycles: 0 }, now: at(10) }, "f1")?.reason).toBe("LastRestorableFull");
    expect(aged({ catalog: [...catalog, F("f4", at(4))], retention: { days: 0, cycles: 0 }, now: at(10) })).toEqual([
      "cwe",
      "f1",
      "i1",
      "i3",
    ]);
  });
  it("skips a newest full marked bad (override or failed verification) and keeps the one before it", () => {
    const catalog = [F("f1", at(0)), I("i1", at(1)), F("f2", at(2)), I("i3", at(3))];
    const retention = { days: 0, cycles: 0 };
    expect(aged({ catalog, retention, now: at(10) })).toEqual(["f1", "i1"]);
    expect(aged({ catalog, retention, now: at(10), badJobs: new Set(["f2"]) })).toEqual([]);
    expect(aged({ catalog, retention, now: at(10), jobOverrides: [{ jobId: "f2", action: "MarkBad" }] })).toEqual([]);
  });
  it("falls back to the newest full that completed with errors when no full completed", () => {
    const catalog = [F("c1", at(0), "completedWithErrors"), F("c2", at(1), "completedWithErrors"), I("i", at(2))];
    expect(aged({ catalog, retention: { days: 0, cycles: 0, daysOnly: true }, now: at(10) })).toEqual(["c1"]);
  });
  // Found by the property test (seed -646122697, shrunk): a second override of the same job (RetainForever after
  // MarkBad) used to replace the first, so the bad full j6 counted as restorable and j7 after the real one aged.
  it("a full marked bad stays bad when the job has another override too, whatever their order", () => {
    const catalog = [
      F("j2", "2025-01-01T00:02:00.002Z", "killed"),
      I("j5", "2025-01-01T00:16:00.005Z"),
      F("j3", "2025-10-05T02:04:00.003Z", "completedWithErrors"),
      F("j7", "2025-10-11T04:42:00.007Z", "killed"),
      // Dated after now (a clock that was ahead when they ran).
      I("j0", "2026-02-16T07:53:00.000Z", "completedWithErrors"),
      F("j6", "2026-09-28T08:17:00.006Z", "completedWithErrors"),
    ];
    const now = Date.parse("2025-10-11T04:42:00.008Z");
    const retention = { days: 0, cycles: 0, daysOnly: true };
    const markBad = { jobId: "j6", action: "MarkBad" } as const;
    const forever = { jobId: "j6", action: "RetainForever" } as const;
    for (const jobOverrides of [
      [markBad, forever],
      [forever, markBad],
    ]) {
      expect(aged({ catalog, retention, now, jobOverrides })).toEqual(["j2", "j5"]);
      expect(verdict({ catalog, retention, now, jobOverrides }, "j3")?.reason).toBe("LastRestorableFull");
      expect(verdict({ catalog, retention, now, jobOverrides }, "j7")?.reason).toBe("LastRestorableFull");
    }
  });
  // Found by the property test (seed 245502, shrunk; CI saw the same as "j21 after j21"): the last restorable full
  // itself aged, because a newer full with MarkBad and RetainForever counted as restorable.
  it("keeps the last restorable full itself when the newer full is marked bad and also retained forever", () => {
    const catalog = [
      F("j13", "2025-01-05T08:34:00.013Z"),
      job("j12", "2025-01-08T08:46:00.012Z", "log", "killed"),
      F("j4", "2025-02-10T01:44:00.004Z"),
      I("j3", "2025-03-10T01:59:00.003Z"),
      F("j8", "2025-05-30T12:48:00.008Z", "killed"),
    ];
    const input = {
      catalog,
      retention: { days: 0, cycles: 0, daysOnly: true },
      now: Date.parse("2025-01-05T08:34:00.014Z"),
      jobOverrides: [
        { jobId: "j4", action: "MarkBad" as const },
        { jobId: "j4", action: "RetainForever" as const },
      ],
    };
    expect(aged(input)).toEqual([]);
    expect(verdict(input, "j13")?.reason).toBe("LastRestorableFull");
  });
});

describe("manual per-job retention", () => {
  const catalog = [F("f1", at(0)), I("i1", at(1)), I("i2", at(2)), I("i3", at(3)), F("f2", at(10)), F("f3", at(11))];
  const retention = { days: 1, cycles: 1 };
  const now = at(20);
  it("RetainForever keeps the job, and the full and incrementals it needs", () => {
    expect(aged({ catalog, retention, now, jobOverrides: [{ jobId: "i2", action: "RetainForever" }] })).toEqual(["i3"]);
  });
  it("RetainUntil keeps the job through the whole date in the policy's time zone, then the copy's rules apply", () => {
    const jobOverrides: RetentionOverride[] = [{ jobId: "f1", action: "RetainUntil", until: "2026-01-24" }];
    const tz = "America/New_York";
    const endOfDay = Date.parse("2026-01-25T00:00:00-05:00");
    expect(aged({ catalog, retention, jobOverrides, timeZone: tz, now: endOfDay - 1 })).toEqual(["i1", "i2", "i3"]);
    expect(aged({ catalog, retention, jobOverrides, timeZone: tz, now: endOfDay })).toEqual(["f1", "i1", "i2", "i3"]);
    // The date does not shorten retention: before the copy's own rules are met, it stays.
    expect(aged({ catalog, retention: { days: 60, cycles: 1 }, jobOverrides, timeZone: tz, now: endOfDay })).toEqual([]);
  });
  it("RetainUntil with an unreadable date keeps the job (bad input never deletes)", () => {
    const input = { catalog, retention, now, jobOverrides: [{ jobId: "f1", action: "RetainUntil" as const, until: "soon" }] };
    expect(aged(input)).toEqual(["i1", "i2", "i3"]);
    expect(verdict(input, "f1")).toMatchObject({ reason: "RetainUntil", message: expect.stringContaining("unreadable") });
  });
  // The API allows one override per job; should a job still have several, each applies and none hides another.
  it("several overrides of one job all apply: RetainForever is not lost to a later MarkBad, the latest RetainUntil counts", () => {
    const forever = [
      { jobId: "f1", action: "RetainForever" as const },
      { jobId: "f1", action: "MarkBad" as const },
    ];
    expect(aged({ catalog, retention, now, jobOverrides: forever })).toEqual(["i1", "i2", "i3"]);
    expect(verdict({ catalog, retention, now, jobOverrides: forever }, "f1")?.reason).toBe("RetainForever");
    const endOfDay = Date.parse("2026-01-25T00:00:00Z"); // after 2026-01-24, before the end of 2026-01-30
    for (const jobOverrides of [
      [
        { jobId: "f1", action: "RetainUntil" as const, until: "2026-01-30" },
        { jobId: "f1", action: "RetainUntil" as const, until: "2026-01-24" },
      ],
      [
        { jobId: "f1", action: "RetainUntil" as const, until: "2026-01-24" },
        { jobId: "f1", action: "RetainUntil" as const, until: "2026-01-30" },
      ],
    ]) {
      expect(aged({ catalog, retention, jobOverrides, now: endOfDay })).toEqual(["i1", "i2", "i3"]);
      expect(verdict({ catalog, retention, jobOverrides, now: endOfDay }, "f1")?.message).toContain("2026-01-30");
    }
  });
  it("DoNotRetain lifts extended retention from the job; the copy's basic rules still apply", () => {
    const ext = { days: 1, cycles: 1, extended: [{ period: "AllFulls" as const, keepDays: 365 }] };
    expect(aged({ catalog, retention: ext, now })).toEqual(["i1", "i2", "i3"]);
    expect(aged({ catalog, retention: ext, now, jobOverrides: [{ jobId: "f1", action: "DoNotRetain" }] })).toEqual([
      "f1",
      "i1",
      "i2",
      "i3",
    ]);
    expect(aged({ catalog, retention: { days: 60 }, now, jobOverrides: [{ jobId: "f1", action: "DoNotRetain" }] })).toEqual([]);
  });
});

describe("extended retention", () => {
  // Daily fulls at 01:00 UTC from 1 June to 30 September 2026.
  const from = Date.parse("2026-06-01T01:00:00Z");
  const daily = Array.from({ length: 122 }, (_, d) => F(`d${iso(from + d * DAY).slice(0, 10)}`, from + d * DAY));
  const now = Date.parse("2026-10-01T12:00:00Z");
  const basic = { days: 7, cycles: 1 };
  const keptIds = (input: RetentionInput) =>
    decideRetention(input)
      .verdicts.filter((v) => v.action === "keep")
      .map((v) => v.jobId);

  it("monthly, last full: keeps the last full of each month for keepDays", () => {
    const retention = { ...basic, extended: [{ period: "Monthly" as const, keepDays: 365 }] };
    expect(keptIds({ catalog: daily, retention, now })).toEqual([
      "d2026-06-30",
      "d2026-07-31",
      "d2026-08-31",
      // Basic retention: 7 days (24 September 01:00 is more than 7 days before 1 October 12:00).
      ...Array.from({ length: 6 }, (_, i) => `d2026-09-${25 + i}`),
    ]);
    expect(verdict({ catalog: daily, retention, now }, "d2026-07-31")?.message).toMatch(/extended rule 1 \(Monthly\).*until 2027-07-31/);
  });

  it("monthly, first full; and the kept full ages once keepDays are exceeded", () => {
    const retention = { ...basic, extended: [{ period: "Monthly" as const, keepDays: 100, select: "First" as const }] };
    // 1 June + 100 days = 9 September: June's first full has aged by 1 October, July's and later have not.
    expect(keptIds({ catalog: daily, retention, now }).slice(0, 3)).toEqual(["d2026-07-01", "d2026-08-01", "d2026-09-01"]);
    const forever = { ...basic, extended: [{ period: "Monthly" as const, keepDays: -1, select: "First" as const }] };
    expect(keptIds({ catalog: daily, retention: forever, now: now + 5000 * DAY }).slice(0, 4)).toEqual([
      "d2026-06-01",
      "d2026-07-01",
      "d2026-08-01",
      "d2026-09-01",
    ]);
  });

  it("a full that starts on 31 August at 23:55 counts for August, in the policy's time zone", () => {
    const tz = "Europe/Paris";
    const catalog = [
      F("aug-early", "2026-08-20T10:00:00+02:00"),
      F("aug-late", "2026-08-31T23:55:00+02:00"),
      F("sep", "2026-09-01T00:30:00+02:00"),
      F("oct", "2026-10-01T10:00:00+02:00"),
      F("oct2", "2026-10-02T10:00:00+02:00"),
    ];
    const retention = { days: 1, cycles: 1, extended: [{ period: "Monthly" as const, keepDays: 365 }] };
    expect(aged({ catalog, retention, timeZone: tz, now: Date.parse("2026-10-10T00:00:00Z") })).toEqual(["aug-early"]);
    // In UTC, 23:55 in Paris is 21:55 on the 31st too, but 00:30 in Paris is still 31 August in UTC.
    expect(aged({ catalog, retention, timeZone: "UTC", now: Date.parse("2026-10-10T00:00:00Z") })).toEqual(["aug-early", "aug-late"]);
  });

  it("weekly with the week starting on Friday (the default): a full on Thursday 23:59 belongs to the previous week", () => {
    // Thursday 8 and Friday 9 October 2026.
    const catalog = [F("wed", "2026-10-07T10:00:00Z"), F("thu", "2026-10-08T23:59:00Z"), F("fri", "2026-10-09T00:01:00Z")];
    const more = [...catalog, F("n1", "2026-10-20T00:00:00Z"), F("n2", "2026-10-21T00:00:00Z")];
    const retention = { days: 1, cycles: 1, extended: [{ period: "Weekly" as const, keepDays: 60 }] };
    const t = Date.parse("2026-10-25T00:00:00Z");
    expect(aged({ catalog: more, retention, now: t })).toEqual(["wed"]);
    // Week starting on Thursday: thu and fri share a week, and fri is its last full.
    const thursday = { ...retention, calendar: { weekStartsOn: "Thursday" } };
    expect(aged({ catalog: more, retention: thursday, now: t })).toEqual(["thu"]);
  });

  it("hourly every 2 hours keeps the last full of each 2-hour block", () => {
    const start = Date.parse("2026-10-01T00:00:00Z");
    const catalog = Array.from({ length: 6 }, (_, h) => F(`h${h}`, start + h * HOUR));
    const all = [...catalog, F("later", start + 10 * DAY), F("later2", start + 11 * DAY)];
    const retention = { days: 1, cycles: 1, extended: [{ period: "Hourly" as const, everyHours: 2, keepDays: 90 }] };
    expect(aged({ catalog: all, retention, now: start + 12 * DAY })).toEqual(["h0", "h2", "h4"]);
  });

  it("grace days: a month without a full is served by the first full within graceDays after it ends", () => {
    // No full in August; fulls on 1 and 2 September, then 30 September.
    const catalog = [
      F("jul", "2026-07-15T01:00:00Z"),
      I("aug-incr", "2026-08-10T01:00:00Z"),
      F("sep1", "2026-09-01T01:00:00Z"),
      F("sep2", "2026-09-02T01:00:00Z"),
      F("sep30", "2026-09-30T01:00:00Z"),
      F("oct", "2026-10-05T01:00:00Z"),
      F("oct2", "2026-10-06T01:00:00Z"),
    ];
    const rule = { period: "Monthly" as const, keepDays: 365 };
    const t = Date.parse("2026-10-20T00:00:00Z");
    expect(aged({ catalog, retention: { days: 1, cycles: 1, extended: [rule] }, now: t })).toEqual(["aug-incr", "sep1", "sep2"]);
    expect(aged({ catalog, retention: { days: 1, cycles: 1, extended: [{ ...rule, graceDays: 2 }] }, now: t })).toEqual([
      "aug-incr",
      "sep2",
    ]);
    expect(verdict({ catalog, retention: { days: 1, cycles: 1, extended: [{ ...rule, graceDays: 2 }] }, now: t }, "sep1")?.message).toMatch(
      /grace/,
    );
    // A grace window that ends before the next full serves nobody.
    const late = catalog.filter((e) => e.jobId !== "sep1");
    expect(aged({ catalog: late, retention: { days: 1, cycles: 1, extended: [{ ...rule, graceDays: 1 }] }, now: t })).toEqual([
      "aug-incr",
      "sep2",
    ]);
    // No grace credit for periods before the subclient's first job on the copy.
    const first = [F("sep1", "2026-09-01T01:00:00Z"), F("sep5", "2026-09-05T01:00:00Z"), ...catalog.slice(5)];
    expect(aged({ catalog: first, retention: { days: 1, cycles: 1, extended: [{ ...rule, graceDays: 2 }] }, now: t })).toEqual(["sep1"]);
  });

  it("ignores fulls that completed with errors unless ignoreCompletedWithErrorsForExtendedRetention is set", () => {
    const catalog = [
      F("aug-ok", "2026-08-20T01:00:00Z"),
      F("aug-cwe", "2026-08-30T01:00:00Z", "completedWithErrors"),
      F("oct", "2026-10-05T01:00:00Z"),
      F("oct2", "2026-10-06T01:00:00Z"),
    ];
    const extended = [{ period: "Monthly" as const, keepDays: 365 }];
    const t = Date.parse("2026-10-20T00:00:00Z");
    expect(aged({ catalog, retention: { days: 1, cycles: 1, extended }, now: t })).toEqual(["aug-cwe"]);
    expect(
      aged({ catalog, retention: { days: 1, cycles: 1, extended, ignoreCompletedWithErrorsForExtendedRetention: true }, now: t }),
    ).toEqual(["aug-ok"]);
  });

  it("combines up to three rules: weekly for 30 days, monthly for a year, yearly forever", () => {
    const retention = {
      ...basic,
      extended: [
        { period: "Weekly" as const, keepDays: 30 },
        { period: "Monthly" as const, keepDays: 365 },
        { period: "Yearly" as const, keepDays: -1, select: "First" as const },
      ],
    };
    // Weeks start on Friday, so a week's last full is on Thursday: those of 3 to 24 September are within 30 days.
    expect(keptIds({ catalog: daily, retention, now })).toEqual([
      "d2026-06-01",
      "d2026-06-30",
      "d2026-07-31",
      "d2026-08-31",
      "d2026-09-03",
      "d2026-09-10",
      "d2026-09-17",
      "d2026-09-24",
      ...Array.from({ length: 6 }, (_, i) => `d2026-09-${25 + i}`),
    ]);
  });

  it("keeps only the full by default; its incrementals age by basic retention, unless extendedKeepsCycle", () => {
    const catalog = [
      F("f1", "2026-08-30T01:00:00Z"),
      I("i1", "2026-08-31T01:00:00Z"),
      F("f2", "2026-10-01T01:00:00Z"),
      F("f3", "2026-10-02T01:00:00Z"),
    ];
    const extended = [{ period: "Monthly" as const, keepDays: 365 }];
    const t = Date.parse("2026-10-20T00:00:00Z");
    expect(aged({ catalog, retention: { days: 1, cycles: 1, extended }, now: t })).toEqual(["i1"]);
    expect(aged({ catalog, retention: { days: 1, cycles: 1, extended, extendedKeepsCycle: true }, now: t })).toEqual([]);
  });
});

describe("retention on selective copies", () => {
  it("count cycles and days on the copy alone: each copied full with its carried incrementals is one cycle", () => {
    // Monthly fulls with the incremental carried with each, as a selective copy receives them.
    const catalog = ["01", "02", "03", "04", "05"].flatMap((m) => [
      F(`f${m}`, `2026-${m}-28T01:00:00Z`),
      I(`i${m}`, `2026-${m}-29T01:00:00Z`),
    ]);
    const retention = { days: 30, cycles: 2 };
    // Complete cycles: Jan..Apr; Jan has 3 newer complete ones, Feb 2, Mar 1.
    expect(aged({ catalog, retention, now: Date.parse("2026-06-01T00:00:00Z") })).toEqual(["f01", "f02", "i01", "i02"]);
  });
});

describe("mass-deletion breaker", () => {
  const catalog = Array.from({ length: 10 }, (_, d) => F(`f${d}`, at(d)));
  it("stops a run that ages more than the share allowed, and lets through one at or under it", () => {
    const d = decideRetention({ catalog, retention: { days: 0, cycles: 1 }, now: at(20) }); // ages f0..f7
    expect(d.aged.length).toBe(8);
    expect(massDeletionBreaker(d, 50)).toMatchObject({ stop: true, reason: "MassDeletion", counted: 8, total: 10, share: 80 });
    expect(massDeletionBreaker(d, 50).message).toContain("8 of 10 jobs (80%)");
    expect(massDeletionBreaker(d, 80)).toMatchObject({ stop: false, share: 80 });
    expect(massDeletionBreaker(d, 79).stop).toBe(true);
  });
  it("never stops an empty copy or a run that ages nothing", () => {
    expect(massDeletionBreaker(decideRetention({ catalog: [], now: at(0) }), 1).stop).toBe(false);
    expect(massDeletionBreaker(decideRetention({ catalog, now: at(11) }), 1).stop).toBe(false);
  });
  it("does not count spool jobs that every copy after the spool holds, but counts jobs aged nowhere else", () => {
    const downstream: DownstreamCopy[] = [{ name: "b", needs: new Set(), has: new Set(catalog.map((e) => e.jobId)) }];
    const d = decideRetention({ catalog, retention: { spool: true }, downstream, now: at(20) });
    expect(d.aged.length).toBe(9);
    expect(massDeletionBreaker(d, 10)).toMatchObject({ stop: false, counted: 0 });
    const skipped = decideRetention({
      catalog,
      retention: { spool: true },
      downstream: [{ name: "b", needs: new Set(), has: new Set(), skips: new Set(catalog.map((e) => e.jobId)) }],
      now: at(20),
    });
    expect(massDeletionBreaker(skipped, 50)).toMatchObject({ stop: true, counted: 9 });
  });
});

describe("dry run and summary", () => {
  const catalog = Array.from({ length: 40 }, (_, d) => F(`f${d}`, at(d, 0), "completed", { bytes: 100 + d }));
  it("previews how many jobs and bytes the next run would age, without changing anything", () => {
    const input: RetentionInput = { catalog, now: at(40, 10), timeZone: "UTC" };
    const next = nextAgingRun(input.now, "12:00", "UTC");
    expect(next).toBe(at(40, 12));
    const p = previewAging(input, next, 50);
    expect(p).toMatchObject({ at: iso(at(40, 12)), jobs: 11, bytes: 11 * 100 + 55, breaker: { stop: false } });
    expect(p.jobIds).toEqual(Array.from({ length: 11 }, (_, d) => `f${d}`));
    expect(previewAging(input, at(45, 12)).jobs).toBe(16);
    expect(previewAging(input, at(45, 12)).breaker).toBeUndefined();
  });
  it("finds the next run in the policy's time zone, strictly after now", () => {
    const paris = Date.parse("2026-07-01T12:00:00+02:00");
    expect(nextAgingRun(paris - 1, "12:00", "Europe/Paris")).toBe(paris);
    expect(nextAgingRun(paris, "12:00", "Europe/Paris")).toBe(paris + DAY);
  });
  it("sums jobs and bytes by outcome and reason, and explains every verdict", () => {
    const d = decideRetention({ catalog, now: at(40, 12) });
    expect(d.summary).toEqual({
      jobs: 40,
      bytes: 40 * 100 + 780,
      agedJobs: 11,
      agedBytes: 11 * 100 + 55,
      keptJobs: 29,
      keptBytes: 29 * 100 + 725,
      byReason: { RetentionMet: 11, DaysNotExceeded: 27, CyclesNotExceeded: 1, CycleOpen: 1 },
    });
    expect(d.verdicts.map((v) => v.jobId)).toEqual(catalog.map((e) => e.jobId));
    for (const v of d.verdicts) expect(v.message.length).toBeGreaterThan(10);
    expect(d.verdicts[0]?.message).toBe(
      "its cycle has 38 newer complete cycles (retention keeps 1) and every job of it started more than 30 days ago",
    );
  });
  it("keeps a job whose start time cannot be read, and lets it count for nothing (no newer cycle, no last full)", () => {
    const c = [F("f1", "garbage"), F("f2", at(1)), F("f3", at(2)), F("f4", at(3))];
    expect(aged({ catalog: c, retention: { days: 1, cycles: 1 }, now: at(10) })).toEqual(["f2"]);
    expect(verdict({ catalog: c, retention: { days: 1, cycles: 1 }, now: at(10) }, "f1")?.reason).toBe("UnreadableStartTime");
  });
});

describe("periods", () => {
  it("cut months at monthStartsOn and quarters at yearStartsOn, at dayStartsAt, in the time zone", () => {
    const cal = { monthStartsOn: 5, yearStartsOn: "February", dayStartsAt: "06:00" };
    expect(iso(periodStart(Date.parse("2026-03-04T12:00:00Z"), "Monthly", cal))).toBe("2026-02-05T06:00:00.000Z");
    expect(iso(periodStart(Date.parse("2026-03-05T05:59:00Z"), "Monthly", cal))).toBe("2026-02-05T06:00:00.000Z");
    expect(iso(periodStart(Date.parse("2026-03-05T06:00:00Z"), "Monthly", cal))).toBe("2026-03-05T06:00:00.000Z");
    expect(iso(periodStart(Date.parse("2026-07-01T00:00:00Z"), "Quarterly", cal))).toBe("2026-05-05T06:00:00.000Z");
    expect(iso(periodStart(Date.parse("2026-01-10T00:00:00Z"), "Yearly", cal))).toBe("2025-02-05T06:00:00.000Z");
    expect(iso(periodStart(Date.parse("2026-10-08T23:59:00Z"), "Weekly"))).toBe("2026-10-02T00:00:00.000Z");
    expect(iso(periodStart(Date.parse("2026-10-08T23:59:00+02:00"), "Daily", {}, "Europe/Paris"))).toBe("2026-10-07T22:00:00.000Z");
  });

  it("starts an hour that happens twice (clocks going back) at its first occurrence, as periodKey names it", () => {
    // Havana, 2 Nov 2025: 01:00 CDT goes back to 00:00 CST, so 00:00-00:59 happens at 04:00Z and again at 05:00Z.
    for (const t of ["2025-11-02T04:00:00Z", "2025-11-02T05:30:00Z"])
      expect(periodStart(Date.parse(t), "Hourly", {}, "America/Havana")).toBe(Date.parse("2025-11-02T04:00:00Z"));
    expect(iso(periodStart(Date.parse("2025-11-02T06:10:00Z"), "Hourly", {}, "America/Havana"))).toBe("2025-11-02T06:00:00.000Z");
  });
});
