// age: data aging of the target copy. Decide by its retention with what the copies after it still need, stop at
// the mass-deletion breaker, then forget the aged jobs and prune (restic's exclusive lock).
import { EngineError } from "../../engine/errors.ts";
import type { CatalogEntry } from "../../policy/catalog.ts";
import { decideRetention, type DownstreamCopy, massDeletionBreaker, type RetentionDecision } from "../../policy/retention.ts";
import { planCopy } from "../../policy/selection.ts";
import { mirrorForgets } from "../../policy/snapvault-aging.ts";
import { type Handler, messageOf, progress, type TaskContext } from "../context.ts";
import { failedVerification, recordRun } from "../events.ts";
import type { AgeResult, DownstreamTask, TaskSpec } from "../protocol.ts";

/** How far the agent's clock may be from the operator's decision time before data aging refuses to forget. */
const MAX_CLOCK_SKEW_MS = 5 * 60_000;

const DAY = 86_400_000;

/** The operator decided as of `at`; a node clock far from it would age by another day's rules. */
export function clockSkew(at: string | undefined, now: number): EngineError | undefined {
  const skew = at ? now - Date.parse(at) : 0;
  if (Math.abs(skew) <= MAX_CLOCK_SKEW_MS) return undefined;
  return new EngineError(
    "ClockSkew",
    "age",
    null,
    "",
    `this node's clock reads ${new Date(now).toISOString()}, the operator decided at ${at} (${Math.round(Math.abs(skew) / 1000)} s apart, more than ${MAX_CLOCK_SKEW_MS / 1000} s): nothing was forgotten`,
  );
}

/**
 * What a copy after this one still needs of its jobs, and which it has. `theirs` undefined: it cannot be read, so
 * it may need any job and every job waits for it.
 */
export function downstreamNeeds(
  catalog: CatalogEntry[],
  d: DownstreamTask,
  theirs: CatalogEntry[] | undefined,
  now: number,
): DownstreamCopy {
  const base = { name: d.name, active: d.active, copyType: d.rules.copyType };
  if (!theirs) return { ...base, needs: new Set(catalog.map((e) => e.jobId)), has: new Set() };
  // What it takes now, and later (deferred jobs, periods still open): far enough ahead that every period closed.
  const plan = planCopy(catalog, theirs, { ...d.rules, deferDays: 0 }, { now: now + 400 * DAY });
  const on = new Set(theirs.map((e) => e.originalId));
  return {
    ...base,
    needs: new Set(plan.toCopy.map((e) => e.jobId)),
    has: new Set(catalog.filter((e) => on.has(e.originalId)).map((e) => e.jobId)),
  };
}

/** The decision as the result reports it, before anything is forgotten. */
export function agingReport(jobs: number, decision: RetentionDecision, maxSharePercent: number, unread: string[]): Omit<AgeResult, "ok"> {
  const breaker = massDeletionBreaker(decision, maxSharePercent);
  const aged = decision.verdicts.filter((v) => v.action === "age");
  return {
    jobs,
    aged: aged.length,
    agedBytes: decision.summary.agedBytes,
    agedJobs: aged.slice(0, 20).map((v) => v.jobId),
    byReason: decision.summary.byReason,
    breaker: { stop: breaker.stop, share: Math.round(breaker.share * 10) / 10, message: breaker.message },
    ...(unread.length ? { downstreamUnread: unread.slice(0, 5) } : {}),
  };
}

async function readDownstream(spec: TaskSpec, ctx: TaskContext, catalog: CatalogEntry[], now: number) {
  const downstream: DownstreamCopy[] = [];
  const unread: string[] = [];
  for (const d of spec.downstream ?? []) {
    let theirs: CatalogEntry[] | undefined;
    if (!d.unreachable)
      try {
        theirs = await ctx.engine.catalog(ctx.repo(d.access), ctx.timeoutMs);
      } catch (err) {
        unread.push(`${d.name}: ${messageOf(err)}`);
      }
    downstream.push(downstreamNeeds(catalog, d, theirs, now));
  }
  return { downstream, unread };
}

