// Data verification (policy/verification.ts, docs/verification.md): which jobs a run reads, when a run is due, what
// it waits for (windows, a prune, the library's streams, a lock), its pod, and what an ended run writes. Plain facts
// and a fixed clock.
import { describe, expect, it } from "vitest";
import type { AgentOutcome, VerifyResult } from "../../src/mediaagent/protocol.ts";
import type { CatalogEntry } from "../../src/policy/catalog.ts";
import { failedVerificationOf, jobRecords } from "../../src/policy/jobevents.ts";
import {
  copiedToAt,
  jobsToVerify,
  NO_METADATA,
  OFF,
  planVerification,
  type VerificationFacts,
  type VerificationSpec,
  type VerificationStatus,
  type VerifyPod,
  verifyPodName,
} from "../../src/policy/verification.ts";

const NOW = Date.parse("2026-06-10T08:00:00Z");
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.000Z$/, "Z");

const job = (jobId: string, startTime: string, over: Partial<CatalogEntry> = {}): CatalogEntry => ({
  jobId,
  snapshotId: `s-${jobId}`,
  originalId: `s-${jobId}`,
  type: "full",
  status: "completed",
  client: "team",
  subclient: "app",
  startTime,
  tagged: true,
  ...over,
});
const ev = (jobId: string, kind: "copy" | "verify", result: "ok" | "failed", at: string) => ({ jobId, kind, result, at });

describe("jobs a run verifies", () => {
  const catalog = [
    job("old", "2026-01-01T00:00:00Z"),
    job("inc", "2026-03-01T00:00:00Z", { type: "incremental" }),
    job("broken", "2026-03-02T00:00:00Z", { status: "failed" }),
    job("synth", "2026-04-01T00:00:00Z", { type: "synthfull" }),
    job("new", "2026-06-01T00:00:00Z"),
  ];

  it("reads every valid job never verified, oldest first; failed and killed jobs are not verified", () => {
    const out = jobsToVerify(catalog, new Map(), { scope: "AllJobs" }, "new", NOW);
    expect(out.map((e) => e.jobId)).toEqual(["old", "inc", "synth", "new"]);
  });

  it("AllFulls takes fulls and synthetic fulls only; onOrAfter leaves out older jobs", () => {
    expect(jobsToVerify(catalog, new Map(), { scope: "AllFulls" }, "due", NOW).map((e) => e.jobId)).toEqual(["old", "synth", "new"]);
    expect(jobsToVerify(catalog, new Map(), { scope: "AllJobs", onOrAfter: "2026-03-02" }, "due", NOW).map((e) => e.jobId)).toEqual([
      "synth",
      "new",
    ]);
  });

  it("a verified job is read again only when due (reverifyAfter) in a scheduled run, or once copied again (Recopy)", () => {
    const records = jobRecords([
      ev("old", "verify", "ok", "2026-05-01T00:00:00Z"), // 40 days ago
      ev("inc", "verify", "ok", "2026-06-05T00:00:00Z"), // 5 days ago
      ev("synth", "verify", "failed", "2026-06-01T00:00:00Z"),
      ev("synth", "copy", "ok", "2026-06-02T00:00:00Z"), // a Recopy after the failure
      ev("new", "verify", "failed", "2026-06-09T00:00:00Z"), // Bad, not copied since
    ]);
    const rules = { scope: "AllJobs" as const, reverifyAfterMs: 30 * DAY };
    // After a copy: only what landed (the recopied job); the Bad one waits for a Recopy or its due date.
    expect(jobsToVerify(catalog, records, rules, "new", NOW).map((e) => e.jobId)).toEqual(["synth"]);
    // Scheduled: those, then jobs whose latest verification is older than 30 days.
    expect(jobsToVerify(catalog, records, rules, "due", NOW).map((e) => e.jobId)).toEqual(["synth", "old"]);
    // Without reverifyAfter a job is verified once.
    expect(jobsToVerify(catalog, records, { scope: "AllJobs" }, "due", NOW).map((e) => e.jobId)).toEqual(["synth"]);
  });

  it("a job is Bad while its latest verification failed and it was not copied again since", () => {
    const r = jobRecords([ev("j", "copy", "ok", "2026-06-01T00:00:00Z"), ev("j", "verify", "failed", "2026-06-02T00:00:00Z")]);
    expect(failedVerificationOf(r.get("j"))).toBe(true);
    const again = jobRecords([
      ev("j", "copy", "ok", "2026-06-01T00:00:00Z"),
      ev("j", "verify", "failed", "2026-06-02T00:00:00Z"),
      ev("j", "copy", "ok", "2026-06-03T00:00:00Z"),
    ]);
    expect(failedVerificationOf(again.get("j"))).toBe(false);
    // A failed copy attempt repairs nothing.
    const tried = jobRecords([ev("j", "verify", "failed", "2026-06-02T00:00:00Z"), ev("j", "copy", "failed", "2026-06-03T00:00:00Z")]);
    expect(failedVerificationOf(tried.get("j"))).toBe(true);
  });
});

