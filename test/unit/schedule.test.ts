// The automatic aux copy: first run one interval after the policy exists, never two at once, no backlog of missed
// runs, and CronJob-like history limits.
import { describe, expect, it } from "vitest";
import { autoCopy, overHistory, slotName } from "../../src/policy/schedule.ts";

const base = { enabled: true, everyMs: 1_800_000, createdAt: 0, now: 0, running: false, hasTargets: true };

describe("automatic aux copy", () => {
  it("runs one interval after the policy exists, then every interval after the last run", () => {
    expect(autoCopy({ ...base, now: 60_000 })).toEqual({ create: false, recheckMs: 1_740_000 });
    expect(autoCopy({ ...base, now: 1_800_000 })).toEqual({ create: true, slot: 1_800_000, recheckMs: 1_800_000 });
    expect(autoCopy({ ...base, lastRun: 1_800_000, now: 2_000_000 })).toEqual({ create: false, recheckMs: 1_600_000 });
  });

  it("waits while the last automatic job runs, then starts once, however many intervals were missed", () => {
    expect(autoCopy({ ...base, lastRun: 0, now: 10 * 1_800_000, running: true })).toEqual({ create: false });
    expect(autoCopy({ ...base, lastRun: 0, now: 10 * 1_800_000 })).toMatchObject({ create: true, slot: 1_800_000 });
  });

  it("does nothing when switched off or when the policy has no secondary copy", () => {
    expect(autoCopy({ ...base, enabled: false, now: 1e9 })).toEqual({ create: false });
    expect(autoCopy({ ...base, hasTargets: false, now: 1e9 })).toEqual({ create: false });
  });

  it("starts at once when a scan finds a source job newer than the last run (continuous copying)", () => {
    const last = { ...base, lastRun: 1_800_000 };
    // A job that started after the last run: a run now, named by that job, then the interval again.
    expect(autoCopy({ ...last, newestSourceJob: 1_900_000, now: 2_000_000 })).toEqual({
      create: true,
      slot: 1_900_000,
      recheckMs: 1_800_000,
    });
    // Older than the last run (that run took it, or its pass will): wait for the slot.
    expect(autoCopy({ ...last, newestSourceJob: 1_700_000, now: 2_000_000 })).toEqual({ create: false, recheckMs: 1_600_000 });
    // Never two at once: a running job takes new jobs by its passes; its end wakes the policy.
    expect(autoCopy({ ...last, newestSourceJob: 1_900_000, now: 2_000_000, running: true })).toEqual({ create: false });
    // A clock in the future on a job is no reason to run.
    expect(autoCopy({ ...last, newestSourceJob: 9e9, now: 2_000_000 })).toEqual({ create: false, recheckMs: 1_600_000 });
  });

  it("keeps the newest finished jobs within the limits and never touches running ones", () => {
    const jobs = [
      { name: "a", createdAt: "2026-01-01T00:00:00Z", phase: "Completed" },
      { name: "b", createdAt: "2026-01-02T00:00:00Z", phase: "Failed" },
      { name: "c", createdAt: "2026-01-03T00:00:00Z", phase: "Completed" },
      { name: "d", createdAt: "2026-01-04T00:00:00Z", phase: "Killed" },
      { name: "e", createdAt: "2026-01-05T00:00:00Z", phase: "Running" },
      { name: "f", createdAt: "2026-01-06T00:00:00Z", phase: "CompletedWithErrors" },
    ];
    expect(overHistory(jobs, 1, 1).sort()).toEqual(["a", "b", "d"]);
    expect(overHistory(jobs, 0, 0).sort()).toEqual(["a", "b", "c", "d", "f"]);
  });

  it("names each slot's job the same way every time", () => {
    expect(slotName("gold", Date.parse("2026-11-22T03:30:05.123Z"))).toBe("gold-20261122033005");
  });
});
