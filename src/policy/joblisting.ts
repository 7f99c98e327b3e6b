// The job listing of a policy (`kubectl auxo jobs`): every backup job found on any of its copies, with its state on
// each copy. The states are the aux copy's own (policy/selection.ts's planCopy on the copy's source and its catalog,
// with the copy's job events), refined for jobs the copy holds by what the copy knows of them: Bad when marked bad or
// when its latest verification there failed, AvailableWithMissingSnaps for a snapshot's job that lacks some of its
// files. Pure functions: the plugin gathers the catalogs through MediaAgent pods and decides here.
import type { CatalogEntry } from "./catalog.ts";
import type { CopyHistory } from "./jobevents.ts";
import { type CopyRules, type JobCopyState, planCopy } from "./selection.ts";

export type JobState = JobCopyState | "AvailableWithMissingSnaps" | "Unknown";

/** Every state a listing shows, in the order of a copy's life (for --state and docs). */
export const JobStates: readonly JobState[] = [
  "ToBeCopied",
  "PartiallyCopied",
  "Available",
  "AvailableWithMissingSnaps",
  "DoNotCopy",
  "Bad",
  "Unknown",
];

/** One copy as the listing reads it. */
export interface ListedCopy {
  name: string;
  primary: boolean;
  copyType: "Synchronous" | "Selective";
  precedence: number;
  /** The copy it is filled from (none for the primary). */
  source?: string;
  rules: CopyRules;
  /** Its jobs; undefined when its repository could not be read (`error` says why). */
  catalog?: CatalogEntry[];
  error?: string;
  /** From its job events; undefined when its library keeps none. */
  history?: CopyHistory;
  /** Its jobs that are copies of a VolumeSnapshot (snapshot tags). */
  snapJobs?: ReadonlySet<string>;
}

export interface JobRow {
  jobId: string;
  type: string;
  status: string;
  client: string;
  subclient: string;
  startTime: string;
  endTime?: string;
  bytes?: number;
  /** The job's state on each copy; a copy absent here does not hold the job and will not take it. */
  states: Record<string, JobState>;
}

const markedBad = (rules: CopyRules, jobId: string) => (rules.jobOverrides ?? []).some((o) => o.jobId === jobId && o.action === "MarkBad");

/** A held job's state on its copy: the aux copy's, refined by the copy's own knowledge of it. */
function heldState(c: ListedCopy, e: CatalogEntry, planned: JobCopyState | undefined): JobState {
  // A Recopy asked and not done yet: the aux copy takes it again.
  if (planned === "ToBeCopied" || planned === "PartiallyCopied") return planned;
  if (markedBad(c.rules, e.jobId) || c.history?.bad.has(e.jobId)) return "Bad";
  if (c.snapJobs?.has(e.jobId) && e.status === "completedWithErrors") return "AvailableWithMissingSnaps";
  return "Available";
}

/** The policy's jobs, newest first, with their state on each copy. */
export function jobListing(copies: ListedCopy[], now: number): JobRow[] {
  const rows = new Map<string, JobRow>();
  const byName = new Map(copies.map((c) => [c.name, c]));
  // Metadata from the copy of highest precedence that holds the job (the primary first).
  const ordered = [...copies].sort((a, b) => Number(b.primary) - Number(a.primary) || a.precedence - b.precedence);
  for (const c of ordered)
    for (const e of c.catalog ?? [])
      if (!rows.has(e.jobId))
        rows.set(e.jobId, {
          jobId: e.jobId,
          type: e.type,
          status: e.status,
          client: e.client,
          subclient: e.subclient,
          startTime: e.startTime,
          ...(e.endTime ? { endTime: e.endTime } : {}),
          ...(e.bytes !== undefined ? { bytes: e.bytes } : {}),
          states: {},
        });
  for (const c of copies) {
    const held = new Map((c.catalog ?? []).map((e) => [e.jobId, e]));
    const source = c.source !== undefined ? byName.get(c.source) : undefined;
    const states =
      c.primary || !c.catalog || !source?.catalog
        ? undefined
        : planCopy(source.catalog, c.catalog, c.rules, {
            now,
            lastCopied: c.history?.lastCopied,
            partial: c.history?.partial,
          }).states;
    for (const row of rows.values()) {
      const e = held.get(row.jobId);
      if (!c.catalog) row.states[c.name] = "Unknown";
      else if (e) row.states[c.name] = heldState(c, e, states?.get(row.jobId));
      else if (!c.primary && !states)
        row.states[c.name] = "Unknown"; // its source could not be read
      else {
        const s = states?.get(row.jobId);
        if (s) row.states[c.name] = s;
      }
    }
  }
  return [...rows.values()].sort((a, b) => b.startTime.localeCompare(a.startTime) || b.jobId.localeCompare(a.jobId));
}

/** Counts of each state per copy (the listing's summary line, and a check against the copies' status). */
export function stateCounts(rows: JobRow[], copy: string): Partial<Record<JobState, number>> {
  const out: Partial<Record<JobState, number>> = {};
  for (const r of rows) {
    const s = r.states[copy];
    if (s) out[s] = (out[s] ?? 0) + 1;
  }
  return out;
}

/** Restore order: the copy given, else synchronous copies by precedence, then selective ones by precedence. */
export function restoreOrder<C extends Pick<ListedCopy, "name" | "copyType" | "precedence">>(copies: C[], only?: string): C[] {
  if (only !== undefined) return copies.filter((c) => c.name === only);
  const rank = (c: C) => (c.copyType === "Selective" ? 1 : 0);
  return [...copies].sort((a, b) => rank(a) - rank(b) || a.precedence - b.precedence);
}
