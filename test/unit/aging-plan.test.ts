// Data aging's plan (policy/aging.ts, docs/retention.md): when a copy's run is due, what it waits for, what its
// pods are, and what a finished run writes. Plain facts and a fixed clock.
import { describe, expect, it } from "vitest";
import type { AgentOutcome } from "../../src/controllers/agent/results.ts";
import type { AgeResult } from "../../src/mediaagent/protocol.ts";
import {
  type AgingFacts,
  type AgingPod,
  type AgingStatus,
  CONFIRMATION_TOO_FAR,
  OFF,
  planDataAging,
  previewPodName,
  runPodName,
} from "../../src/policy/aging.ts";

const NOW = Date.parse("2026-06-10T08:00:00Z");
const MIN = 60_000;
const HOUR = 60 * MIN;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.000Z$/, "Z");
const access = (role: string) => ({ repository: `/libraries/${role}/repo`, options: {}, volumes: [], env: [] });

function facts(over: Partial<AgingFacts> = {}, status: AgingStatus = {}, copy: Partial<AgingFacts["copy"]> = {}): AgingFacts {
  return {
    now: NOW,
    copy: {
      name: "offsite",
      namespace: "team",
      generation: 1,
      createdAt: "2026-06-01T00:00:00Z",
      status,
      repositoryReady: true,
      repositoryId: "abc123",
      enabled: true,
      ...copy,
    },
    policy: { name: "gold", timeZone: "UTC", schedule: {} },
    libraryReady: true,
    pods: [],
    repositoryPods: [],
    pod: {
      namespace: "team",
      owner: { apiVersion: "auxo.dev/v1alpha1", kind: "PolicyCopy", name: "offsite", uid: "u1" },
      image: "auxo:test",
      target: access("target"),
      downstream: [],
    },
    deadHosts: [],
    ...over,
  };
}

const ended = (
  name: string,
  result: Partial<AgentOutcome<AgeResult>> & { data?: Partial<AgeResult> },
  extra: Partial<AgingPod> = {},
): AgingPod => ({
  name,
  task: "age",
  active: false,
  dryRun: false,
  result: { ok: true, message: "", at: iso(NOW - MIN), data: {}, ...result },
  ...extra,
});

/** A copy whose run is due now: its last run was yesterday before 08:00, and the policy ages at 07:00. */
const dueStatus: AgingStatus = { phase: "Idle", runs: 3, lastRunTime: "2026-06-09T07:30:00Z" };
const dueFacts = (over: Partial<AgingFacts> = {}, status: AgingStatus = dueStatus) =>
  facts({ policy: { name: "gold", timeZone: "UTC", schedule: { at: "07:00" } }, ...over }, status);

describe("data aging: when the next run is", () => {
  it("is daily at the policy's dataAging.at in its time zone", () => {
    // Last run 2026-06-09 12:00 Paris; the policy ages at 06:30 Paris (04:30 UTC in summer): next is 2026-06-10 04:30Z.
    const f = facts(
      { now: Date.parse("2026-06-10T02:00:00Z"), policy: { name: "gold", timeZone: "Europe/Paris", schedule: { at: "06:30" } } },
      { phase: "Idle", lastRunTime: "2026-06-09T10:00:00Z" },
    );
    const plan = planDataAging(f);
    expect(plan.status?.dataAging).toMatchObject({ phase: "Idle", nextRunTime: "2026-06-10T04:30:00Z" });
    expect(plan.requeueAfterMs).toBe(HOUR); // 2.5 hours to go: it sleeps at most an hour
    expect(plan.pods).toEqual([]);
  });

  it("writes nothing when the next run time is already shown", () => {
    const f = facts({}, { phase: "Idle", lastRunTime: "2026-06-09T12:00:00Z", nextRunTime: "2026-06-10T12:00:00Z" });
    expect(planDataAging(f)).toEqual({ pods: [], status: undefined, requeueAfterMs: HOUR });
  });

  it("runs at the time a person asked for in the data-aging-requested annotation, when later than the last run", () => {
    const asked = facts({}, { phase: "Idle", runs: 2, lastRunTime: "2026-06-09T12:00:00Z" }, { requestedAt: iso(NOW - MIN) });
    expect(planDataAging(asked).status?.dataAging).toMatchObject({ phase: "Starting", runs: 3, message: "data aging run 3 starting" });
    // An annotation older than the last run asks for nothing.
    const old = facts({}, { phase: "Idle", lastRunTime: "2026-06-09T12:00:00Z" }, { requestedAt: "2026-06-09T11:00:00Z" });
    expect(planDataAging(old).status?.dataAging).toMatchObject({ phase: "Idle", nextRunTime: "2026-06-10T12:00:00Z" });
  });
});

