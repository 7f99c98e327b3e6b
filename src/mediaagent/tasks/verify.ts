// verify: every job is read in full, also after one fails, so the result names all the bad ones; each verdict is a
// job event beside the repository (scan reports them, an aux copy can skip the failed jobs, a Recopy repairs them).
// With the copy's verification rules the pod chooses the jobs itself from the catalog and the job events
// (policy/verification.ts); without them it reads the snapshots it is given. Nothing is deleted, whatever it finds.
import { EngineError } from "../../engine/errors.ts";
import type { CatalogEntry } from "../../policy/catalog.ts";
import { jobRecords } from "../../policy/jobevents.ts";
import { jobsToVerify } from "../../policy/verification.ts";
import { type Handler, progress } from "../context.ts";
import { eventWriter, recordRun } from "../events.ts";
import { metadataStore } from "../metadata.ts";
import type { TaskSpec } from "../protocol.ts";

type Selected = { jobs: CatalogEntry[] };

/** The jobs to read: by the rules (the job events say which were verified when), or the named snapshots. */
async function select(spec: TaskSpec, catalog: CatalogEntry[], env: NodeJS.ProcessEnv): Promise<Selected> {
  const v = spec.verification;
  if (!v) {
    const jobs = (spec.snapshotIds ?? []).map((id) => {
      const job = catalog.find((e) => e.snapshotId === id || e.snapshotId.startsWith(id));
      if (!job) throw new EngineError("CorruptData", "verify", null, `snapshot ${id} is not in the repository`);
      return job;
    });
    return { jobs };
  }
  const store = metadataStore(spec.target.metadata, env, spec.target);
  // Without job events nothing would record the verdicts, and every run would read everything again.
  if (!store)
    throw new EngineError("Failed", "verify", null, "the library keeps no job metadata, so verification results cannot be recorded");
  const records = jobRecords(await store.list());
  const at = Date.parse(v.at);
  return { jobs: jobsToVerify(catalog, records, v, v.mode, Number.isNaN(at) ? Date.now() : at) };
}

export const verify: Handler<"verify"> = async (spec, ctx) => {
  const { engine, repo, timeoutMs } = ctx;
  await ctx.checkIdentity(spec.target);
  await ctx.clearLocks(spec.target);
  const catalog = await engine.catalog(repo(spec.target), timeoutMs);
  const events = eventWriter(spec.target, ctx.env);
  const { jobs } = await select(spec, catalog, ctx.env);
  const failed: string[] = [];
  const bytesTotal = jobs.reduce((n, e) => n + (e.bytes ?? 0), 0);
  let bytesDone = 0;
  for (const [i, job] of jobs.entries()) {
    progress({ jobsDone: i, jobsTotal: jobs.length, bytesDone, bytesTotal, job: job.jobId });
    try {
      await engine.verify(repo(spec.target), job.snapshotId, timeoutMs);
      events.add({ jobId: job.jobId, snapshotId: job.snapshotId, kind: "verify", result: "ok" });
    } catch (err) {
      // Damage is the job's verdict; anything else (the library gone, a lock) stops the run, nothing recorded.
      if (!(err instanceof EngineError) || err.kind !== "CorruptData") {
        await events.flush();
        throw err;
      }
      failed.push(job.jobId);
      events.add({ jobId: job.jobId, snapshotId: job.snapshotId, kind: "verify", result: "failed", message: err.message });
    }
    bytesDone += job.bytes ?? 0;
  }
  progress({ jobsDone: jobs.length, jobsTotal: jobs.length, bytesDone, bytesTotal });
  await events.flush();
  const counts = { jobs: jobs.length, verified: jobs.length - failed.length, failed: failed.length, bytes: bytesTotal };
  // The run's record beside the repository: verification's status is rebuilt from them after the cluster is lost.
  const v = spec.verification;
  const recorded =
    v?.run === undefined
      ? {}
      : await recordRun(spec.target, ctx.env, {
          kind: "verification",
          run: v.run,
          jobs: jobs.length,
          failed: failed.length,
          summary: {
            ...counts,
            trigger: v.trigger,
            startTime: v.startTime,
            failedJobs: failed.length ? failed.slice(0, 20) : undefined,
            result: failed.length ? "CompletedWithFailures" : "Completed",
          },
        });
  if (failed.length === 0) return { ok: true, ...counts, ...ctx.locksNote(), ...events.problem(), ...recorded };
  return {
    ok: false,
    kind: "CorruptData",
    retryable: false,
    message: `${failed.length} of ${jobs.length} jobs failed verification: ${failed.slice(0, 10).join(", ")}`,
    ...counts,
    failedJobs: failed.slice(0, 20),
    ...ctx.locksNote(),
    ...events.problem(),
    ...recorded,
  };
};
