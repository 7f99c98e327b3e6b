// One target copy's part of an aux copy run: each situation of the phase switch, from plain facts and a fixed clock.
import { describe, expect, it } from "vitest";
import { planAuxCopy } from "../../src/policy/auxcopy-run.ts";
import { at, ended, facts, MINUTE, NOW, podOf, side, target } from "./auxcopy-facts.ts";

const part = (plan: ReturnType<typeof planAuxCopy>, name = "offsite") => plan.status?.copies?.find((p) => p.name === name);
const reasons = (plan: ReturnType<typeof planAuxCopy>) => (plan.events ?? []).map((e) => e.reason);

describe("an aux copy part from start to end", () => {
  it("records the attempt first, then starts its pod, then shows its progress", () => {
    const first = planAuxCopy(facts());
    expect(part(first)).toMatchObject({ phase: "Pending", attempts: 1, message: "starting attempt 1", source: "primary" });
    expect(first.pods).toEqual([]);
    expect(first.requeueAfterMs).toBe(500);
    expect(reasons(first)).toEqual(["Started"]);

    const second = planAuxCopy(facts({ parts: [part(first)!], status: { ...first.status } }));
    expect(second.pods?.map((p) => p.name)).toEqual(["run1-offsite-1"]);
    expect(second.pods?.[0]).toMatchObject({
      task: "copy",
      plan: { runStart: first.status?.startTime, limit: 1000 },
      labels: { "auxo.dev/copy": "offsite", "auxo.dev/source": "primary", "auxo.dev/attempt": "1" },
    });
    expect(part(second)).toMatchObject({ phase: "Running", message: 'copying from "primary" (attempt 1)' });
    expect(reasons(second)).toEqual([]); // started already

    const running = planAuxCopy(
      facts({
        parts: [{ ...part(second)!, startTime: at(NOW - 10_000) }],
        targets: [
          target("offsite", {
            pod: podOf("run1-offsite-1", {
              progress: { jobsDone: 2, jobsTotal: 5, bytesDone: 4000, bytesTotal: 10_000 },
              progressReadAt: NOW,
            }),
          }),
        ],
      }),
    );
    expect(part(running)).toMatchObject({ phase: "Running", jobsCopied: 2, jobsSelected: 5, throughput: 400, etaSeconds: 15 });
    expect(running.status).toMatchObject({ phase: "Running", progress: "2/5 jobs" });
    expect(running.requeueAfterMs).toBe(2000); // the next progress read
  });

  it("completes when its pod copied everything, counting the pod's jobs once", () => {
    const plan = planAuxCopy(
      facts({
        spec: { scalableResourceAllocation: false },
        parts: [{ name: "offsite", phase: "Running", attempts: 1, source: "primary" }],
        targets: [
          target("offsite", {
            pod: podOf("run1-offsite-1", {
              result: ended({ copied: 3, bytes: 900, selected: 3, remaining: 0, copiedJobs: ["j1", "j2", "j3"] }),
            }),
          }),
        ],
      }),
    );
    expect(part(plan)).toMatchObject({
      phase: "Completed",
      jobsCopied: 3,
      jobsSelected: 3,
      jobsFailed: 0,
      message: 'copied 3 jobs from "primary"',
    });
    expect(plan.status).toMatchObject({ phase: "Completed", completionTime: at(NOW), jobsCopied: 3 });
    expect(plan.status?.history?.map((h) => h.jobId)).toEqual(["j1", "j2", "j3"]);
    expect(reasons(plan)).toEqual(["CopyCompleted", "Completed"]);
    expect(plan.metrics).toContainEqual({
      metric: "copiedJobs",
      labels: { namespace: "team", policy: "nightly", copy: "offsite" },
      value: 3,
      once: "uid-run1-offsite-1",
    });
  });

  it("runs another pass when the pod copied jobs (new ones may have arrived), with pod names of pass 2", () => {
    const pod = podOf("run1-offsite-1", { result: ended({ copied: 3, bytes: 900, selected: 3, remaining: 0 }) });
    const plan = planAuxCopy(facts({ parts: [{ name: "offsite", phase: "Running", attempts: 1 }], targets: [target("offsite", { pod })] }));
    expect(part(plan)).toMatchObject({
      phase: "Pending",
      pass: 2,
      attempts: 0,
      settledJobsCopied: 3,
      message: "pass 1 copied 3 jobs; looking for new ones",
    });
    const next = planAuxCopy(facts({ parts: [{ ...part(plan)!, attempts: 1 }] }));
    expect(next.pods?.map((p) => p.name)).toEqual(["run1-offsite-p2-1"]);
  });
});