describe("data aging: no run", () => {
  it("is off when the policy or the copy turns it off, and says so in the DataAging condition", () => {
    for (const f of [
      facts(
        { policy: { name: "gold", schedule: { enabled: false } } },
        { phase: "Idle", nextRunTime: "x", preview: { at: "x", jobs: 1, bytes: 1, breakerWouldStop: false } },
      ),
      facts({}, {}, { enabled: false }),
      facts({ policy: undefined }),
    ]) {
      const plan = planDataAging(f);
      expect(plan.status?.dataAging).toEqual({ phase: "Idle", message: OFF, nextRunTime: undefined, preview: undefined });
      expect(plan.status?.conditions).toEqual([
        { type: "DataAging", status: "True", reason: "Disabled", message: OFF, observedGeneration: 1, lastTransitionTime: iso(NOW) },
      ]);
      expect(plan.pods).toBeUndefined();
    }
  });

  it("waits on a repository the copy does not own alone, saying so once", () => {
    const refusal = { reason: "RepositoryShared", message: 'copy "a" uses the same repository' };
    const plan = planDataAging(dueFacts({ refusal }));
    expect(plan.status?.dataAging).toMatchObject({
      phase: "Waiting",
      message: 'no data aging: copy "a" uses the same repository',
      nextRunTime: undefined,
    });
    expect(plan.pods).toBeUndefined();
    expect(planDataAging(dueFacts({ refusal }, { message: 'no data aging: copy "a" uses the same repository' }))).toEqual({});
  });

  it("does nothing while the library or the repository is not ready (their status says why)", () => {
    expect(planDataAging(dueFacts({ libraryReady: false }))).toEqual({});
    expect(planDataAging({ ...dueFacts(), copy: { ...dueFacts().copy, repositoryReady: false } })).toEqual({});
  });

  it("waits with an unknown time zone: no day can be read in it", () => {
    const plan = planDataAging(dueFacts({ policy: { name: "gold", timeZone: "Mars/Olympus", schedule: {} } }));
    expect(plan.status?.dataAging).toMatchObject({ phase: "Waiting", nextRunTime: undefined });
    expect(plan.status?.dataAging.message).toContain('spec.timeZone "Mars/Olympus" is not a known IANA time zone');
    expect(plan.requeueAfterMs).toBeUndefined();
  });

  it("waits for an operation window to end, announcing it once", () => {
    const window = { name: "business", operations: ["DataAging"], days: ["Wednesday"], start: "07:00", end: "09:30" };
    const f = dueFacts({ policy: { name: "gold", timeZone: "UTC", schedule: { at: "07:00" }, operationWindows: [window] } });
    const plan = planDataAging(f);
    const message = 'operation window "business" until 2026-06-10T09:30:00Z';
    expect(plan.status?.dataAging).toMatchObject({ phase: "Waiting", message });
    expect(plan.events).toEqual([{ type: "Normal", reason: "OperationWindow", message: `data aging waits: ${message}` }]);
    expect(plan.requeueAfterMs).toBe(90 * MIN);
    expect(planDataAging({ ...f, copy: { ...f.copy, status: { ...dueStatus, message } } }).events).toEqual([]);
  });

  it("waits while another pod works on the repository (prune is exclusive), but not for its own run pod", () => {
    const plan = planDataAging(dueFacts({ repositoryPods: ["gold-copy-1"] }));
    expect(plan.status?.dataAging).toMatchObject({
      phase: "Waiting",
      message: "waiting for pod gold-copy-1 to finish with the repository",
    });
    expect(plan.requeueAfterMs).toBe(10_000);
    const own = planDataAging(dueFacts({ repositoryPods: [runPodName("offsite", 3)] }));
    expect(own.status?.dataAging.phase).toBe("Starting");
  });
});

