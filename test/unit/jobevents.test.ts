// Job events beside a repository: object names carry the summary, any job id round-trips, and the summary counts
// only the latest verification of jobs still on the copy.
import { describe, expect, it } from "vitest";
import { eventKey, jobRecords, parseEventKey, verificationSummary } from "../../src/policy/jobevents.ts";

describe("job event names", () => {
  it("round-trip job ids with slashes, commas, spaces and unicode", () => {
    for (const jobId of ["j1", "2026-11-22T01:00:00Z-db-1", "a/b/../c", "x,y z", "Größe✓", "%41"]) {
      const at = "2026-11-22T02:50:01.123Z";
      const key = eventKey({ jobId, kind: "verify", result: "failed", at }, "ab12cd34");
      expect(key.split("/")).toHaveLength(3);
      expect(parseEventKey(`tenant/p/c.auxo/${key}`)).toEqual({ jobId, kind: "verify", result: "failed", at });
    }
  });

  it("ignore anything that is not an event", () => {
    for (const k of [
      "jobs/j1/x.json",
      "jobs/j1/20261122T025001Z-copy-ok-ab.json.tmp",
      "other/20261122T025001Z-copy-ok-ab.json",
      "jobs/%E0/20261122T025001Z-copy-ok-ab.json",
    ])
      expect(parseEventKey(k)).toBeUndefined();
  });
});

describe("job records", () => {
  const ev = (jobId: string, kind: "copy" | "verify", result: "ok" | "failed", at: string) => ({ jobId, kind, result, at });

  it("count copy attempts and keep the latest outcome whatever the listing order", () => {
    const r = jobRecords([
      ev("j1", "copy", "ok", "2026-01-02T00:00:00Z"),
      ev("j1", "copy", "failed", "2026-01-01T00:00:00Z"),
      ev("j1", "verify", "failed", "2026-01-03T00:00:00Z"),
      ev("j1", "verify", "ok", "2026-01-04T00:00:00Z"),
    ]).get("j1");
    expect(r).toEqual({
      copyAttempts: 2,
      lastCopy: { at: "2026-01-02T00:00:00Z", result: "ok" },
      lastVerification: { at: "2026-01-04T00:00:00Z", result: "ok" },
    });
  });

  it("summarise verification of the jobs on the copy only, with a bounded list of failures", () => {
    const events = [ev("gone", "verify", "failed", "2026-01-09T00:00:00Z")];
    for (let i = 0; i < 30; i++)
      events.push(ev(`j${i}`, "verify", i % 2 ? "failed" : "ok", `2026-01-01T00:00:${String(i).padStart(2, "0")}Z`));
    const s = verificationSummary(
      jobRecords(events),
      Array.from({ length: 31 }, (_, i) => `j${i}`),
      5,
    );
    expect(s.verified).toBe(15);
    expect(s.failed).toBe(15);
    expect(s.failedJobs).toEqual(["j1", "j3", "j5", "j7", "j9"]);
    expect(s.lastVerification).toBe("2026-01-01T00:00:29Z");
  });
});
