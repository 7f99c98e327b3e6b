// The catalog model: how a restic snapshot becomes a backup job of a copy. Auxo's job metadata rides in snapshot
// tags (docs/job-metadata.md); snapshots without them (restic CLI, K8up, scripts) are completed fulls of their host
// and paths, so any restic client can feed a primary copy. Pure functions.

export const JobTypes = ["full", "incremental", "differential", "synthfull", "log"] as const;
export const JobStatuses = ["completed", "completedWithErrors", "failed", "killed"] as const;
export type JobType = (typeof JobTypes)[number];
export type JobStatus = (typeof JobStatuses)[number];

export const TAG_PREFIX = "auxo.dev/";

/** What Auxo needs of a restic snapshot (the fields of `restic snapshots --json`). */
export interface ResticSnapshot {
  id: string;
  short_id?: string;
  time: string;
  hostname: string;
  paths: string[];
  tags?: string[];
  original?: string;
  summary?: { backup_start?: string; backup_end?: string; total_bytes_processed?: number; data_added?: number };
}

export interface CatalogEntry {
  jobId: string;
  snapshotId: string;
  /** The snapshot this one was copied from, following copies back to the first (restic keeps it in `original`). */
  originalId: string;
  type: JobType;
  status: JobStatus;
  client: string;
  subclient: string;
  startTime: string;
  endTime?: string;
  bytes?: number;
  /** True when the snapshot carried Auxo tags; false for foreign snapshots taken as fulls. */
  tagged: boolean;
}

export interface JobMetadata {
  jobId: string;
  type: JobType;
  status: JobStatus;
  client: string;
  subclient: string;
}

// restic splits --tag values on commas; other characters are fine.
const clean = (v: string) => v.replace(/,/g, "_");

/** The restic tags that record a job's metadata. */
export function tagsFor(job: JobMetadata): string[] {
  return [
    `${TAG_PREFIX}job=${clean(job.jobId)}`,
    `${TAG_PREFIX}type=${job.type}`,
    `${TAG_PREFIX}status=${job.status}`,
    `${TAG_PREFIX}client=${clean(job.client)}`,
    `${TAG_PREFIX}subclient=${clean(job.subclient)}`,
  ];
}

function tagValue(tags: string[], key: string): string | undefined {
  const prefix = `${TAG_PREFIX}${key}=`;
  return tags.find((t) => t.startsWith(prefix))?.slice(prefix.length);
}

function endOf(s: ResticSnapshot): string | undefined {
  const start = Date.parse(s.summary?.backup_start ?? "");
  const end = Date.parse(s.summary?.backup_end ?? "");
  const time = Date.parse(s.time);
  if (Number.isNaN(start) || Number.isNaN(end) || Number.isNaN(time)) return undefined;
  return new Date(time + Math.max(0, end - start)).toISOString();
}

/** A snapshot as a catalog entry; unknown tag values fall back to the rules for untagged snapshots. */
export function toCatalogEntry(s: ResticSnapshot): CatalogEntry {
  const tags = s.tags ?? [];
  const jobId = tagValue(tags, "job");
  const type = tagValue(tags, "type") as JobType | undefined;
  const status = tagValue(tags, "status") as JobStatus | undefined;
  return {
    jobId: jobId ?? s.original ?? s.id,
    snapshotId: s.id,
    originalId: s.original ?? s.id,
    type: type && JobTypes.includes(type) ? type : "full",
    status: status && JobStatuses.includes(status) ? status : "completed",
    client: tagValue(tags, "client") ?? s.hostname,
    subclient: tagValue(tags, "subclient") ?? [...s.paths].sort().join(":"),
    // The snapshot time is the job's time (a producer may set it with --time); the run's length comes from the summary.
    startTime: s.time,
    endTime: endOf(s),
    bytes: s.summary?.total_bytes_processed,
    tagged: jobId !== undefined,
  };
}

/** Copies keep the job id; a job is on a copy when a snapshot there has the same original. */
export function missingOn(source: CatalogEntry[], target: CatalogEntry[]): CatalogEntry[] {
  const have = new Set(target.map((e) => e.originalId));
  return source.filter((e) => !have.has(e.originalId));
}