describe("a failed attempt", () => {
  const failedPod = (data: Record<string, unknown>) => podOf("run1-offsite-1", { result: ended(data, false, "storage unreachable") });

  it("is retried after back-off, with nextAttemptTime, and both libraries are probed when storage was unreachable", () => {
    const plan = planAuxCopy(
      facts({
        parts: [{ name: "offsite", phase: "Running", attempts: 1 }],
        targets: [target("offsite", { library: "s3", pod: failedPod({ kind: "Unreachable", retryable: true }) })],
      }),
    );
    const retryAt = NOW - 5000 + 1000; // the pod's end + the first back-off
    expect(part(plan)).toMatchObject({ phase: "Retrying", reason: "Unreachable", attempts: 2, nextAttemptTime: at(retryAt) });
    expect(plan.status).toMatchObject({ phase: "Pending", reason: "Retrying" });
    expect(plan.probes?.map((p) => p.library)).toEqual(["s3", "disk"]);
    expect(reasons(plan)).toEqual(["CopyRetrying"]);
    expect(plan.requeueAfterMs).toBe(1000);

    // Until then no pod starts.
    const waiting = planAuxCopy(
      facts({ now: NOW, parts: [{ name: "offsite", phase: "Retrying", attempts: 2, nextAttemptTime: at(NOW + 30_000) }] }),
    );
    expect(part(waiting)).toMatchObject({ phase: "Retrying" });
    expect(waiting.pods).toEqual([]);
    expect(waiting.requeueAfterMs).toBe(30_000);
  });

  it(`fails the part after ${4} attempts, or at once when not retryable`, () => {
    const last = planAuxCopy(
      facts({
        parts: [{ name: "offsite", phase: "Running", attempts: 4, jobsSelected: 10, jobsCopied: 6 }],
        targets: [target("offsite", { pod: podOf("run1-offsite-4", { result: ended({ kind: "Unreachable" }, false, "boom") }) })],
      }),
    );
    expect(part(last)).toMatchObject({ phase: "Failed", reason: "Unreachable", jobsFailed: 4, message: "attempt 4: boom" });
    expect(last.status).toMatchObject({ phase: "Failed", completionTime: at(NOW) });
    expect(reasons(last)).toEqual(["CopyFailed", "Failed"]);

    const corrupt = planAuxCopy(
      facts({
        parts: [{ name: "offsite", phase: "Running", attempts: 1 }],
        targets: [target("offsite", { pod: failedPod({ kind: "CorruptData", retryable: false }) })],
      }),
    );
    expect(part(corrupt)).toMatchObject({ phase: "Failed", reason: "CorruptData" });
  });

  it("waits for a lock held by another process without counting the attempt, and says so once", () => {
    const lockPod = (n: number) =>
      podOf(`run1-offsite-${n}`, { result: ended({ kind: "LockHeld" }, false, "repository locked by host x") });
    const first = planAuxCopy(
      facts({ parts: [{ name: "offsite", phase: "Running", attempts: 4 }], targets: [target("offsite", { pod: lockPod(4) })] }),
    );
    expect(part(first)).toMatchObject({
      phase: "Waiting",
      reason: "LockHeld",
      attempts: 5,
      lockWaits: 1,
      nextAttemptTime: at(NOW - 5000 + 1000),
    });
    expect(first.status).toMatchObject({ phase: "Waiting", reason: "LockHeld" });
    expect(reasons(first)).toEqual(["LockHeld"]);
    const again = planAuxCopy(
      facts({
        parts: [{ name: "offsite", phase: "Running", attempts: 5, lockWaits: 1 }],
        targets: [target("offsite", { pod: lockPod(5) })],
      }),
    );
    expect(part(again)).toMatchObject({ phase: "Waiting", lockWaits: 2, nextAttemptTime: at(NOW - 5000 + 2000) });
    expect(reasons(again)).toEqual([]);
    // Five attempts, one of them a lock wait: a failure now is the fourth failed attempt, and fails the part.
    const failure = planAuxCopy(
      facts({
        parts: [{ name: "offsite", phase: "Running", attempts: 5, lockWaits: 1 }],
        targets: [target("offsite", { pod: podOf("run1-offsite-5", { result: ended({}, false, "killed") }) })],
      }),
    );
    expect(part(failure)).toMatchObject({ phase: "Failed" });
    const earlier = planAuxCopy(
      facts({
        parts: [{ name: "offsite", phase: "Running", attempts: 4, lockWaits: 1 }],
        targets: [target("offsite", { pod: podOf("run1-offsite-4", { result: ended({}, false, "killed") }) })],
      }),
    );
    expect(part(earlier)).toMatchObject({ phase: "Retrying", attempts: 5 });
  });

  it("gives up on a pod that is never scheduled: it goes, and the attempt counts as failed", () => {
    const stuck = "MediaAgent pod run1-offsite-1 has been Pending for 660 s (Unschedulable: 0/3 nodes)";
    const young = planAuxCopy(
      facts({
        parts: [{ name: "offsite", phase: "Running", attempts: 1 }],
        targets: [target("offsite", { pod: podOf("run1-offsite-1", { createdAt: NOW - 2 * MINUTE, stuck }) })],
      }),
    );
    expect(part(young)).toMatchObject({ phase: "Running", reason: "PodNotScheduled", message: stuck });
    expect(young.events).toEqual([
      { type: "Warning", reason: "PodNotScheduled", message: `copy "offsite": ${stuck}`, once: "uid-run1/pending/uid-run1-offsite-1" },
    ]);
    const old = planAuxCopy(
      facts({
        parts: [{ name: "offsite", phase: "Running", attempts: 1 }],
        targets: [target("offsite", { pod: podOf("run1-offsite-1", { createdAt: NOW - 11 * MINUTE, stuck }) })],
      }),
    );
    expect(old.deletePods).toEqual(["run1-offsite-1"]);
    expect(part(old)).toMatchObject({ phase: "Retrying", reason: "PodNotScheduled", attempts: 2, nextAttemptTime: at(NOW + 1000) });
  });

  it("marks a pod the API server refused PodRejected when the plan is made again with the refusal", () => {
    const f = facts({ parts: [{ name: "offsite", phase: "Pending", attempts: 1 }] });
    expect(planAuxCopy(f).pods?.map((p) => p.name)).toEqual(["run1-offsite-1"]);
    const rejected = [{ name: "run1-offsite-1", message: "the API server refused MediaAgent pod: exceeded quota" }];
    const again = planAuxCopy({ ...f, rejected });
    expect(part(again)).toMatchObject({
      phase: "Retrying",
      reason: "PodRejected",
      attempts: 2,
      nextAttemptTime: at(NOW + 1000),
      message: `attempt 1: ${rejected[0]!.message}`,
    });
    expect(reasons(again)).toEqual(["PodRejected"]);
    const last = planAuxCopy({
      ...facts({ parts: [{ name: "offsite", phase: "Pending", attempts: 4 }] }),
      rejected: [{ ...rejected[0]!, name: "run1-offsite-4" }],
    });
    expect(part(last)).toMatchObject({ phase: "Failed", reason: "PodRejected", attempts: 4, completionTime: at(NOW) });
    expect(part(last)?.nextAttemptTime).toBeUndefined();
  });
});

