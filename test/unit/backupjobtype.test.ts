// The job type of a backup copy (policy/backupjobtype.ts): full first and every fullEvery, incrementals between, a
// differential once the incremental limit is reached, and restic's parent by type.
import { describe, expect, it } from "vitest";
import { backupJobType } from "../../src/policy/backupjobtype.ts";
import type { CatalogEntry, JobType } from "../../src/policy/catalog.ts";

const T0 = Date.parse("2026-12-01T00:00:00Z");
const H = 3600_000;
const job = (i: number, type: JobType, at: number, status: CatalogEntry["status"] = "completed"): CatalogEntry => ({
  jobId: `j${i}`,
  snapshotId: `s${i}`,
  originalId: `s${i}`,
  type,
  status,
  client: "team",
  subclient: "db",
  startTime: new Date(at).toISOString(),
  tagged: true,
});
const rules = { fullEveryMs: 168 * H, incrementalLimit: 2 };

/** Types of `n` hourly backup copies, each decided from the ones before it. */
function sequence(n: number, r = rules): { type: string; parent?: string }[] {
  const history: CatalogEntry[] = [];
  const out: { type: string; parent?: string }[] = [];
  for (let i = 0; i < n; i++) {
    const at = T0 + i * H;
    const d = backupJobType(history, at, r);
    out.push({ type: d.type, parent: d.parent?.jobId });
    history.push(job(i, d.type, at));
  }
  return out;
}

describe("backup copy job types", () => {
  it("limit 2: F, I, I, D, I, I, D; an incremental's parent is the latest job, a differential's the full", () => {
    expect(sequence(7)).toEqual([
      { type: "full", parent: undefined },
      { type: "incremental", parent: "j0" },
      { type: "incremental", parent: "j1" },
      { type: "differential", parent: "j0" },
      { type: "incremental", parent: "j3" },
      { type: "incremental", parent: "j4" },
      { type: "differential", parent: "j0" },
    ]);
  });

  it("a full once the last full is fullEvery old, and the count starts again", () => {
    const s = sequence(6, { fullEveryMs: 3 * H, incrementalLimit: 0 });
    expect(s.map((x) => x.type)).toEqual(["full", "incremental", "incremental", "full", "incremental", "incremental"]);
    expect(s[3]?.parent).toBeUndefined();
  });

  it("no limit (0): never a differential", () => {
    expect(sequence(20, { fullEveryMs: 1000 * H, incrementalLimit: 0 }).filter((x) => x.type === "differential")).toEqual([]);
  });

  it("failed and killed jobs count for nothing; a history without a valid full gives a full", () => {
    const h = [job(0, "full", T0, "failed"), job(1, "incremental", T0 + H)];
    const d = backupJobType(h, T0 + 2 * H, rules);
    expect([d.type, d.parent]).toEqual(["full", undefined]);
    const ok = [job(0, "full", T0), job(1, "incremental", T0 + H, "killed"), job(2, "incremental", T0 + 2 * H, "completedWithErrors")];
    expect(backupJobType(ok, T0 + 3 * H, rules)).toMatchObject({ type: "incremental", parent: { jobId: "j2" } });
  });

  it("a synthetic full starts a cycle like a full", () => {
    const h = [job(0, "full", T0), job(1, "incremental", T0 + H), job(2, "synthfull", T0 + 2 * H), job(3, "incremental", T0 + 3 * H)];
    expect(backupJobType(h, T0 + 4 * H, rules)).toMatchObject({ type: "incremental", parent: { jobId: "j3" } });
  });

  it("types an older snapshot by the jobs before it (a replay), not by later ones", () => {
    const h = [job(0, "full", T0), job(1, "incremental", T0 + 5 * H), job(2, "incremental", T0 + 6 * H)];
    expect(backupJobType(h, T0 + 2 * H, rules)).toMatchObject({ type: "incremental", parent: { jobId: "j0" } });
  });
});
