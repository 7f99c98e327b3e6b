// Run records beside a repository (policy/runrecords.ts) and the status a rebuilt cluster starts from
// (policycopy.ts recoveredFrom, aging.ts and verification.ts): names carry the counts, the newest record the rest.
import { describe, expect, it } from "vitest";
import { planDataAging } from "../../src/policy/aging.ts";
import { recoveredFrom } from "../../src/policy/policycopy.ts";
import { parseRunKey, runKey, summarizeRuns } from "../../src/policy/runrecords.ts";
import { planVerification } from "../../src/policy/verification.ts";

describe("run records", () => {
  it("name the run, its end and its counts, and parse back", () => {
    const key = runKey({ kind: "verification", run: 12, at: "2026-06-01T10:00:00.123Z", jobs: 40, failed: 2 });
    expect(key).toBe("runs/verification/20260601T100000.123Z-verification-12-40-2.json");
    expect(parseRunKey(`team/gold/offsite.auxo/${key}`)).toEqual({
      key,
      kind: "verification",
      run: 12,
      at: "2026-06-01T10:00:00.123Z",
      jobs: 40,
      failed: 2,
    });
    expect(parseRunKey(runKey({ kind: "aging", run: 3, at: "2026-06-01T10:00:00Z", jobs: 7 }))).toMatchObject({
      kind: "aging",
      run: 3,
      jobs: 7,
    });
    expect(parseRunKey("runs/aging/junk.json")).toBeUndefined();
    expect(parseRunKey("runs/aging/20260601T100000Z-verification-1-1-0.json")).toBeUndefined();
  });

  it("sum up from names: runs, the highest run number, jobs, the newest first", () => {
    const names = [1, 2, 3].map((n) => parseRunKey(runKey({ kind: "aging", run: n, at: `2026-06-0${n}T00:00:00Z`, jobs: n * 10 })));
    const s = summarizeRuns(
      names.filter((n) => n !== undefined),
      "aging",
      2,
    );
    expect(s).toMatchObject({ runs: 3, lastRun: 3, jobs: 60 });
    expect(s?.newest.map((n) => n.run)).toEqual([3, 2]);
    expect(summarizeRuns([], "verification")).toBeUndefined();
  });
});

