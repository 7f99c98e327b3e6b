// What a copy's runs leave beside its repository (docs/job-metadata.md, "Run records"): one small JSON object per
// ended data aging or verification run under `<repository>.auxo/runs/<kind>/`, written by the run's pod and never
// rewritten. Object names carry the run number and its count (jobs aged, jobs read and failed), so that a catalog
// scan totals them from a listing; it reads only the newest objects' contents. With them and the job events the
// operator rebuilds a copy's whole status after losing the cluster (docs/disaster-recovery.md). Pure functions.

export const RUN_SCHEMA = "auxo.dev/run-record/v1";
export type RunKind = "aging" | "verification";

export interface RunRecord {
  schema: typeof RUN_SCHEMA;
  kind: RunKind;
  run: number;
  /** When the run ended (RFC 3339). */
  at: string;
  pod?: string;
  /** aging: jobs aged; verification: jobs read. */
  jobs: number;
  /** verification: jobs that failed. */
  failed?: number;
  /** The run's summary as status shows it (aging: agedBytes, reclaimedBytes, result; verification: lastRun). */
  summary: Record<string, unknown>;
}

export type RunName = Pick<RunRecord, "kind" | "run" | "at" | "jobs" | "failed"> & { key: string };

const stampOf = (at: string) => at.replace(/[-:]/g, "");

/** Where a run's record goes, relative to the metadata folder. */
export function runKey(r: Pick<RunRecord, "kind" | "run" | "at" | "jobs" | "failed">): string {
  return `runs/${r.kind}/${stampOf(r.at)}-${r.kind}-${r.run}-${r.jobs}${r.kind === "verification" ? `-${r.failed ?? 0}` : ""}.json`;
}

/** The run an object name stands for, or undefined for anything else found in the folder. */
export function parseRunKey(key: string): RunName | undefined {
  const m = /(?:^|\/)runs\/(aging|verification)\/(\d{8}T\d{6}(?:\.\d+)?Z)-(aging|verification)-(\d+)-(\d+)(?:-(\d+))?\.json$/.exec(key);
  if (!m || m[1] !== m[3]) return undefined;
  const stamp = m[2] as string;
  const at = `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13)}`;
  const kind = m[1] as RunKind;
  const name: RunName = { key: key.slice(key.indexOf("runs/")), kind, run: Number(m[4]), at, jobs: Number(m[5]) };
  if (kind === "verification") name.failed = Number(m[6] ?? 0);
  return name;
}

/** What a scan reports of one kind of run: how many, their total count, the newest ones (newest first). */
export interface RunsSummary {
  runs: number;
  /** The highest run number recorded (runs go on from it). */
  lastRun: number;
  jobs: number;
  newest: RunName[];
}

export function summarizeRuns(names: RunName[], kind: RunKind, keep = 10): RunsSummary | undefined {
  const mine = names.filter((n) => n.kind === kind).sort((a, b) => b.at.localeCompare(a.at) || b.run - a.run);
  if (mine.length === 0) return undefined;
  return {
    runs: mine.length,
    lastRun: Math.max(...mine.map((n) => n.run)),
    jobs: mine.reduce((s, n) => s + n.jobs, 0),
    newest: mine.slice(0, keep),
  };
}
