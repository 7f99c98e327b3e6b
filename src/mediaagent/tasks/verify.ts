// verify: every named job is read in full, also after one fails, so the result names all the bad ones; each
// verdict is a job event beside the repository (scan reports them, a copy can skip the failed jobs).
import { EngineError } from "../../engine/errors.ts";
import type { Handler } from "../context.ts";
import { eventWriter } from "../events.ts";

export const verify: Handler<"verify"> = async (spec, ctx) => {
  const { engine, repo, timeoutMs } = ctx;
  await ctx.checkIdentity(spec.target);
  await ctx.clearLocks(spec.target);
  const catalog = await engine.catalog(repo(spec.target), timeoutMs);
  const events = eventWriter(spec.target, ctx.env);
  const ids = spec.snapshotIds ?? [];
  const failed: string[] = [];
  for (const id of ids) {
    const job = catalog.find((e) => e.snapshotId === id || e.snapshotId.startsWith(id));
    if (!job) throw new EngineError("CorruptData", "verify", null, `snapshot ${id} is not in the repository`);
    try {
      await engine.verify(repo(spec.target), job.snapshotId, timeoutMs);
      events.add({ jobId: job.jobId, snapshotId: job.snapshotId, kind: "verify", result: "ok" });
    } catch (err) {
      if (!(err instanceof EngineError) || err.kind !== "CorruptData") throw err;
      failed.push(job.jobId);
      events.add({ jobId: job.jobId, snapshotId: job.snapshotId, kind: "verify", result: "failed", message: err.message });
    }
  }
  await events.flush();
  const verified = ids.length - failed.length;
  if (failed.length === 0) return { ok: true, verified, ...events.problem() };
  return {
    ok: false,
    kind: "CorruptData",
    retryable: false,
    message: `${failed.length} of ${ids.length} jobs failed verification: ${failed.slice(0, 10).join(", ")}`,
    verified,
    failedJobs: failed.slice(0, 20),
    ...events.problem(),
  };
};