describe("data aging: a run", () => {
  it("is recorded before its pod starts, so a reconcile on a stale cache names the same pod", () => {
    const recorded = planDataAging(dueFacts());
    expect(recorded.status?.dataAging).toMatchObject({ phase: "Starting", runs: 4, message: "data aging run 4 starting" });
    expect(recorded.pods).toBeUndefined();
    expect(recorded.requeueAfterMs).toBe(500);

    const starting = { ...dueStatus, runs: 4, phase: "Starting" };
    const started = planDataAging(dueFacts({ deadHosts: ["offsite-age-3"] }, starting));
    expect(started.status).toBeUndefined();
    expect(started.pods).toHaveLength(1);
    const pod = started.pods?.[0];
    expect(pod).toMatchObject({
      task: "age",
      name: "offsite-age-4",
      target: { repository: "/libraries/target/repo", repositoryId: "abc123" },
      aging: { timeZone: "UTC", maxSharePercent: 50, at: iso(NOW) },
      locks: { deadHosts: ["offsite-age-3"] },
      deadlineSeconds: 6 * 3600,
      labels: { "auxo.dev/copy": "offsite" },
      annotations: { "auxo.dev/copy": "offsite" },
    });
    expect(pod?.aging?.dryRun).toBeUndefined();
    // The same facts again (the pod not in the cache yet) plan the same pod name: creating it twice is harmless.
    expect(planDataAging(dueFacts({}, starting)).pods?.[0]?.name).toBe("offsite-age-4");
  });

  it("shows Running while its pod works", () => {
    const s = { ...dueStatus, runs: 4, phase: "Starting" };
    const running: AgingPod = { name: "offsite-age-4", task: "age", active: true, dryRun: false };
    const plan = planDataAging(dueFacts({ pods: [running] }, s));
    expect(plan.status?.dataAging).toMatchObject({ phase: "Running", message: "data aging run 4 in pod offsite-age-4" });
    expect(planDataAging(dueFacts({ pods: [running] }, { ...s, phase: "Running" }))).toEqual({});
  });

  it("that aged N jobs writes them to status, counts metrics and an event once", () => {
    const s = { ...dueStatus, runs: 4, phase: "Running", agedJobs: 10, preview: { at: "x", jobs: 2, bytes: 5, breakerWouldStop: false } };
    const pod = ended("offsite-age-4", { data: { aged: 2, agedBytes: 2048, reclaimedBytes: 1024 } });
    const plan = planDataAging(dueFacts({ pods: [pod] }, s));
    expect(plan.status?.dataAging).toEqual({
      ...s,
      phase: "Idle",
      message: "aged 2 jobs, freed 1024 bytes",
      lastRunTime: iso(NOW - MIN),
      lastAgedJobs: 2,
      lastAgedBytes: 2048,
      lastReclaimedBytes: 1024,
      agedJobs: 12,
      preview: undefined,
    });
    const once = `team/offsite/age/4/${iso(NOW - MIN)}`;
    const labels = { namespace: "team", policy: "gold", copy: "offsite" };
    expect(plan.events).toEqual([{ type: "Normal", reason: "DataAgingCompleted", message: "aged 2 jobs, freed 1024 bytes", once }]);
    expect(plan.metrics).toEqual([
      { metric: "agedJobs", labels, value: 2, once },
      { metric: "reclaimedBytes", labels, value: 1024, once },
      { metric: "agingRuns", labels: { ...labels, result: "completed" }, value: 1, once },
    ]);
    expect(plan.requeueAfterMs).toBe(1000);
    // Recorded: the pod goes, and the next run is planned.
    const after = planDataAging(dueFacts({ pods: [pod] }, { ...s, lastRunTime: iso(NOW - MIN), phase: "Idle" }));
    expect(after.deletePods).toEqual(["offsite-age-4"]);
    expect(after.status?.dataAging.nextRunTime).toBe("2026-06-11T07:00:00Z");
  });

  it("that held every job for a copy that cannot be read says so", () => {
    const pod = ended("offsite-age-4", { data: { aged: 0 } });
    const base = dueFacts({ pods: [pod] }, { ...dueStatus, runs: 4, phase: "Running" });
    const f = {
      ...base,
      pod: { ...base.pod!, downstream: [{ name: "tape", access: access("down0"), rules: {}, active: true, unreachable: true }] },
    };
    const plan = planDataAging(f);
    expect(plan.status?.dataAging.message).toBe('aged 0 jobs, freed 0 bytes; held every job for "tape", which cannot be read now');
  });

  it("stopped by the mass-deletion breaker is Stopped with a MassDeletion condition until a person confirms", () => {
    const pod = ended("offsite-age-4", { ok: false, message: "would age 80% of 10 jobs (limit 50%)", data: { kind: "MassDeletion" } });
    const plan = planDataAging(dueFacts({ pods: [pod] }, { ...dueStatus, runs: 4, phase: "Running" }));
    const message =
      "would age 80% of 10 jobs (limit 50%); set spec.retention.confirmMassAgingUntil to a time later than now to let runs before it age more";
    expect(plan.status?.dataAging).toMatchObject({ phase: "Stopped", message });
    expect(plan.status?.conditions).toMatchObject([{ type: "DataAging", status: "False", reason: "MassDeletion", message }]);
    expect(plan.events).toMatchObject([{ type: "Warning", reason: "MassDeletion", message }]);
    expect(plan.metrics).toMatchObject([{ metric: "agingRuns", labels: { result: "stopped" }, value: 1 }]);
    // Stopped stays Stopped until the next run.
    const later = planDataAging(facts({ pods: [pod] }, { runs: 4, phase: "Stopped", message, lastRunTime: iso(NOW - MIN) }));
    expect(later.status?.dataAging.phase).toBe("Stopped");
  });

  it("lets the breaker allow everything while confirmMassAgingUntil is within 7 days", () => {
    const starting = { ...dueStatus, runs: 4, phase: "Starting" };
    const within = dueFacts({}, starting);
    within.copy.confirmMassAgingUntil = iso(NOW + 2 * 24 * HOUR);
    expect(planDataAging(within).pods?.[0]?.aging?.maxSharePercent).toBe(100);
    const beyond = dueFacts({ policy: { name: "gold", timeZone: "UTC", schedule: { at: "07:00", maxAgedShare: 30 } } }, starting);
    beyond.copy.confirmMassAgingUntil = iso(NOW + 8 * 24 * HOUR);
    expect(planDataAging(beyond).pods?.[0]?.aging?.maxSharePercent).toBe(30);
  });

  it("says once that a confirmation beyond 7 days is not honoured (ConfirmationTooFar)", () => {
    const f = facts({}, { phase: "Idle", lastRunTime: "2026-06-09T12:00:00Z" }, { confirmMassAgingUntil: iso(NOW + 30 * 24 * HOUR) });
    const plan = planDataAging(f);
    expect(plan.status?.dataAging).toMatchObject({ message: CONFIRMATION_TOO_FAR, nextRunTime: "2026-06-10T12:00:00Z" });
    expect(plan.events).toEqual([{ type: "Warning", reason: "ConfirmationTooFar", message: CONFIRMATION_TOO_FAR }]);
    const said = { ...f, copy: { ...f.copy, status: { ...f.copy.status, message: CONFIRMATION_TOO_FAR } } };
    expect(planDataAging(said).events).toBeUndefined();
  });

  it("that found another process's lock waits 2 minutes and runs again, never counted as a failure", () => {
    const lockAt = iso(NOW - MIN);
    const pod = ended("offsite-age-4", { ok: false, message: "repository is locked by host x", at: lockAt, data: { kind: "LockHeld" } });
    const s = { ...dueStatus, runs: 4, phase: "Running" };
    const plan = planDataAging(dueFacts({ pods: [pod] }, s));
    expect(plan.status?.dataAging).toMatchObject({
      phase: "Waiting",
      lastRunTime: dueStatus.lastRunTime,
      lockedRunTime: lockAt,
      retryTime: iso(NOW + MIN),
      message: `repository is locked by host x; trying again at ${iso(NOW + MIN)}`,
    });
    expect(plan.events).toMatchObject([
      { type: "Warning", reason: "LockHeld", message: "data aging waits: repository is locked by host x" },
    ]);
    expect(plan.metrics).toEqual([]);
    // Recorded: the pod goes, and the run waits for its retry time.
    const waiting = planDataAging(dueFacts({ pods: [pod] }, plan.status!.dataAging));
    expect(waiting).toEqual({ requeueAfterMs: MIN, deletePods: ["offsite-age-4"] });
    // Then the next run is recorded.
    const retry = planDataAging(dueFacts({ now: NOW + 2 * MIN }, plan.status!.dataAging));
    expect(retry.status?.dataAging).toMatchObject({ phase: "Starting", runs: 5, retryTime: undefined });
  });

  it("that failed is reported; an unreachable library is probed now", () => {
    const pod = ended("offsite-age-4", { ok: false, message: "connection refused", data: { kind: "Unreachable" } });
    const plan = planDataAging(dueFacts({ pods: [pod] }, { ...dueStatus, runs: 4, phase: "Running" }));
    expect(plan.status?.dataAging).toMatchObject({ phase: "Idle", message: "data aging failed: connection refused" });
    expect(plan.events).toMatchObject([{ type: "Warning", reason: "DataAgingFailed", message: "data aging failed: connection refused" }]);
    expect(plan.metrics).toMatchObject([{ metric: "agingRuns", labels: { result: "failed" } }]);
    expect(plan.probe).toBe("data aging: connection refused");
  });

  it("whose pod the API server refuses is a failed run; the next run is the next scheduled one", () => {
    const f = dueFacts({}, { ...dueStatus, runs: 4, phase: "Starting" });
    const message = "the API server refused MediaAgent pod: exceeded quota";
    const plan = planDataAging({ ...f, rejected: [{ name: "offsite-age-4", message }] });
    expect(plan.status?.dataAging).toMatchObject({ phase: "Idle", message: `data aging failed: ${message}`, lastRunTime: iso(NOW) });
    expect(plan.events).toMatchObject([{ type: "Warning", reason: "PodRejected", message: `data aging run 4: ${message}` }]);
    expect(plan.metrics).toMatchObject([{ metric: "agingRuns", labels: { result: "failed" }, value: 1 }]);
    expect(plan.pods).toBeUndefined();
  });
});