describe("a part that waits", () => {
  const waitingFor = (f: ReturnType<typeof facts>) => part(planAuxCopy(f));

  it("waits for its source's part in a cascade", () => {
    const plan = planAuxCopy(facts({ targets: [target("offsite", { source: "second" }), target("second")] }));
    expect(part(plan)).toMatchObject({ phase: "Waiting", message: 'waiting for its source copy "second" to be filled by this run' });
    expect(part(plan, "second")).toMatchObject({ phase: "Pending" });
  });

  it("parks while a library is down, a prune runs, backups are required, or a repository is refused or not initialised", () => {
    const down = target("offsite", { library: "s3" });
    down.copy!.library!.phase = "Unreachable";
    expect(waitingFor(facts({ targets: [down] }))).toMatchObject({ phase: "Waiting", message: 'library "s3" is Unreachable' });
    expect(waitingFor(facts({ targets: [{ ...target("offsite"), sourceCopy: undefined }] }))?.message).toBe(
      'source copy "primary", or a library, does not exist',
    );

    const aging = planAuxCopy(facts({ targets: [target("offsite", { agingPod: "offsite-age-1" })] }));
    expect(part(aging)).toMatchObject({ phase: "Waiting", message: "data aging runs on the repository (pod offsite-age-1)" });
    expect(aging.requeueAfterMs).toBe(5000);

    const hold = target("offsite");
    hold.copy!.hold = "2 jobs of the primary are not on this copy yet";
    expect(waitingFor(facts({ targets: [hold] }))?.message).toBe("2 jobs of the primary are not on this copy yet");

    const refused = target("offsite");
    refused.sourceCopy = side("primary", "disk", { refusal: { reason: "RepositoryShared", message: "its repository is also copy x's" } });
    expect(waitingFor(facts({ targets: [refused] }))).toMatchObject({
      phase: "Waiting",
      reason: "RepositoryShared",
      message: `copy "primary": its repository is also copy x's`,
    });

    const fresh = target("offsite");
    fresh.copy!.repositoryReady = false;
    expect(waitingFor(facts({ targets: [fresh] }))?.message).toBe('repository of "offsite" is not initialised yet');
  });

  it("queues behind an older unfinished job of the policy with a part for the same copy", () => {
    const older = {
      name: "run0",
      uid: "uid-run0",
      createdAt: at(NOW - 2 * 60 * MINUTE),
      phase: "Running",
      hasStatus: true,
      parts: [{ name: "offsite", phase: "Running" }],
    };
    const plan = planAuxCopy(facts({ others: [older] }));
    expect(part(plan)).toMatchObject({ phase: "Queued", message: 'queued behind auxcopyjob run0, which copies to "offsite"' });
    expect(plan.status).toMatchObject({ phase: "Queued", reason: "ConflictingJob" });
    expect(plan.events?.find((e) => e.reason === "Queued")).toEqual({
      type: "Normal",
      reason: "Queued",
      message: 'copy "offsite": queued behind auxcopyjob run0, which copies to "offsite"',
      once: "uid-run1/queued/100/ConflictingJob",
    });
    // Already shown as queued for that reason: no second event.
    const again = planAuxCopy(facts({ others: [older], status: { ...plan.status } }));
    expect(reasons(again)).toEqual([]);
    // A newer job, or one done with that copy, does not hold it.
    expect(part(planAuxCopy(facts({ others: [{ ...older, createdAt: at(NOW) }] })))?.phase).toBe("Pending");
    expect(part(planAuxCopy(facts({ others: [{ ...older, parts: [{ name: "offsite", phase: "Completed" }] }] })))?.phase).toBe("Pending");
  });

  it("queues inside an operation window until it ends, and waits on an unknown time zone", () => {
    const window = { name: "backups", operations: ["AuxCopy"], days: [], start: "11:00", end: "13:00" };
    const plan = planAuxCopy(facts({ policy: { name: "nightly", primaryCopy: "primary", timeZone: "UTC", operationWindows: [window] } }));
    expect(part(plan)).toMatchObject({ phase: "Queued", message: `operation window "backups" until ${at(NOW + 60 * MINUTE)}` });
    expect(plan.status).toMatchObject({ phase: "Queued", reason: "OperationWindow" });
    expect(reasons(plan)).toEqual(["Started", "OperationWindow"]);
    expect(plan.requeueAfterMs).toBe(60 * MINUTE);

    const zone = planAuxCopy(facts({ policy: { name: "nightly", primaryCopy: "primary", timeZone: "Mars/Olympus" } }));
    expect(part(zone)).toMatchObject({ phase: "Waiting" });
    expect(part(zone)?.message).toMatch(/^spec.timeZone "Mars\/Olympus" is not a known IANA time zone/);
  });

  it("waits for a stream under the job's cap and each library's maxStreams, with its place in the queue", () => {
    const started = (p: { name: string }) => ({ ...p, phase: "Pending" as const, attempts: 1 });
    const two = facts({
      spec: { streams: 1 },
      parts: [started({ name: "offsite" }), started({ name: "second" })],
      targets: [target("offsite"), target("second")],
    });
    const plan = planAuxCopy(two);
    expect(plan.pods?.map((p) => p.name)).toEqual(["run1-offsite-1"]); // the pod this reconcile starts takes the job's one stream
    expect(part(plan, "second")).toMatchObject({
      phase: "Waiting",
      queuePosition: 1,
      message: "waiting for a stream: all 1 streams of this job are in use; position 1 in the queue",
    });

    const busy = target("offsite", { library: "s3" });
    busy.copy!.library!.maxStreams = 2;
    const queue = [
      { name: "older", createdAt: at(NOW - 2 * 60 * MINUTE) },
      { name: "newer", createdAt: at(NOW) },
    ];
    const full = planAuxCopy(
      facts({ parts: [started({ name: "offsite" })], targets: [busy], streams: { job: 0, byLibrary: { s3: 2 } }, streamQueue: queue }),
    );
    expect(part(full)).toMatchObject({
      phase: "Waiting",
      queuePosition: 2,
      message: 'waiting for a stream: library "s3" has no free stream (2 of 2 in use); position 2 in the queue',
    });
    expect(full.status).toMatchObject({ phase: "Waiting", reason: "ResourcesUnavailable" });
  });
});