describe("a status rebuilt from the records", () => {
  const recorded = {
    aging: {
      runs: 4,
      lastRun: 4,
      agedJobs: 30,
      last: {
        schema: "auxo.dev/run-record/v1" as const,
        kind: "aging" as const,
        run: 4,
        at: "2026-06-09T12:00:05Z",
        jobs: 6,
        summary: { result: "completed", aged: 6, agedBytes: 600, reclaimedBytes: 500 },
      },
    },
    verification: {
      runs: 2,
      lastRun: 2,
      verifiedJobs: 9,
      last: {
        schema: "auxo.dev/run-record/v1" as const,
        kind: "verification" as const,
        run: 2,
        at: "2026-06-09T13:00:00Z",
        jobs: 4,
        failed: 1,
        summary: { trigger: "Request", startTime: "2026-06-09T12:59:00Z", failedJobs: ["j2"], bytes: 100 },
      },
      history: [
        { run: 2, at: "2026-06-09T13:00:00Z", jobs: 4, failed: 1 },
        { run: 1, at: "2026-06-08T13:00:00Z", jobs: 5, failed: 0 },
      ],
    },
  };

  it("the copy keeps what the records say for the parts without runs of their own", () => {
    const r = recoveredFrom(recorded, {});
    expect(r?.dataAging).toEqual({
      runs: 4,
      lastRunTime: "2026-06-09T12:00:05Z",
      lastAgedJobs: 6,
      lastAgedBytes: 600,
      lastReclaimedBytes: 500,
      agedJobs: 30,
      result: "completed",
      message: undefined,
    });
    expect(r?.dataVerification?.lastRun).toMatchObject({
      run: 2,
      trigger: "Request",
      jobs: 4,
      verified: 3,
      failed: 1,
      failedJobs: ["j2"],
      result: "CompletedWithFailures",
    });
    expect(r?.dataVerification?.history).toMatchObject([
      { run: 2, trigger: "Request", failed: 1 },
      { run: 1, verified: 5, result: "Completed" },
    ]);
    // A part with runs of its own takes nothing; with both, nothing is kept.
    expect(recoveredFrom(recorded, { dataAging: { runs: 1 } })?.dataAging).toBeUndefined();
    expect(recoveredFrom(recorded, { dataAging: { runs: 1 }, dataVerification: { runs: 1 } })).toBeUndefined();
  });

  it("data aging and verification start from it: run numbers go on, nothing runs early", () => {
    const r = recoveredFrom(recorded, {}) as NonNullable<ReturnType<typeof recoveredFrom>>;
    const aging = planDataAging({
      now: Date.parse("2026-06-10T08:00:00Z"),
      copy: {
        name: "offsite",
        namespace: "team",
        status: {},
        repositoryReady: true,
        enabled: true,
        recovered: r.dataAging,
        createdAt: "2026-06-10T07:59:00Z",
      },
      policy: { name: "gold", schedule: {} },
      libraryReady: true,
      pods: [],
      repositoryPods: [],
      pod: {
        namespace: "team",
        owner: { apiVersion: "auxo.dev/v1alpha1", kind: "PolicyCopy", name: "offsite", uid: "u" },
        image: "i",
        target: { repository: "r", options: {}, volumes: [], env: [] },
      },
      deadHosts: [],
    });
    // Before the first scan nothing runs and nothing is written: the scan may yet bring the records.
    const early = planDataAging({
      now: Date.parse("2026-06-10T13:00:00Z"),
      copy: { name: "offsite", namespace: "team", status: {}, repositoryReady: true, enabled: true, createdAt: "2026-06-09T07:59:00Z" },
      policy: { name: "gold", schedule: {} },
      libraryReady: true,
      pods: [],
      repositoryPods: [],
      pod: {
        namespace: "team",
        owner: { apiVersion: "auxo.dev/v1alpha1", kind: "PolicyCopy", name: "offsite", uid: "u" },
        image: "i",
        target: { repository: "r", options: {}, volumes: [], env: [] },
      },
      deadHosts: [],
      awaitingFirstScan: true,
    });
    expect(early).toEqual({});
    expect(aging.status?.dataAging).toMatchObject({
      runs: 4,
      lastRunTime: "2026-06-09T12:00:05Z",
      agedJobs: 30,
      lastAgedJobs: 6,
      phase: "Idle",
    });
    expect(aging.pods).toBeUndefined();
    expect(aging.events?.[0]).toMatchObject({ reason: "StatusRebuilt" });
    const ver = planVerification({
      now: Date.parse("2026-06-10T08:00:00Z"),
      copy: {
        name: "offsite",
        namespace: "team",
        createdAt: "2026-06-10T07:59:00Z",
        spec: { enabled: true, afterCopy: true },
        status: {},
        repositoryReady: true,
        newestJob: "2026-06-09T00:00:00Z",
        lastScanTime: "2026-06-10T07:59:30Z",
        recovered: r.dataVerification,
      },
      policy: { name: "gold" },
      library: { name: "disk", ready: true, maxStreams: 2, streamsInUse: 0 },
      pods: [],
      pod: {
        namespace: "team",
        owner: { apiVersion: "auxo.dev/v1alpha1", kind: "PolicyCopy", name: "offsite", uid: "u" },
        image: "i",
        target: { repository: "r", metadata: { path: "r.auxo" }, options: {}, volumes: [], env: [] },
      },
      deadHosts: [],
    });
    expect(ver.status?.dataVerification).toMatchObject({
      runs: 2,
      verifiedJobs: 9,
      lastRun: { run: 2, failed: 1 },
      newestJobSeen: "2026-06-09T00:00:00Z",
      phase: "Idle",
    });
    expect(ver.status?.conditions?.[0]).toMatchObject({ type: "DataVerification", status: "False" });
    expect(ver.pods).toBeUndefined();
  });
});