describe("data aging: the preview", () => {
  const scanned = "2026-06-10T07:50:00Z";
  const idle: AgingStatus = { phase: "Idle", lastRunTime: "2026-06-09T12:00:00Z", nextRunTime: "2026-06-10T12:00:00Z" };
  const scannedFacts = (over: Partial<AgingFacts> = {}, status: AgingStatus = idle) => facts(over, status, { lastScanTime: scanned });

  it("starts a dry run as of the next run after a new catalog scan", () => {
    const plan = planDataAging(scannedFacts());
    expect(plan.pods).toHaveLength(1);
    expect(plan.pods?.[0]).toMatchObject({
      task: "age",
      name: previewPodName("offsite", scanned, 0),
      target: { repository: "/libraries/target/repo" },
      aging: { dryRun: true, at: "2026-06-10T12:00:00Z" },
      deadlineSeconds: 3600,
      labels: { "auxo.dev/copy": "offsite", "auxo.dev/dry-run": "true" },
      annotations: { "auxo.dev/catalog-time": scanned, "auxo.dev/copy": "offsite" },
    });
    expect(plan.pods?.[0]?.target.repositoryId).toBeUndefined();
    expect(plan.pods?.[0]?.locks).toBeUndefined();
    // Not while other work of the copy runs (a scan only reads).
    const busy = { name: "offsite-init", task: "init", active: true, dryRun: false };
    expect(planDataAging(scannedFacts({ pods: [busy] })).pods).toEqual([]);
    expect(planDataAging(scannedFacts({ pods: [{ ...busy, task: "scan" }] })).pods).toHaveLength(1);
  });

  it("writes its result to status once, then its pod goes", () => {
    const pod = ended(
      previewPodName("offsite", scanned, 0),
      { data: { aged: 3, agedBytes: 300, breaker: { stop: true, share: 60, message: "" } } },
      { dryRun: true, catalogTime: scanned },
    );
    const plan = planDataAging(scannedFacts({ pods: [pod] }));
    expect(plan.status?.dataAging.preview).toEqual({
      at: "2026-06-10T12:00:00Z",
      jobs: 3,
      bytes: 300,
      breakerWouldStop: true,
      catalogTime: scanned,
    });
    expect(plan.requeueAfterMs).toBe(1000);
    const after = planDataAging(scannedFacts({ pods: [pod] }, plan.status!.dataAging));
    expect(after.deletePods).toEqual([pod.name]);
    expect(after.pods).toEqual([]);
  });

  it("backs off after failures: 30 s doubling, under a new pod name each time", () => {
    const failedPod = ended(
      previewPodName("offsite", scanned, 0),
      { ok: false, message: "boom", at: iso(NOW - 1000) },
      { dryRun: true, catalogTime: scanned },
    );
    const counted = planDataAging(scannedFacts({ pods: [failedPod] }));
    expect(counted.status?.dataAging).toMatchObject({ previewFailures: 1, lastPreviewFailureTime: iso(NOW - 1000) });
    // Two failures, the last 10 s ago: the next preview waits 60 s from it; the run does not.
    const twice = { ...idle, previewFailures: 2, lastPreviewFailureTime: iso(NOW - 10_000) };
    const waiting = planDataAging(scannedFacts({}, twice));
    expect(waiting).toEqual({ status: undefined, requeueAfterMs: 50_000 });
    const retried = planDataAging(scannedFacts({ now: NOW + 50_000 }, twice));
    expect(retried.pods?.[0]?.name).toBe(previewPodName("offsite", scanned, 2));
  });

  it("refused by the API server counts as a failure and backs off", () => {
    const f = scannedFacts();
    const name = previewPodName("offsite", scanned, 0);
    const plan = planDataAging({ ...f, rejected: [{ name, message: "the API server refused MediaAgent pod: forbidden" }] });
    expect(plan.status?.dataAging).toMatchObject({
      previewFailures: 1,
      lastPreviewFailureTime: iso(NOW),
      message: "the API server refused MediaAgent pod: forbidden",
    });
    expect(plan.events).toMatchObject([
      { type: "Warning", reason: "PodRejected", message: "data aging preview: the API server refused MediaAgent pod: forbidden" },
    ]);
    expect(plan.requeueAfterMs).toBe(30_000);
  });
});
