// scan: the copy's catalog as a summary for its status (never a list that grows with the jobs), with the
// verification state and copy retries from the job events beside the repository.
import type { CatalogEntry } from "../../policy/catalog.ts";
import { jobRecords, verificationSummary } from "../../policy/jobevents.ts";
import { type Handler, messageOf } from "../context.ts";
import { metadataStore } from "../metadata.ts";
import type { ScanResult } from "../protocol.ts";

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
    } catch (err) {
      result.metadataError = messageOf(err);
    }
  }
  return result;
};
