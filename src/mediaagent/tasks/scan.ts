// scan: the copy's catalog as a summary for its status (never a list that grows with the jobs), with the
// verification state and copy retries from the job events beside the repository.
import type { CatalogEntry } from "../../policy/catalog.ts";
import { jobRecords, verificationSummary } from "../../policy/jobevents.ts";
import { type Handler, messageOf } from "../context.ts";
import { type MetadataStore, metadataStore, type RunStore } from "../metadata.ts";
import type { RecordedRuns, ScanResult } from "../protocol.ts";
import { summarizeRuns } from "../../policy/runrecords.ts";

/** A job summary small enough for a termination message. */
export function summarize(catalog: CatalogEntry[]): Pick<ScanResult, "jobs" | "byType" | "byStatus" | "bytes" | "oldestJob" | "newestJob"> {
  const byType: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  let bytes = 0;
  for (const e of catalog) {
    byType[e.type] = (byType[e.type] ?? 0) + 1;
    byStatus[e.status] = (byStatus[e.status] ?? 0) + 1;
    bytes += e.bytes ?? 0;
  }
  return { jobs: catalog.length, byType, byStatus, bytes, oldestJob: catalog[0]?.startTime, newestJob: catalog.at(-1)?.startTime };
}

export const scan: Handler<"scan"> = async (spec, { engine, env, repo, timeoutMs }) => {
  const catalog = await engine.catalog(repo(spec.target), timeoutMs);
  const { id: repositoryId } = await engine.config(repo(spec.target), timeoutMs);
  const result: ScanResult = { ok: true, repositoryId, ...summarize(catalog) };
  const store = metadataStore(spec.target.metadata, env, spec.target);
  if (store) {
    try {
      const records = jobRecords(await store.list());
      result.verification = verificationSummary(
        records,
        catalog.map((e) => e.jobId),
      );
      result.copyRetries = [...records.values()].filter((r) => r.copyAttempts > 1).length;
      result.recorded = await recordedRuns(store);
    } catch (err) {
      result.metadataError = messageOf(err);
    }
  }
  return result;
};

/** The copy's run records: counts from their names, the newest of each kind read in full. */
async function recordedRuns(store: MetadataStore & RunStore): Promise<RecordedRuns | undefined> {
  const names = await store.listRuns();
  const out: RecordedRuns = {};
  const aging = summarizeRuns(names, "aging", 1);
  if (aging)
    out.aging = {
      runs: aging.runs,
      lastRun: aging.lastRun,
      agedJobs: aging.jobs,
      last: await store.readRun((aging.newest[0] as { key: string }).key),
    };
  const ver = summarizeRuns(names, "verification", 10);
  if (ver)
    out.verification = {
      runs: ver.runs,
      lastRun: ver.lastRun,
      verifiedJobs: ver.jobs,
      last: await store.readRun((ver.newest[0] as { key: string }).key),
      history: ver.newest.map((n) => ({ run: n.run, at: n.at, jobs: n.jobs, failed: n.failed ?? 0 })),
    };
  return out.aging || out.verification ? out : undefined;
}
