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

/**
 * Bad on the copy: its latest verification failed and it was not copied again since (a Recopy that repaired it is
 * verified again before it counts as verified).
 */
export const failedVerificationOf = (r: JobRecord | undefined): boolean =>
  r?.lastVerification?.result === "failed" && !(r.lastCopy?.result === "ok" && r.lastCopy.at > r.lastVerification.at);

/** Copied again after its latest verification (a Recopy): it waits to be verified again. */
export const copiedSinceVerification = (r: JobRecord | undefined): boolean =>
  !!r?.lastVerification && r.lastCopy?.result === "ok" && r.lastCopy.at > r.lastVerification.at;

export interface VerificationSummary {
  verified: number;
  failed: number;
  /** Jobs copied again after a failed verification, not verified since. */
  recopied?: number;
  /** Jobs whose latest verification failed, at most `cap` of them (status lists are bounded). */
  failedJobs: string[];
  lastVerification?: string;
}

/** The verification state of the jobs in `jobIds` (jobs aged off the copy no longer count). */
export function verificationSummary(records: Map<string, JobRecord>, jobIds: Iterable<string>, cap = 20): VerificationSummary {
  const s: VerificationSummary = { verified: 0, failed: 0, failedJobs: [] };
  for (const id of jobIds) {
    const r = records.get(id);
    const v = r?.lastVerification;
    if (!v) continue;
    if (v.result === "ok") s.verified++;
    else if (copiedSinceVerification(r)) s.recopied = (s.recopied ?? 0) + 1;
    else {
      s.failed++;
      if (s.failedJobs.length < cap) s.failedJobs.push(id);
    }
    if (!s.lastVerification || v.at > s.lastVerification) s.lastVerification = v.at;
  }
  return s;
}

/** What a copy's job events say for selection and listings: when each job was last copied, which are partial or Bad. */
export interface CopyHistory {
  /** When each job was last copied to the copy (its latest copy attempt succeeded). */
  lastCopied: Map<string, string>;
  /** Jobs whose latest copy attempt failed: Partially Copied. */
  partial: Set<string>;
  /** Jobs whose latest verification failed and that were not copied again since. */
  bad: Set<string>;
}

export function copyHistoryOf(records: Map<string, JobRecord>): CopyHistory {
  const h: CopyHistory = { lastCopied: new Map(), partial: new Set(), bad: new Set() };
  for (const [job, r] of records) {
    if (r.lastCopy?.result === "ok") h.lastCopied.set(job, r.lastCopy.at);
    else if (r.lastCopy) h.partial.add(job);
    if (failedVerificationOf(r)) h.bad.add(job);
  }
  return h;
}