const access = { repository: "/libraries/disk/team/gold/offsite", options: {}, volumes: [], env: [] };
const withMetadata = { ...access, metadata: { path: "/libraries/disk/team/gold/offsite.auxo" } };

function facts(
  status: VerificationStatus = {},
  spec: Partial<VerificationSpec> = {},
  over: Partial<VerificationFacts> = {},
): VerificationFacts {
  return {
    now: NOW,
    copy: {
      name: "offsite",
      namespace: "team",
      generation: 1,
      createdAt: "2026-06-01T00:00:00Z",
      spec: { enabled: true, scope: "AllJobs", schedule: { every: "24h" }, ...spec },
      status,
      repositoryReady: true,
      repositoryId: "abc123",
      newestJob: "2026-06-09T00:00:00Z",
      lastScanTime: "2026-06-10T07:00:00Z",
    },
    policy: { name: "gold", timeZone: "UTC" },
    library: { name: "disk", ready: true, maxStreams: 2, streamsInUse: 0 },
    pods: [],
    pod: {
      namespace: "team",
      owner: { apiVersion: "auxo.dev/v1alpha1", kind: "PolicyCopy", name: "offsite", uid: "u1" },
      image: "auxo:test",
      target: withMetadata,
    },
    deadHosts: ["offsite-copy-1"],
    ...over,
  };
}

const ended = (n: number, result: Partial<AgentOutcome<VerifyResult>> & { data?: Partial<VerifyResult> }): VerifyPod => ({
  name: verifyPodName("offsite", n),
  task: "verify",
  active: false,
  result: { ok: true, message: "", at: iso(NOW - MIN), data: {}, ...result },
});