export const age: Handler<"age"> = async (spec, ctx) => {
  if (!spec.aging) throw new Error("age needs the copy's retention");
  const a = spec.aging;
  const { engine, timeoutMs } = ctx;
  const target = ctx.repo(spec.target);
  if (!a.dryRun) {
    const skewed = clockSkew(a.at, Date.now());
    if (skewed) throw skewed;
    await ctx.checkIdentity(spec.target);
  }
  const catalog = await engine.catalog(target, timeoutMs);
  if (a.forgetJobs) return await forgetMirrored(ctx, spec, catalog, a.forgetJobs);
  const now = a.at ? Date.parse(a.at) : Date.now();
  const { downstream, unread } = await readDownstream(spec, ctx, catalog, now);
  const decision = decideRetention({
    catalog,
    retention: a.retention,
    jobOverrides: a.overrides,
    now,
    timeZone: a.timeZone,
    downstream,
    badJobs: await failedVerification(spec.target, ctx.env).catch(() => undefined),
  });
  const report = agingReport(catalog.length, decision, a.maxSharePercent, unread);
  if (a.dryRun) return { ok: true, dryRun: true, ...report };
  // A run's record beside the repository: data aging's status is rebuilt from them after the cluster is lost.
  const record = (result: string, reclaimedBytes: number) =>
    a.run === undefined
      ? Promise.resolve({})
      : recordRun(spec.target, ctx.env, {
          kind: "aging",
          run: a.run,
          jobs: result === "completed" ? report.aged : 0,
          summary: {
            result,
            aged: result === "completed" ? report.aged : 0,
            agedBytes: result === "completed" ? report.agedBytes : 0,
            reclaimedBytes,
            message: result === "stopped" ? report.breaker.message : undefined,
          },
        });
  if (report.breaker.stop)
    return {
      ok: false,
      kind: "MassDeletion",
      retryable: false,
      message: report.breaker.message,
      ...report,
      ...(await record("stopped", 0)),
    };
  if (report.aged === 0) return { ok: true, ...report, reclaimedBytes: 0, ...(await record("completed", 0)) };
  // Forget and prune need the exclusive lock: stale locks and those of ended Auxo pods go first. Any other lock
  // (a producer's backup or prune) stays, and the run fails LockHeld and waits instead of breaking it.
  await ctx.clearLocks(spec.target);
  const before = await engine.storedBytes(target, timeoutMs);
  await engine.forget(
    target,
    decision.verdicts.filter((v) => v.action === "age").map((v) => v.snapshotId),
  );
  progress({ task: "age", aged: report.aged, phase: "prune" });
  await engine.prune(target, timeoutMs);
  const after = await engine.storedBytes(target, timeoutMs);
  const reclaimedBytes = Math.max(0, before - after);
  return { ok: true, ...report, reclaimedBytes, storedBytes: after, ...ctx.locksNote(), ...(await record("completed", reclaimedBytes)) };
};

/** A SnapVault Mirror's aging: the copies of snapshots gone at the source are forgotten (never a PVC's newest). */
async function forgetMirrored(ctx: TaskContext, spec: TaskSpec, catalog: CatalogEntry[], jobs: string[]): Promise<AgeResult> {
  const ids = mirrorForgets(catalog, jobs);
  const byId = new Map(catalog.map((e) => [e.snapshotId, e]));
  const aged = ids.map((id) => byId.get(id) as CatalogEntry);
  const report = {
    jobs: catalog.length,
    aged: aged.length,
    agedBytes: aged.reduce((n, e) => n + (e.bytes ?? 0), 0),
    agedJobs: aged.slice(0, 20).map((e) => e.jobId),
    byReason: {},
    breaker: { stop: false, share: catalog.length ? Math.round((aged.length / catalog.length) * 1000) / 10 : 0, message: "" },
  };
  if (aged.length === 0 || spec.aging?.dryRun) return { ok: true, ...report, reclaimedBytes: 0 };
  const target = ctx.repo(spec.target);
  await ctx.clearLocks(spec.target);
  const before = await ctx.engine.storedBytes(target, ctx.timeoutMs);
  await ctx.engine.forget(target, ids);
  progress({ task: "age", aged: aged.length, phase: "prune" });
  await ctx.engine.prune(target, ctx.timeoutMs);
  const after = await ctx.engine.storedBytes(target, ctx.timeoutMs);
  return { ok: true, ...report, reclaimedBytes: Math.max(0, before - after), storedBytes: after, ...ctx.locksNote() };
}
