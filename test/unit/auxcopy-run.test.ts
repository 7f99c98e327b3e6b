// An aux copy run as a whole: how it stops, its overall phase, follow-up runs, and Ready with kstatus' Reconciling and
// Stalled; from plain facts and a fixed clock.
import { describe, expect, it } from "vitest";
import type { ReadyPlan } from "../../src/policy/plan.ts";
import { overallPhase, planAuxCopy, readyOf } from "../../src/policy/auxcopy-run.ts";
import { at, ended, facts, MINUTE, NOW, podOf, target } from "./auxcopy-facts.ts";

const running = { name: "offsite", phase: "Running" as const, attempts: 1, jobsCopied: 4, jobsSelected: 10 };

/** The conditions a ReadyPlan writes, as type → status/reason. */
function conditions(r: ReadyPlan): Record<string, string> {
  const ready = r.problems.length ? `False/${r.problems[0]!.reason}` : `True/${r.ok.reason}`;
  return { Ready: ready, ...Object.fromEntries((r.others ?? []).map((c) => [c.type, `${c.status}/${c.reason}`])) };
}

describe("stopping a run", () => {
  it("kills a cancelled job: its pods go, parts under way show Killed, finished parts stay", () => {
    const plan = planAuxCopy(
      facts({
        spec: { cancel: true },
        pods: ["run1-offsite-1"],
        parts: [running, { name: "second", phase: "Completed" }],
        targets: [target("offsite"), target("second")],
      }),
    );
    expect(plan.deletePods).toEqual(["run1-offsite-1"]);
    expect(plan.status).toMatchObject({
      phase: "Killed",
      reason: "Cancelled",
      message: "cancelled by spec.cancel",
      completionTime: at(NOW),
    });
    expect(plan.status?.copies?.map((p) => p.phase)).toEqual(["Killed", "Completed"]);
    expect(plan.events).toEqual([{ type: "Normal", reason: "Killed", message: "cancelled by spec.cancel" }]);
    expect(conditions(plan.ready!)).toEqual({ Ready: "False/Cancelled", Reconciling: "False/Killed", Stalled: "True/Cancelled" });
  });

  it("suspends a job: its pods go, its progress stays, and it is still in progress for kstatus", () => {
    const plan = planAuxCopy(facts({ spec: { suspend: true }, pods: ["run1-offsite-1"], parts: [running] }));
    expect(plan.deletePods).toEqual(["run1-offsite-1"]);
    expect(plan.status).toMatchObject({ phase: "Suspended", reason: "Suspended", message: "suspended by spec.suspend; progress is kept" });
    expect(plan.status?.copies?.[0]).toMatchObject({ phase: "Suspended", jobsCopied: 4 });
    expect(plan.events ?? []).toEqual([]);
    expect(conditions(plan.ready!)).toEqual({ Ready: "False/Suspended", Reconciling: "True/Suspended", Stalled: "False/Suspended" });
  });

  it("past maxRunningTime kills a job that is not copying, and one that is only with killWhenMaxRunningTimeExpires", () => {
    const startTime = at(NOW - 2 * 60 * MINUTE);
    const queued = planAuxCopy(
      facts({ spec: { maxRunningTime: "1h" }, status: { startTime, phase: "Queued", copies: [{ name: "offsite", phase: "Queued" }] } }),
    );
    expect(queued.status).toMatchObject({ phase: "Killed", reason: "MaxRunningTimeExpired", message: "total running time 1h expired" });
    expect(queued.events?.[0]).toMatchObject({ type: "Warning", reason: "Killed" });

    const copying = facts({
      spec: { maxRunningTime: "1h" },
      status: { startTime, phase: "Running", copies: [running] },
      targets: [target("offsite", { pod: podOf("run1-offsite-1") })],
    });
    expect(planAuxCopy(copying).status).toMatchObject({ phase: "Running" });
    const strict = { ...copying, job: { ...copying.job, spec: { ...copying.job.spec, killWhenMaxRunningTimeExpires: true } } };
    expect(planAuxCopy(strict).status).toMatchObject({ phase: "Killed", reason: "MaxRunningTimeExpired" });
  });

  it("waits for a policy that does not exist", () => {
    const plan = planAuxCopy(facts({ policy: undefined, targets: [] }));
    expect(plan.status).toMatchObject({ phase: "Pending", reason: "PolicyNotFound", message: 'storage policy "nightly" does not exist' });
    expect(plan.requeueAfterMs).toBeUndefined();
  });

  it("deletes the pods of an ended run and writes nothing new", () => {
    const status = {
      phase: "Completed" as const,
      jobsCopied: 3,
      jobsSelected: 3,
      copies: [{ name: "offsite", phase: "Completed" as const }],
    };
    const plan = planAuxCopy(facts({ status, pods: ["run1-offsite-1"] }));
    expect(plan.deletePods).toEqual(["run1-offsite-1"]);
    expect(plan.status).toEqual(status);
    expect(plan.events).toBeUndefined();
    expect(conditions(plan.ready!)).toEqual({ Ready: "True/Completed", Reconciling: "False/Completed", Stalled: "False/Completed" });
  });
});