describe("when a verification run is due", () => {
  it("off: nothing on a copy that never verified; a copy that did says it is off", () => {
    expect(planVerification(facts({}, { enabled: false }))).toEqual({});
    const plan = planVerification(facts({ phase: "Idle", runs: 3, nextRunTime: iso(NOW) }, { enabled: false }));
    expect(plan.status?.dataVerification).toMatchObject({ phase: "Idle", message: OFF, runs: 3, nextRunTime: undefined });
  });

  it("scheduled: every interval after the last scheduled run; a new copy's first run one interval after it was created", () => {
    const first = planVerification(facts({}, {}, { now: Date.parse("2026-06-01T12:00:00Z") }));
    expect(first.pods).toBeUndefined();
    expect(first.status?.dataVerification).toMatchObject({ phase: "Idle", nextRunTime: "2026-06-02T00:00:00Z" });
    const due = planVerification(facts({ lastScheduledTime: iso(NOW - 25 * HOUR), newestJobSeen: "2026-06-09T00:00:00Z" }));
    expect(due.status?.dataVerification).toMatchObject({
      phase: "Starting",
      runs: 1,
      trigger: "Schedule",
      mode: "due",
      lastRunStartTime: iso(NOW),
      lastScheduledTime: iso(NOW),
      nextRunTime: iso(NOW + DAY),
    });
    const waits = planVerification(facts({ lastScheduledTime: iso(NOW - 2 * HOUR), newestJobSeen: "2026-06-09T00:00:00Z" }));
    expect(waits.pods).toBeUndefined();
    expect(waits.requeueAfterMs).toBe(HOUR); // the longest sleep
  });

  it("after a copy: jobs landed since the last run (an aux copy, or a newer job in the scan) start a run of new jobs", () => {
    const base = {
      phase: "Idle",
      nextRunTime: iso(NOW + 23 * HOUR),
      lastScheduledTime: iso(NOW - HOUR),
      lastRunStartTime: iso(NOW - HOUR),
      newestJobSeen: "2026-06-09T00:00:00Z",
    };
    expect(planVerification(facts(base, { afterCopy: true })).status).toBeUndefined();
    const copied = planVerification(facts(base, { afterCopy: true }, { copiedAt: NOW - MIN }));
    expect(copied.status?.dataVerification).toMatchObject({ phase: "Starting", trigger: "AfterCopy", mode: "new" });
    const newer = planVerification(facts({ ...base, newestJobSeen: "2026-06-08T00:00:00Z" }, { afterCopy: true }));
    expect(newer.status?.dataVerification).toMatchObject({ trigger: "AfterCopy", newestJobSeen: "2026-06-09T00:00:00Z" });
    // Without afterCopy the same copy waits for its schedule.
    expect(planVerification(facts(base, {}, { copiedAt: NOW - MIN })).status).toBeUndefined();
    // A suspended schedule still verifies after copies, and on request.
    const suspended = planVerification(facts({ lastScheduledTime: iso(NOW - 3 * DAY) }, { schedule: { suspend: true } }));
    expect(suspended.status?.dataVerification).toMatchObject({ phase: "Idle", nextRunTime: undefined });
    const asked = planVerification(
      facts({ ...base }, { schedule: { suspend: true } }, { copy: { ...facts().copy, requestedAt: iso(NOW - 5000) } }),
    );
    expect(asked.status?.dataVerification).toMatchObject({ phase: "Starting", trigger: "Request", mode: "due" });
  });

  it("waits for a DataVerification window, a prune on the repository, and a free stream of the library", () => {
    const due = { lastScheduledTime: iso(NOW - 2 * DAY), newestJobSeen: "2026-06-09T00:00:00Z" };
    const windows = [{ name: "business", operations: ["DataVerification"], days: [], start: "07:00", end: "18:00" }];
    const w = planVerification(facts(due, {}, { policy: { name: "gold", operationWindows: windows as never } }));
    expect(w.status?.dataVerification).toMatchObject({
      phase: "Waiting",
      message: 'operation window "business" until 2026-06-10T18:00:00Z',
    });
    expect(w.requeueAfterMs).toBe(10 * HOUR);
    // Another operation's window does not hold it.
    const aging = [{ ...windows[0], operations: ["DataAging"] }];
    expect(
      planVerification(facts(due, {}, { policy: { name: "gold", operationWindows: aging as never } })).status?.dataVerification?.phase,
    ).toBe("Starting");
    const pruning = planVerification(facts(due, {}, { pruning: "offsite-age-4" }));
    expect(pruning.status?.dataVerification).toMatchObject({
      phase: "Waiting",
      message: "data aging pod offsite-age-4 prunes the repository",
    });
    expect(pruning.pods).toBeUndefined();
    const full = planVerification(facts(due, {}, { library: { name: "disk", ready: true, maxStreams: 2, streamsInUse: 2 } }));
    expect(full.status?.dataVerification).toMatchObject({ phase: "Waiting", message: "all 2 streams of library disk are in use" });
  });

  it("says why a copy on a REST server library cannot verify (no place for the verdicts)", () => {
    const rest = facts({ lastScheduledTime: iso(NOW - 2 * DAY) });
    const plan = planVerification({ ...rest, pod: { ...(rest.pod as NonNullable<VerificationFacts["pod"]>), target: { ...access } } });
    expect(plan.status?.dataVerification).toMatchObject({ phase: "Waiting", message: NO_METADATA });
    expect(plan.pods).toBeUndefined();
  });

  it("nothing runs on a refused repository, an unready library or repository", () => {
    const due = { lastScheduledTime: iso(NOW - 2 * DAY) };
    const refused = planVerification(facts(due, {}, { refusal: { reason: "RepositoryChanged", message: "another repository" } }));
    expect(refused.status?.dataVerification).toMatchObject({ phase: "Waiting", message: "no data verification: another repository" });
    expect(planVerification(facts(due, {}, { library: { name: "disk", ready: false, maxStreams: 2, streamsInUse: 0 } }))).toEqual({});
  });
});

