// copy: aux copy of jobs from the source copy's repository to the target's (`restic copy`). With a plan the pod
// selects the jobs itself from both catalogs by the copy's rules; without one it copies the snapshots it is given
// that the target lacks. Every job copied, or not copied, is a job event beside the target repository.
import type { Repo } from "../../engine/restic.ts";
import { damagedPackOf, EngineError } from "../../engine/errors.ts";
import { type CatalogEntry, missingOn } from "../../policy/catalog.ts";
import { copyHistoryOf, jobRecords } from "../../policy/jobevents.ts";
import { planCopy } from "../../policy/selection.ts";
import { type Access, type Handler, messageOf, progress, type TaskContext } from "../context.ts";
import { type EventWriter, eventWriter, failedVerification } from "../events.ts";
import { type EventName, metadataStore } from "../metadata.ts";
import type { CopyResult, TaskSpec } from "../protocol.ts";

type Planned = Pick<CopyResult, "selected" | "remaining" | "counts" | "recopied" | "repairedPacks">;

/** One pod's copying: the jobs it took on, those it finished (by snapshot ID), their bytes. */
interface Attempt {
  todo: CatalogEntry[];
  copied: Set<string>;
  bytesDone: number;
}

const valid = (e: CatalogEntry) => e.status === "completed" || e.status === "completedWithErrors";
const newest = (es: CatalogEntry[]) => Math.max(0, ...es.map((e) => Date.parse(e.startTime)).filter((t) => !Number.isNaN(t)));

/** Lag after this pod: the newest valid source job against the newest job the target holds (or now gets). */
export function lagAfter(source: CatalogEntry[], target: CatalogEntry[], copied: CatalogEntry[]): Pick<CopyResult, "lagSeconds"> {
  const src = newest(source.filter(valid));
  if (!src) return {};
  return { lagSeconds: Math.max(0, Math.round((src - newest([...target, ...copied])) / 1000)) };
}

/** What a stopped attempt finished and what it did not, bounded for the result (the job events keep all). */
export function stoppedCounts(a: Attempt): Pick<CopyResult, "copied" | "copiedJobs" | "failedJobs" | "bytes"> {
  return {
    copied: a.copied.size,
    copiedJobs: a.todo
      .filter((j) => a.copied.has(j.snapshotId))
      .slice(-20)
      .map((e) => e.jobId),
    failedJobs: a.todo
      .filter((j) => !a.copied.has(j.snapshotId))
      .slice(0, 20)
      .map((e) => e.jobId),
    bytes: a.bytesDone,
  };
}

/** Jobs copied at or after `since`, from the job events' names. */
export const copiedSince = (events: EventName[], since: string): number =>
  new Set(events.filter((e) => e.kind === "copy" && e.result === "ok" && e.at >= since).map((e) => e.jobId)).size;

/**
 * Jobs copied to the target since the run started, by every pod of the run (a killed one included), from the job
 * events beside the repository: the exact count for the run's status.
 */
async function runCopied(spec: TaskSpec, env: NodeJS.ProcessEnv): Promise<Pick<CopyResult, "runCopied">> {
  const store = metadataStore(spec.target.metadata, env, spec.target);
  if (!store || !spec.plan?.runStart) return {};
  try {
    return { runCopied: copiedSince(await store.list(), new Date(spec.plan.runStart).toISOString()) };
  } catch {
    return {};
  }
}

/**
 * From the job events beside a copy: when each job was last copied to it, and which jobs' latest attempt failed.
 * Nothing when the library keeps no events or they cannot be read (selection then goes by the catalogs alone).
 */
async function copyHistory(
  a: Access,
  env: NodeJS.ProcessEnv,
): Promise<{ lastCopied?: Map<string, string>; partial?: Set<string>; bad?: Set<string> }> {
  const store = metadataStore(a.metadata, env, a);
  if (!store) return {};
  try {
    return copyHistoryOf(jobRecords(await store.list()));
  } catch {
    return {};
  }
}

/** The jobs this pod copies: by the copy's rules with a plan, else the given snapshots the target lacks. */
async function selectJobs(
  spec: TaskSpec & { source: Access },
  ctx: TaskContext,
  catalogs: { source: CatalogEntry[]; target: CatalogEntry[] },
  target: Repo,
): Promise<{ todo: CatalogEntry[]; planned: Planned }> {
  if (!spec.plan) {
    const wanted = new Set(spec.snapshotIds ?? []);
    return {
      todo: missingOn(
        catalogs.source.filter((e) => wanted.has(e.snapshotId)),
        catalogs.target,
      ),
      planned: {},
    };
  }
  const skipJobs = spec.plan.skipVerificationFailed ? await failedVerification(spec.source, ctx.env) : undefined;
  const { bad, ...history } = await copyHistory(spec.target, ctx.env);
  const plan = planCopy(catalogs.source, catalogs.target, spec.plan.rules, {
    now: Date.now(),
    cutoff: spec.plan.cutoff ? Date.parse(spec.plan.cutoff) : undefined,
    skipJobs,
    limit: spec.plan.limit,
    mostRecentFull: spec.plan.mostRecentFull,
    ...history,
  });
  const todo = plan.toCopy;
  const planned: Planned = { selected: todo.length, remaining: plan.remaining, counts: plan.counts };
  if (plan.recopy.length) {
    // Recopy: the job's snapshot on the target goes first (forget only; its data stays until a prune), then the
    // copy writes it again. Should the copy fail now, the job is simply missing and the retry copies it.
    const again = new Set(plan.recopy);
    const originals = new Set(todo.filter((e) => again.has(e.jobId)).map((e) => e.originalId));
    // A job Bad on the target first loses its damaged packs: restic copies only blobs the target's index lacks.
    for (const e of catalogs.target.filter((x) => originals.has(x.originalId) && bad?.has(x.jobId)))
      planned.repairedPacks = [...(planned.repairedPacks ?? []), ...(await repairDamage(ctx, target, e.snapshotId))];
    await ctx.engine.forget(
      target,
      catalogs.target.filter((e) => originals.has(e.originalId)).map((e) => e.snapshotId),
    );
    planned.recopied = plan.recopy.length;
  }
  return { todo, planned };
}

