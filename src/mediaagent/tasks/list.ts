// list: a copy's jobs and what its library keeps beside them, printed on the pod's log for `kubectl auxo` (one JSON
// line per job, per job's event record, per aging run record). Read-only: restic snapshots --no-lock and listings
// of the metadata folder. The result counts the lines so the reader knows it saw them all (a log may be cut).
import { toCatalogEntry } from "../../policy/catalog.ts";
import { copyHistoryOf, jobRecords } from "../../policy/jobevents.ts";
import { summarizeRuns } from "../../policy/runrecords.ts";
import { snapCopyOf } from "../../policy/snaptags.ts";
import { type Handler, messageOf } from "../context.ts";
import { metadataStore } from "../metadata.ts";
import type { ListedJob, ListedJobEvents, ListResult } from "../protocol.ts";

const line = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);

export const list: Handler<"list"> = async (spec, { engine, env, repo, timeoutMs }) => {
  const jobs = spec.listing?.jobs !== false;
  const snapshots = jobs ? await engine.snapshots(repo(spec.target), timeoutMs) : [];
  const { id: repositoryId } = await engine.config(repo(spec.target), timeoutMs);
  const result: ListResult = { ok: true, repositoryId, jobs: 0, events: 0, runs: 0 };
  for (const s of snapshots) {
    const { tagged: _tagged, originalId, ...e } = toCatalogEntry(s);
    const job: ListedJob = { msg: "job", ...e, ...(originalId !== e.snapshotId ? { originalId } : {}) };
    if (snapCopyOf(s.tags)) job.snap = true;
    line(job);
    result.jobs++;
  }
  const store = metadataStore(spec.target.metadata, env, spec.target);
  if (!store) return result;
  try {
    const h = jobs ? copyHistoryOf(jobRecords(await store.list())) : copyHistoryOf(new Map());
    for (const jobId of new Set([...h.lastCopied.keys(), ...h.partial, ...h.bad])) {
      const ev: ListedJobEvents = { msg: "jobevents", jobId };
      const at = h.lastCopied.get(jobId);
      if (at) ev.lastCopied = at;
      if (h.partial.has(jobId)) ev.partial = true;
      if (h.bad.has(jobId)) ev.bad = true;
      line(ev);
      result.events++;
    }
    const aging = summarizeRuns(await store.listRuns(), "aging", spec.listing?.runs ?? 20);
    for (const n of aging?.newest ?? []) {
      line({ msg: "run", ...(await store.readRun(n.key)) });
      result.runs++;
    }
  } catch (err) {
    result.metadataError = messageOf(err);
  }
  return result;
};
