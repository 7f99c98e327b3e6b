// The job listing of kubectl auxo jobs (docs/cli.md): every job of any copy, with its state on each copy by the aux
// copy's own rule, refined for held jobs (Bad, AvailableWithMissingSnaps); unreadable copies say Unknown; the restore
// order; and the CLI's formatting.
import { describe, expect, it } from "vitest";
import { duration, parseSince, progressBar, size, table, UsageError } from "../../src/cli/format.ts";
import type { CatalogEntry, JobStatus, JobType } from "../../src/policy/catalog.ts";
import { jobListing, type ListedCopy, restoreOrder, stateCounts } from "../../src/policy/joblisting.ts";
import { planCopy } from "../../src/policy/selection.ts";

let n = 0;
function job(startTime: string, type: JobType = "full", status: JobStatus = "completed"): CatalogEntry {
  n++;
  return { jobId: `j${n}`, snapshotId: `s${n}`, originalId: `s${n}`, type, status, client: "db", subclient: "pg", startTime, tagged: true };
}
/** The job as copied to another repository: a new snapshot id, the same job id and original. */
const copied = (e: CatalogEntry): CatalogEntry => ({ ...e, snapshotId: `${e.snapshotId}-copy` });
const now = Date.parse("2026-12-01T12:00:00Z");

const primary = (catalog: CatalogEntry[] | undefined, extra: Partial<ListedCopy> = {}): ListedCopy => ({
  name: "primary",
  primary: true,
  copyType: "Synchronous",
  precedence: 1,
  rules: {},
  catalog,
  ...extra,
});
const secondary = (name: string, catalog: CatalogEntry[] | undefined, extra: Partial<ListedCopy> = {}): ListedCopy => ({
  name,
  primary: false,
  copyType: "Synchronous",
  precedence: 2,
  source: "primary",
  rules: { backups: { mode: "All" } },
  catalog,
  ...extra,
});

describe("jobListing", () => {
  it("lists every job newest first with its state on each copy, as the aux copy counts them", () => {
    const a = job("2026-11-01T00:00:00Z");
    const b = job("2026-11-02T00:00:00Z", "incremental");
    const c = job("2026-11-03T00:00:00Z", "incremental", "failed");
    const rows = jobListing([primary([a, b, c]), secondary("offsite", [copied(a)])], now);
    expect(rows.map((r) => r.jobId)).toEqual([c.jobId, b.jobId, a.jobId]);
    expect(rows.map((r) => r.states)).toEqual([
      { primary: "Available" }, // a failed job is on the primary, and no copy takes it
      { primary: "Available", offsite: "ToBeCopied" },
      { primary: "Available", offsite: "Available" },
    ]);
    // The counts are the aux copy's counts of the same catalogs.
    const plan = planCopy([a, b, c], [copied(a)], { backups: { mode: "All" } }, { now });
    expect(stateCounts(rows, "offsite")).toEqual({ Available: plan.counts.Available, ToBeCopied: plan.counts.ToBeCopied });
  });

  it("shows partial copies, overrides, failed verification and missing snaps", () => {
    const a = job("2026-11-01T00:00:00Z");
    const b = job("2026-11-02T00:00:00Z");
    const d = job("2026-11-03T00:00:00Z");
    const bad = job("2026-11-04T00:00:00Z");
    const snap = job("2026-11-05T00:00:00Z", "full", "completedWithErrors");
    const marked = job("2026-11-06T00:00:00Z");
    const rows = jobListing(
      [
        primary([a, b, d, bad, snap, marked], { snapJobs: new Set([snap.jobId]) }),
        secondary("offsite", [copied(bad), copied(snap), copied(marked)], {
          rules: {
            backups: { mode: "All" },
            jobOverrides: [
              { jobId: d.jobId, action: "DoNotCopy" },
              { jobId: marked.jobId, action: "MarkBad" },
            ],
          },
          history: { lastCopied: new Map(), partial: new Set([b.jobId]), bad: new Set([bad.jobId]) },
          snapJobs: new Set([snap.jobId]),
        }),
      ],
      now,
    );
    const on = (id: string) => rows.find((r) => r.jobId === id)?.states;
    expect(on(a.jobId)).toEqual({ primary: "Available", offsite: "ToBeCopied" });
    expect(on(b.jobId)).toEqual({ primary: "Available", offsite: "PartiallyCopied" });
    expect(on(d.jobId)).toEqual({ primary: "Available", offsite: "DoNotCopy" });
    expect(on(bad.jobId)).toEqual({ primary: "Available", offsite: "Bad" });
    expect(on(snap.jobId)).toEqual({ primary: "AvailableWithMissingSnaps", offsite: "AvailableWithMissingSnaps" });
    expect(on(marked.jobId)).toEqual({ primary: "Available", offsite: "Bad" });
  });

  it("leaves out jobs a selective copy does not take, and keeps jobs aged off the primary", () => {
    const f1 = job("2026-10-01T00:00:00Z");
    const f2 = job("2026-10-15T00:00:00Z");
    const old = job("2026-09-01T00:00:00Z");
    const rows = jobListing(
      [
        primary([f1, f2]),
        secondary("monthly", [copied(old)], {
          copyType: "Selective",
          rules: { copyType: "Selective", backups: { mode: "All" }, selection: { frequency: "Monthly", full: "First" } },
        }),
      ],
      now,
    );
    expect(rows.find((r) => r.jobId === f1.jobId)?.states).toEqual({ primary: "Available", monthly: "ToBeCopied" });
    expect(rows.find((r) => r.jobId === f2.jobId)?.states).toEqual({ primary: "Available" });
    expect(rows.find((r) => r.jobId === old.jobId)?.states).toEqual({ monthly: "Available" });
  });

  it("says Unknown where a copy, or the source a copy's states need, could not be read", () => {
    const a = job("2026-11-01T00:00:00Z");
    const b = job("2026-11-02T00:00:00Z");
    const rows = jobListing([primary([a, b]), secondary("offsite", undefined, { error: "library down" })], now);
    expect(rows.map((r) => r.states)).toEqual([
      { primary: "Available", offsite: "Unknown" },
      { primary: "Available", offsite: "Unknown" },
    ]);
    const noSource = jobListing([primary(undefined, { error: "down" }), secondary("offsite", [copied(a)])], now);
    expect(noSource.map((r) => r.states)).toEqual([{ primary: "Unknown", offsite: "Available" }]);
  });
});