/**
 * Reads a Bad job on the target and salvages each damaged pack it meets (restic repair packs: intact blobs are kept,
 * the pack leaves the index), until the job reads clean or only lacks blobs, which the copy then brings from the
 * source. At most 10 packs per job; the packs repaired, by ID.
 */
async function repairDamage(ctx: TaskContext, target: Repo, snapshotId: string): Promise<string[]> {
  const repaired: string[] = [];
  for (let round = 0; round < 10; round++) {
    try {
      await ctx.engine.verify(target, snapshotId, ctx.timeoutMs);
      return repaired;
    } catch (err) {
      if (!(err instanceof EngineError) || err.kind !== "CorruptData") throw err;
      const short = damagedPackOf(err.message);
      const pack = short && (await ctx.engine.packs(target, ctx.timeoutMs)).find((p) => p.startsWith(short));
      if (!pack || repaired.includes(pack)) return repaired;
      await ctx.engine.repairPacks(target, [pack], ctx.timeoutMs);
      repaired.push(pack);
    }
  }
  return repaired;
}

/** Copies the jobs, with a progress line and a job event for each one restic saved. */
async function copyAll(ctx: TaskContext, source: Repo, target: Repo, a: Attempt, events: EventWriter): Promise<void> {
  const { todo } = a;
  const bytesTotal = todo.reduce((n, e) => n + (e.bytes ?? 0), 0);
  progress({ jobsDone: 0, jobsTotal: todo.length, bytesDone: a.bytesDone, bytesTotal, job: todo[0]?.jobId });
  await ctx.engine.copyJobs(source, target, todo, {
    timeoutMs: ctx.timeoutMs,
    onCopied: (job, done) => {
      a.copied.add(job.snapshotId);
      a.bytesDone += job.bytes ?? 0;
      events.add({ jobId: job.jobId, snapshotId: job.snapshotId, kind: "copy", result: "ok" });
      progress({ jobsDone: done, jobsTotal: todo.length, bytesDone: a.bytesDone, bytesTotal, job: todo[done]?.jobId });
    },
  });
}

/** After a copy stopped: every job it finished gets its ok event, every other job one failed attempt. */
async function recordStop(ctx: TaskContext, target: Repo, a: Attempt, events: EventWriter, err: unknown): Promise<void> {
  // A job restic saved just before it stopped (suspend, cancel, a deleted pod) may have no "saved" line: the
  // target's catalog says which are there, so every finished job gets its event and the run's count is exact.
  try {
    const landed = new Set((await ctx.engine.catalog(target, 60_000)).map((e) => e.originalId));
    for (const job of a.todo)
      if (!a.copied.has(job.snapshotId) && landed.has(job.originalId)) {
        a.copied.add(job.snapshotId);
        events.add({ jobId: job.jobId, snapshotId: job.snapshotId, kind: "copy", result: "ok" });
      }
  } catch {
    // the target cannot be read now; the next attempt's catalog finds those jobs anyway
  }
  // Every job this attempt did not finish counts one failed attempt (the next run finds the finished ones); a lock
  // that kept restic from starting is no attempt at any job.
  const attempted = !(err instanceof EngineError && err.kind === "LockHeld" && a.copied.size === 0);
  if (attempted)
    for (const job of a.todo.filter((j) => !a.copied.has(j.snapshotId)))
      events.add({ jobId: job.jobId, snapshotId: job.snapshotId, kind: "copy", result: "failed", message: messageOf(err) });
  await events.flush();
}

export const copy: Handler<"copy"> = async (spec, ctx) => {
  const from = spec.source;
  if (!from) throw new Error("copy needs a source");
  const source = ctx.repo(from);
  const target = ctx.repo(spec.target);
  await ctx.checkIdentity(spec.target);
  await ctx.checkIdentity(from);
  await ctx.clearLocks(spec.target);
  await ctx.clearLocks(from);
  const events = eventWriter(spec.target, ctx.env);
  const catalogs = { source: await ctx.engine.catalog(source, ctx.timeoutMs), target: await ctx.engine.catalog(target, ctx.timeoutMs) };
  const { todo, planned } = await selectJobs({ ...spec, source: from }, ctx, catalogs, target);
  const attempt: Attempt = { todo, copied: new Set(), bytesDone: 0 };
  try {
    await copyAll(ctx, source, target, attempt, events);
    await events.flush();
  } catch (err) {
    await recordStop(ctx, target, attempt, events, err);
    if (err instanceof EngineError) err.details = { ...stoppedCounts(attempt), ...planned, ...(await runCopied(spec, ctx.env)) };
    throw err;
  }
  return {
    ok: true,
    copied: todo.length,
    // For the run's history in status: the latest jobs copied (bounded; the job events keep all).
    copiedJobs: todo.slice(-20).map((e) => e.jobId),
    bytes: todo.reduce((n, e) => n + (e.bytes ?? 0), 0),
    ...planned,
    ...lagAfter(catalogs.source, catalogs.target, todo),
    ...(await runCopied(spec, ctx.env)),
    ...ctx.locksNote(),
    ...events.problem(),
  };
};