describe("the end of a run", () => {
  it("creates a follow-up run for the jobs beyond jobLimit, once", () => {
    const pod = podOf("run1-offsite-1", { result: ended({ copied: 5, bytes: 10, selected: 5, remaining: 7 }) });
    const f = facts({ spec: { jobLimit: 5 }, parts: [running], targets: [target("offsite", { pod }), target("second")] });
    f.job.status.copies!.push({ name: "second", phase: "Completed" });
    const plan = planAuxCopy(f);
    expect(plan.followUp).toEqual({ name: "run1-2", copies: ["offsite"] });
    expect(plan.status).toMatchObject({ phase: "Completed", followUpJob: "run1-2" });
    expect(plan.events?.map((e) => e.reason)).toEqual(["CopyCompleted", "FollowUpCreated", "Completed"]);
    expect(plan.events?.[1]?.message).toBe("offsite: jobs beyond jobLimit go to auxcopyjob run1-2");
    expect(plan.metrics?.find((m) => m.metric === "auxCopyRuns")).toEqual({
      metric: "auxCopyRuns",
      labels: { namespace: "team", policy: "nightly", phase: "Completed" },
      value: 600,
      once: "run/uid-run1",
    });
    const named = facts({ spec: { jobLimit: 5 }, parts: [running], targets: [target("offsite", { pod })] });
    named.job.status.followUpJob = "run1-2";
    expect(planAuxCopy(named).followUp).toBeUndefined();
  });

  it("derives the overall phase from the parts", () => {
    const of = (...phases: string[]) => overallPhase(phases.map((phase, i) => ({ name: `c${i}`, phase })));
    expect(overallPhase([])).toEqual({ phase: "Completed", reason: "NothingToCopy" });
    expect(of("Running", "Waiting")).toEqual({ phase: "Running" });
    expect(of("Retrying", "Completed")).toEqual({ phase: "Pending", reason: "Retrying" });
    expect(of("Waiting", "Queued")).toEqual({ phase: "Waiting", reason: "ResourcesUnavailable" });
    expect(overallPhase([{ name: "a", phase: "Waiting", reason: "LockHeld" }])).toEqual({ phase: "Waiting", reason: "LockHeld" });
    expect(of("Queued")).toEqual({ phase: "Queued", reason: "ConflictingJob" });
    expect(of("Completed", "Completed")).toEqual({ phase: "Completed" });
    expect(of("Failed", "Failed")).toEqual({ phase: "Failed" });
    expect(of("Completed", "Failed")).toEqual({ phase: "CompletedWithErrors" });
  });

  it("sets Ready, Reconciling and Stalled as kstatus reads them, without Ready events", () => {
    expect(conditions(readyOf({ phase: "Running" }))).toEqual({
      Ready: "False/Running",
      Reconciling: "True/Running",
      Stalled: "False/Running",
    });
    expect(conditions(readyOf({ phase: "Queued", reason: "OperationWindow" }))).toEqual({
      Ready: "False/OperationWindow",
      Reconciling: "True/OperationWindow",
      Stalled: "False/Queued",
    });
    expect(conditions(readyOf({ phase: "Failed" }))).toEqual({
      Ready: "False/Failed",
      Reconciling: "False/Failed",
      Stalled: "True/Failed",
    });
    expect(conditions(readyOf({ phase: "CompletedWithErrors" }))).toMatchObject({ Stalled: "True/CompletedWithErrors" });
    const done = readyOf({ phase: "Completed", jobsCopied: 3, jobsSelected: 3 });
    expect(done.ok).toEqual({ reason: "Completed", message: "copied 3 of 3 jobs" });
    expect(done.events).toBe(false);
    expect(readyOf({ phase: "Waiting", message: 'offsite: library "s3" is Unreachable' }).problems).toEqual([
      { reason: "Waiting", message: 'offsite: library "s3" is Unreachable' },
    ]);
  });
});
