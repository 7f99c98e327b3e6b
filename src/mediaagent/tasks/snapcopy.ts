// snapcopy: one VolumeSnapshot's vault or mirror copy. The operator restored a PVC from the VolumeSnapshot and mounted
// it read-only at a stable path per PVC; this pod backs that folder up into the SnapVault's destination repository as
// one restic snapshot with the copy's tags (policy/snaptags.ts), `--time` the VolumeSnapshot's creation time, and
// the previous copy of the same PVC as restic's parent. The destination is the truth: a snapshot there with the
// VolumeSnapshot's uid tag is the copy, and nothing is written again.
//
// Faults are sorted for the operator: the mounted volume unreadable (missing, not a folder, files restic cannot read)
// is the source's fault (`sourceFault`: it costs the VolumeSnapshot an attempt); anything else (the repository
// unreachable, locked, not the recorded one) is thrown as the engine's error and costs it nothing.
import { constants } from "node:fs";
import { access, readdir, stat } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { EngineError } from "../../engine/errors.ts";
import type { BackupSummary, Repo } from "../../engine/restic.ts";
import { type ResticSnapshot, toCatalogEntry } from "../../policy/catalog.ts";
import { snapCopyOf, snapCopyTags } from "../../policy/snaptags.ts";
import { jobRecords } from "../../policy/jobevents.ts";
import { type Access, type Handler, messageOf, progress, type TaskContext } from "../context.ts";
import { type EventWriter, eventWriter } from "../events.ts";
import { metadataStore } from "../metadata.ts";
import type { SnapCopyResult, SnapCopyTask, TaskSpec } from "../protocol.ts";

/** How long forgetting a partial snapshot waits for other writers' locks (restic's forget takes the exclusive lock). */
export const FORGET_LOCK_WAIT_MS = 10 * 60_000;

export const vsName = (s: SnapCopyTask) => `VolumeSnapshot ${s.client}/${s.volumeSnapshot.name}`;

/**
 * The copy of this VolumeSnapshot on the target: a snapshot with its uid tag, or with its CSI snapshot handle (the
 * same storage snapshot under another VolumeSnapshot: imported again into a cluster rebuilt after a loss), so that a
 * snapshot is never copied twice (docs/disaster-recovery.md).
 */
export const copyOf = (snaps: ResticSnapshot[], vs: { uid: string; handle?: string }): ResticSnapshot | undefined =>
  snaps.find((x) => snapCopyOf(x.tags)?.uid === vs.uid) ??
  (vs.handle ? snaps.find((x) => snapCopyOf(x.tags)?.handle === vs.handle?.replace(/,/g, "_")) : undefined);

/** restic's parent: the newest copy of the same PVC (client and subclient) by the same SnapVault. */
export function parentOf(snaps: ResticSnapshot[], s: SnapCopyTask): ResticSnapshot | undefined {
  let best: ResticSnapshot | undefined;
  for (const x of snaps) {
    if (snapCopyOf(x.tags)?.snapVault !== s.snapVault) continue;
    const e = toCatalogEntry(x);
    if (e.client !== s.client || e.subclient !== s.subclient) continue;
    if (!best || Date.parse(x.time) > Date.parse(best.time)) best = x;
  }
  return best;
}

/** Why the mounted volume cannot be copied, or undefined when it is a folder this pod can list. */
export async function unreadableSource(dir: string): Promise<string | undefined> {
  try {
    if (!(await stat(dir)).isDirectory()) return "it is not a directory";
    await access(dir, constants.R_OK | constants.X_OK);
    await readdir(dir); // an offline volume can pass stat and fail here (EIO)
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "it does not exist (the restored volume is not mounted)" : messageOf(err);
  }
}

export const sourceFault = (s: SnapCopyTask, message: string, extra: Partial<SnapCopyResult> = {}): SnapCopyResult => ({
  ok: false,
  kind: "SourceUnreadable",
  retryable: true,
  sourceFault: true,
  message,
  ...extra,
});

/**
 * A backup restic finished with unreadable files: the snapshot it just wrote (its id from restic's own summary, so
 * provably this pod's) is forgotten, so that its uid tag never passes for a complete copy.
 */
async function dropPartial(ctx: TaskContext, target: Repo, s: SnapCopyTask, b: BackupSummary): Promise<SnapCopyResult> {
  const files = `${b.unreadableCount ?? 0} file(s) under ${s.path} could not be read${b.unreadable?.length ? ` (${b.unreadable.slice(0, 3).join(", ")})` : ""}`;
  try {
    await ctx.engine.forget(target, [b.snapshotId], {
      retryLockMs: Math.min(FORGET_LOCK_WAIT_MS, ctx.timeoutMs),
      timeoutMs: ctx.timeoutMs,
    });
  } catch (err) {
    // The incomplete snapshot stays, with the uid tag: the destination's fault now, and the operator must not count
    // this VolumeSnapshot as copied. Thrown, so it is retried like any destination fault.
    const e = err instanceof EngineError ? err : new EngineError("Failed", "forget", null, messageOf(err));
    const out = new EngineError(
      e.kind,
      "snapcopy",
      e.exitCode,
      e.detail,
      `${vsName(s)}: ${files}; the incomplete snapshot ${b.snapshotId.slice(0, 8)} could not be forgotten: ${e.message}`,
    );
    out.details = { partialSnapshot: b.snapshotId };
    throw out;
  }
  return sourceFault(s, `${vsName(s)}: ${files}; the incomplete snapshot ${b.snapshotId.slice(0, 8)} was forgotten, nothing was kept`, {
    unreadable: b.unreadable?.slice(0, 10),
  });
}