describe("restoreOrder", () => {
  const copies = [
    { name: "monthly", copyType: "Selective" as const, precedence: 2 },
    { name: "dr", copyType: "Synchronous" as const, precedence: 4 },
    { name: "yearly", copyType: "Selective" as const, precedence: 3 },
    { name: "primary", copyType: "Synchronous" as const, precedence: 1 },
  ];
  it("tries synchronous copies by precedence, then selective ones by precedence", () => {
    expect(restoreOrder(copies).map((c) => c.name)).toEqual(["primary", "dr", "monthly", "yearly"]);
  });
  it("tries only the copy given", () => {
    expect(restoreOrder(copies, "yearly").map((c) => c.name)).toEqual(["yearly"]);
  });
});

describe("CLI formatting", () => {
  it("pads columns like kubectl get", () => {
    expect(
      table(
        ["JOB", "STATE"],
        [
          ["j1", "Available"],
          ["job-22", "ToBeCopied"],
        ],
      ),
    ).toBe("JOB      STATE\nj1       Available\njob-22   ToBeCopied\n");
  });
  it("prints sizes, durations and progress", () => {
    expect([size(undefined), size(512), size(1536), size(10 * 1024 ** 3)]).toEqual(["-", "512B", "1.5KiB", "10GiB"]);
    expect([duration(5000), duration(300_000), duration(3 * 3_600_000 + 20 * 60_000), duration(5 * 86_400_000)]).toEqual([
      "5s",
      "5m",
      "3h20m",
      "5d",
    ]);
    expect(progressBar(50, 100, 10)).toBe("[=====>    ]  50%  50B/100B");
    expect(progressBar(100, 100, 10)).toBe("[==========] 100%  100B/100B");
  });
  it("reads --since as a duration or a date, and refuses anything else", () => {
    expect(parseSince("7d", now)).toBe(now - 7 * 86_400_000);
    expect(parseSince("90m", now)).toBe(now - 90 * 60_000);
    expect(parseSince("2026-11-30", now)).toBe(Date.parse("2026-11-30"));
    expect(() => parseSince("last week", now)).toThrow(UsageError);
  });
});
