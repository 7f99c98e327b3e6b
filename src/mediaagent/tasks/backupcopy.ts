// backupcopy: one VolumeSnapshot's backup copy into a storage policy's primary copy (docs/snapvault.md, "Backup
// copy"). Like snapcopy, the operator restored a PVC from the VolumeSnapshot and mounted it read-only at a stable path
// per PVC; this pod backs that folder up into the primary copy's repository as a backup job of the PVC (client = its
// namespace, subclient = the PVC) with `--time` the snapshot's creation time. The job's type comes from the PVC's
// history on that repository (policy/backupjobtype.ts), read here, where the history is (the destination is the
// truth, also after a promotion); restic's parent follows the type. A snapshot there with the VolumeSnapshot's uid tag
// is the backup copy, and nothing is written again.
//
// Files restic cannot read make the job completedWithErrors (restic's exit 3 wrote the snapshot without them): the
// status tag is replaced, as a backup product reports such a job, and the job is kept. A mounted path that cannot be
// read at all is the source's fault (it costs the snapshot an attempt); every other failure is the destination's.
import { backupJobType } from "../../policy/backupjobtype.ts";
import { type ResticSnapshot, TAG_PREFIX, toCatalogEntry } from "../../policy/catalog.ts";
import { snapCopyTags } from "../../policy/snaptags.ts";
import { type Handler, progress } from "../context.ts";
import { eventWriter } from "../events.ts";
import type { BackupCopyResult, SnapCopyTask } from "../protocol.ts";
import { copyOnTarget, failedAttempt, FORGET_LOCK_WAIT_MS, recorded, sourceFault, unreadableSource, vsName } from "./snapcopy.ts";

const tagOf = (s: ResticSnapshot, key: string) => (s.tags ?? []).find((t) => t.startsWith(`${TAG_PREFIX}${key}=`))?.split("=")[1];

/** The PVC's jobs on the target: its client and subclient, whoever wrote them. */
const historyOf = (snaps: ResticSnapshot[], s: SnapCopyTask) =>
  snaps.map(toCatalogEntry).filter((e) => e.client === s.client && e.subclient === s.subclient);

export const backupcopy: Handler<"backupcopy"> = async (spec, ctx) => {
  const s = spec.snapshot;
  const rules = spec.backupCopy;
  if (!s || !rules) throw new Error("backupcopy needs the VolumeSnapshot (spec.snapshot) and the job type rules (spec.backupCopy)");
  const started = performance.now();
  const { target, snaps, there } = await copyOnTarget(spec, ctx, s, "backupcopy");
  if (there)
    return {
      ok: true,
      already: true,
      snapshotId: there.id,
      type: tagOf(there, "type") as BackupCopyResult["type"],
      status: tagOf(there, "status") as BackupCopyResult["status"],
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

  const decision = backupJobType(historyOf(snaps, s), Date.parse(s.volumeSnapshot.creationTime), rules);
  const parent = decision.parent?.snapshotId;
  progress({ task: "backupcopy", job: s.jobId, type: decision.type, ...(parent ? { parent: parent.slice(0, 8) } : {}) });
  let result: BackupCopyResult;
  try {
    const b = await ctx.engine.backup(target, [s.path], {
      host: s.client,
      tags: snapCopyTags(s, decision.type),
      time: s.volumeSnapshot.creationTime,
      parent,
      force: decision.type === "full",
      timeoutMs: ctx.timeoutMs,
    });
    let snapshotId = b.snapshotId;
    let status = s.status;
    if (b.partial) {
      // Kept as a job that completed with errors; should the tag not change, the snapshot is disowned (below).
      snapshotId = await ctx.engine.retag(
        target,
        b.snapshotId,
        `${TAG_PREFIX}status=${s.status}`,
        `${TAG_PREFIX}status=completedWithErrors`,
        {
          retryLockMs: Math.min(FORGET_LOCK_WAIT_MS, ctx.timeoutMs),
          timeoutMs: ctx.timeoutMs,
        },
      );
      status = "completedWithErrors";
    }
    result = {
      ok: true,
      snapshotId,
      bytes: b.bytes,
      added: b.added,
      type: decision.type,
      typeReason: decision.reason,
      status,
      ...(parent ? { parent, parentJob: decision.parent?.jobId } : {}),
      ...(b.partial
        ? {
            unreadable: b.unreadable?.slice(0, 10),
            message: `${b.unreadableCount ?? 0} file(s) under ${s.path} could not be read: the job completed with errors`,
          }
        : {}),
      seconds: Math.round((performance.now() - started) / 100) / 10,
    };
  } catch (err) {
    await failedAttempt(events, s, err);
    throw err;
  }
  return recorded(events, s, { ...result, ...ctx.locksNote() }, result.snapshotId);
};
