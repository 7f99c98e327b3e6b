// What Auxo adds to a job on a copy (copy attempts, verification results) lives beside the repository in the library,
// as one small JSON object per event under `<repository>.auxo/jobs/<job>/`. Events are only ever added, never
// rewritten, so two MediaAgents never race on a file, and the object name alone carries what a summary needs:
// a catalog scan lists names and reads no contents. docs/job-metadata.md describes the layout. Pure functions.

export const METADATA_SUFFIX = ".auxo";
export const EVENT_SCHEMA = "auxo.dev/job-event/v1";

export type JobEventKind = "copy" | "verify";
export type JobEventResult = "ok" | "failed";

export interface JobEvent {
  schema: typeof EVENT_SCHEMA;
  jobId: string;
  snapshotId?: string;
  kind: JobEventKind;
  result: JobEventResult;
  /** RFC 3339 time of the event. */
  at: string;
  /** The MediaAgent pod that did the work. */
  pod?: string;
  message?: string;
}

/** Where the events of a job go, relative to the metadata folder. Job ids are URL-encoded, so any id is one segment. */
export function eventKey(e: Pick<JobEvent, "jobId" | "kind" | "result" | "at">, nonce: string): string {
  const stamp = e.at.replace(/[-:]/g, "");
  return `jobs/${encodeURIComponent(e.jobId)}/${stamp}-${e.kind}-${e.result}-${nonce}.json`;
}

/** The event an object name stands for, or undefined for anything else found in the folder. */
export function parseEventKey(key: string): Pick<JobEvent, "jobId" | "kind" | "result" | "at"> | undefined {
  const m = /(?:^|\/)jobs\/([^/]+)\/(\d{8}T\d{6}(?:\.\d+)?Z)-(copy|verify)-(ok|failed)-[0-9a-z]+\.json$/.exec(key);
  if (!m) return undefined;
  const [, job, stamp, kind, result] = m as unknown as [string, string, string, JobEventKind, JobEventResult];
  const at = `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13)}`;
  let jobId: string;
  try {
    jobId = decodeURIComponent(job);
  } catch {
    return undefined;
  }
  return { jobId, kind, result, at };
}

export interface JobRecord {
  copyAttempts: number;
  lastCopy?: { at: string; result: JobEventResult };
  lastVerification?: { at: string; result: JobEventResult };
}

/** Per job: how often a copy was tried, and the latest copy and verification outcomes. */
export function jobRecords(events: Iterable<Pick<JobEvent, "jobId" | "kind" | "result" | "at">>): Map<string, JobRecord> {
  const out = new Map<string, JobRecord>();
  for (const e of events) {
    const r = out.get(e.jobId) ?? { copyAttempts: 0 };
    if (e.kind === "copy") {
      r.copyAttempts++;
      if (!r.lastCopy || e.at > r.lastCopy.at) r.lastCopy = { at: e.at, result: e.result };
    } else if (!r.lastVerification || e.at > r.lastVerification.at) r.lastVerification = { at: e.at, result: e.result };
    out.set(e.jobId, r);
  }
  return out;
}

export interface VerificationSummary {
  verified: number;
  failed: number;
  /** Jobs whose latest verification failed, at most `cap` of them (status lists are bounded). */
  failedJobs: string[];
  lastVerification?: string;
}

/** The verification state of the jobs in `jobIds` (jobs aged off the copy no longer count). */
export function verificationSummary(records: Map<string, JobRecord>, jobIds: Iterable<string>, cap = 20): VerificationSummary {
  const s: VerificationSummary = { verified: 0, failed: 0, failedJobs: [] };
  for (const id of jobIds) {
    const v = records.get(id)?.lastVerification;
    if (!v) continue;
    if (v.result === "ok") s.verified++;
    else {
      s.failed++;
      if (s.failedJobs.length < cap) s.failedJobs.push(id);
    }
    if (!s.lastVerification || v.at > s.lastVerification) s.lastVerification = v.at;
  }
  return s;
}