/**
 * A copy on the target that a later failed attempt of the same job disowns: an attempt whose backup ended with
 * unreadable files and whose forget then failed too (another writer held the repository past the wait) left its
 * incomplete snapshot, with the uid tag, and a failed copy event after it. Without job events (a REST library, or
 * they cannot be read) the tag alone decides.
 */
export async function disowned(target: Access, ctx: TaskContext, s: SnapCopyTask, copy: ResticSnapshot): Promise<boolean> {
  const end = Date.parse(copy.summary?.backup_end ?? "");
  const store = metadataStore(target.metadata, ctx.env, target);
  if (!store || Number.isNaN(end)) return false;
  let last: { at: string; result: string } | undefined;
  try {
    last = jobRecords(await store.list()).get(s.jobId)?.lastCopy;
  } catch {
    return false;
  }
  return last?.result === "failed" && Date.parse(last.at) > end;
}

/**
 * The failed job event of an attempt that threw. A lock that kept restic from starting is no attempt at the copy (as
 * in copy); any other failure is one, and its event (newer than any snapshot it left) disowns what it left.
 */
export async function failedAttempt(events: EventWriter, s: SnapCopyTask, err: unknown): Promise<void> {
  if (err instanceof EngineError && err.kind === "LockHeld" && err.details?.partialSnapshot === undefined) return;
  events.add({ jobId: s.jobId, kind: "copy", result: "failed", message: messageOf(err) });
  await events.flush();
}

/** The job event of this attempt, and the events' problem for the result. */
export async function recorded<T extends SnapCopyResult>(events: EventWriter, s: SnapCopyTask, r: T, snapshotId?: string): Promise<T> {
  events.add({ jobId: s.jobId, snapshotId, kind: "copy", result: r.ok ? "ok" : "failed", ...(r.ok ? {} : { message: r.message }) });
  await events.flush();
  return { ...r, ...events.problem() };
}

/**
 * What a snapshot-copying task (snapcopy, backupcopy) finds on its target before it writes: the repository checked
 * (identity, dead locks), its snapshots, and the VolumeSnapshot's copy there if it is a whole one. A copy that a later
 * failed attempt disowns is forgotten first (thrown as a destination fault when it cannot be), so it is written again.
 */
export async function copyOnTarget(
  spec: TaskSpec,
  ctx: TaskContext,
  s: SnapCopyTask,
  task: string,
): Promise<{ target: Repo; snaps: ResticSnapshot[]; there?: ResticSnapshot }> {
  // restic keeps an absolute path as it is, a relative one at the snapshot's root: only the former is stable per PVC.
  if (!isAbsolute(s.path)) throw new Error(`${task} needs an absolute path, got ${JSON.stringify(s.path)}`);
  const target = ctx.repo(spec.target);
  // A different repository at the location is left untouched, job events included.
  await ctx.checkIdentity(spec.target);
  await ctx.clearLocks(spec.target);
  const snaps = await ctx.engine.snapshots(target, ctx.timeoutMs);
  const there = copyOf(snaps, s.volumeSnapshot);
  if (!there || !(await disowned(spec.target, ctx, s, there))) return { target, snaps, there };
  await ctx.engine.forget(target, [there.id], { retryLockMs: Math.min(FORGET_LOCK_WAIT_MS, ctx.timeoutMs), timeoutMs: ctx.timeoutMs });
  progress({ task, job: s.jobId, forgotIncomplete: there.id.slice(0, 8) });
  return { target, snaps: snaps.filter((x) => x.id !== there.id) };
}

export const snapcopy: Handler<"snapcopy"> = async (spec, ctx) => {
  const s = spec.snapshot;
  if (!s) throw new Error("snapcopy needs the VolumeSnapshot (spec.snapshot)");
  const started = performance.now();
  const { target, snaps, there } = await copyOnTarget(spec, ctx, s, "snapcopy");
  if (there)
    return {
      ok: true,
      already: true,
      snapshotId: there.id,
      ...(there.summary?.total_bytes_processed !== undefined ? { bytes: there.summary.total_bytes_processed } : {}),
      ...ctx.locksNote(),
    };

  const events = eventWriter(spec.target, ctx.env);
  const unreadable = await unreadableSource(s.path);
  if (unreadable)
    return recorded(events, s, {
      ...sourceFault(s, `${vsName(s)}: its restored volume at ${s.path} cannot be read: ${unreadable}; nothing was written`),
      ...ctx.locksNote(),
    });

  const parent = parentOf(snaps, s)?.id;
  progress({ task: "snapcopy", job: s.jobId, volumeSnapshot: s.volumeSnapshot.name, ...(parent ? { parent: parent.slice(0, 8) } : {}) });
  let result: SnapCopyResult;
  try {
    const b = await ctx.engine.backup(target, [s.path], {
      host: s.client,
      tags: snapCopyTags(s),
      time: s.volumeSnapshot.creationTime,
      parent,
      timeoutMs: ctx.timeoutMs,
    });
    result = b.partial
      ? await dropPartial(ctx, target, s, b)
      : {
          ok: true,
          snapshotId: b.snapshotId,
          bytes: b.bytes,
          added: b.added,
          ...(parent ? { parent } : {}),
          seconds: Math.round((performance.now() - started) / 100) / 10,
        };
  } catch (err) {
    await failedAttempt(events, s, err);
    throw err;
  }
  return recorded(events, s, { ...result, ...ctx.locksNote() }, result.snapshotId);
};