describe("a verification run", () => {
  const starting: VerificationStatus = {
    runs: 4,
    phase: "Starting",
    trigger: "Schedule",
    mode: "due",
    lastRunStartTime: iso(NOW - 5 * MIN),
    lastScheduledTime: iso(NOW - 5 * MIN),
  };

  it("recorded but not started yet, waits for a prune that began meanwhile", () => {
    const plan = planVerification(facts(starting, {}, { pruning: "offsite-age-9" }));
    expect(plan.pods).toBeUndefined();
    expect(plan.status?.dataVerification).toMatchObject({
      phase: "Starting",
      message: "data aging pod offsite-age-9 prunes the repository",
    });
  });

  it("answers a request once, whatever the precision of its time", () => {
    const asked = "2026-06-10T07:59:58.123Z";
    const copy = { ...facts().copy, requestedAt: asked };
    const answered = planVerification(
      facts(
        { phase: "Idle", runs: 1, lastRunStartTime: "2026-06-10T07:59:58Z", lastRequest: asked, nextRunTime: iso(NOW + HOUR) },
        { schedule: { every: "24h" } },
        {
          copy: {
            ...copy,
            status: {
              phase: "Idle",
              runs: 1,
              lastRunStartTime: "2026-06-10T07:59:58Z",
              lastRequest: asked,
              lastScheduledTime: iso(NOW - HOUR),
              nextRunTime: iso(NOW + 23 * HOUR),
            },
          },
        },
      ),
    );
    expect(answered.status?.dataVerification?.phase ?? "Idle").toBe("Idle");
    expect(answered.pods).toBeUndefined();
  });

  it("gets its pod once recorded: the copy's rules, its repository ID, the dead hosts' locks, a stream label", () => {
    const plan = planVerification(facts(starting, { scope: "AllFulls", onOrAfter: "2026-01-01", reverifyAfterDays: 90 }));
    expect(plan.pods).toHaveLength(1);
    const pod = plan.pods?.[0];
    expect(pod).toMatchObject({
      task: "verify",
      name: "offsite-verify-4",
      target: { repositoryId: "abc123" },
      verification: { scope: "AllFulls", onOrAfter: "2026-01-01", reverifyAfterMs: 90 * DAY, mode: "due", at: iso(NOW) },
      locks: { deadHosts: ["offsite-copy-1"] },
      labels: { "auxo.dev/copy": "offsite", "auxo.dev/target-library": "disk" },
    });
  });

  it("while running, shows its progress", () => {
    const pod: VerifyPod = { name: "offsite-verify-4", task: "verify", active: true };
    const plan = planVerification(
      facts({ ...starting, phase: "Starting" }, {}, { pods: [pod], progress: { jobsDone: 3, jobsTotal: 10, job: "j4" } }),
    );
    expect(plan.status?.dataVerification).toMatchObject({
      phase: "Running",
      progress: { jobsDone: 3, jobsTotal: 10, job: "j4" },
      message: "verification run 4 in pod offsite-verify-4: 3 of 10 jobs read",
    });
    expect(plan.pods).toBeUndefined();
  });

  it("that passed: result, history, event and metrics once; the pod goes once status shows it", () => {
    const pod = ended(4, { data: { jobs: 5, verified: 5, failed: 0, bytes: 1000 } });
    const plan = planVerification(facts({ ...starting, phase: "Running" }, {}, { pods: [pod] }));
    const s = plan.status?.dataVerification;
    expect(s).toMatchObject({
      phase: "Idle",
      lastRunTime: iso(NOW - MIN),
      verifiedJobs: 5,
      lastRun: { run: 4, trigger: "Schedule", jobs: 5, verified: 5, failed: 0, bytes: 1000, result: "Completed" },
      history: [{ run: 4, jobs: 5, verified: 5, failed: 0, result: "Completed" }],
    });
    expect(plan.events?.map((e) => e.reason)).toEqual(["VerificationCompleted"]);
    expect(plan.status?.conditions).toMatchObject([{ type: "DataVerification", status: "True", reason: "Verified" }]);
    expect(plan.metrics).toContainEqual(
      expect.objectContaining({ metric: "verifiedJobs", value: 5, labels: expect.objectContaining({ result: "ok" }) }),
    );
    const shown = planVerification(facts(s as VerificationStatus, {}, { pods: [pod] }));
    expect(shown.deletePods).toEqual(["offsite-verify-4"]);
    expect(shown.events ?? []).toEqual([]);
  });

  it("that found damaged jobs: completed with failures, the jobs named, the condition False; nothing deleted", () => {
    const pod = ended(4, {
      ok: false,
      message: "1 of 5 jobs failed verification: j3",
      data: { kind: "CorruptData", jobs: 5, verified: 4, failed: 1, failedJobs: ["j3"] },
    });
    const plan = planVerification(
      facts(
        { ...starting, phase: "Running", history: [{ run: 3, jobs: 1, verified: 1, failed: 0, result: "Completed" }] },
        {},
        { pods: [pod] },
      ),
    );
    expect(plan.status?.dataVerification).toMatchObject({
      phase: "Idle",
      lastRun: { result: "CompletedWithFailures", failed: 1, failedJobs: ["j3"], verified: 4 },
      history: [{ run: 4, result: "CompletedWithFailures" }, { run: 3 }],
    });
    expect(plan.status?.conditions?.[0]).toMatchObject({ type: "DataVerification", status: "False", reason: "JobsFailedVerification" });
    expect(plan.events).toMatchObject([{ type: "Warning", reason: "JobsFailedVerification" }]);
    expect(plan.deletePods).toBeUndefined();
    expect(plan.pods).toBeUndefined();
  });

  it("that could not finish (the library gone) fails, and asks for the library's probe", () => {
    const pod = ended(4, { ok: false, message: "repository unreachable", data: { kind: "Unreachable" } });
    const plan = planVerification(facts({ ...starting, phase: "Running" }, {}, { pods: [pod] }));
    expect(plan.status?.dataVerification).toMatchObject({
      phase: "Idle",
      lastRun: { result: "Failed", message: "repository unreachable" },
    });
    expect(plan.events?.[0]).toMatchObject({ type: "Warning", reason: "VerificationFailed" });
    expect(plan.probe).toContain("repository unreachable");
  });

  it("that met a lock another process holds waits two minutes and runs again (never unlocks it)", () => {
    const pod = ended(4, { ok: false, message: "repository is locked by host x", data: { kind: "LockHeld" } });
    const plan = planVerification(facts({ ...starting, phase: "Running" }, {}, { pods: [pod] }));
    const s = plan.status?.dataVerification as VerificationStatus;
    expect(s).toMatchObject({ phase: "Waiting", lockedRunTime: iso(NOW - MIN), retryTime: iso(NOW + MIN) });
    expect(s.lastRun).toBeUndefined();
    // Until the retry time it sleeps; the old pod goes.
    const later = planVerification(facts(s, {}, { pods: [pod] }));
    expect(later.deletePods).toEqual(["offsite-verify-4"]);
    expect(later.requeueAfterMs).toBe(MIN);
  });

  it("a pod the API refuses is a failed run, reported once", () => {
    const plan = planVerification(facts(starting, {}, { rejected: [{ name: "offsite-verify-4", message: "quota exceeded" }] }));
    expect(plan.status?.dataVerification).toMatchObject({ phase: "Idle", message: "verification run 4 failed: quota exceeded" });
    expect(plan.events?.[0]).toMatchObject({ reason: "PodRejected" });
  });
});

describe("copies to a copy", () => {
  it("are read from the aux copy runs' history and parts", () => {
    const jobs = [
      { status: { history: [{ copy: "offsite", result: "Copied", time: "2026-06-10T07:00:00Z" }], copies: [] } },
      {
        status: {
          copies: [
            { name: "offsite", settledJobsCopied: 2, completionTime: "2026-06-10T07:30:00Z" },
            { name: "other", settledJobsCopied: 1, completionTime: "2026-06-10T07:50:00Z" },
          ],
        },
      },
    ];
    expect(copiedToAt("offsite", jobs as never)).toBe(Date.parse("2026-06-10T07:30:00Z"));
    expect(copiedToAt("nowhere", jobs as never)).toBeUndefined();
  });
});
