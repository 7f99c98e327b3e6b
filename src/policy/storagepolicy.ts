// A StoragePolicy's status and what its controller does for it, decided from plain facts: the copies list (by
// precedence, with each copy's latest aux copy), the client Secret for restic clients (one stable handle on the
// primary in force), and the automatic aux copy jobs (spec.auxCopySchedule) with their history. Pure.
import type { AuxCopyJobStatus, LibrarySpec, StoragePolicySpec, StoragePolicyStatus } from "../api/v1alpha1/index.ts";
import { formatTime, parseTime } from "./time.ts";
import { parseDuration } from "./duration.ts";
import { boundedName } from "./names.ts";
import type { Plan, ReadyPlan } from "./plan.ts";
import { checkPolicy, checkTimeZone, type CopyFacts, effectiveSource, type PolicyFacts, precedences, type Problem } from "./references.ts";
import { clientEnvironment } from "./repository.ts";
import { autoCopy, overHistory } from "./schedule.ts";
import { blockingWindow, type Window } from "./windows.ts";

type CopySummary = NonNullable<StoragePolicyStatus["copies"]>[number];
type RunPart = NonNullable<AuxCopyJobStatus["copies"]>[number];

/** What the policy's status shows of one copy of the namespace. */
export interface CopyView {
  facts: CopyFacts;
  ready: boolean;
  jobsAvailable?: number;
  newestJob?: string;
  lastDataAgingTime?: string;
  repository?: string;
}

export interface PolicyCopies {
  list: CopySummary[];
  /** An active secondary to fill. */
  hasTargets: boolean;
  /** The newest job a scan found on a copy that fills an active secondary: continuous copying starts on it. */
  newestSourceJob?: number;
  lastDataAgingTime?: string;
  /** Where new backups go: a promotion moves it. */
  primaryRepository?: string;
}

/** One copy's line in the policy's status: the latest aux copy that reached it, when it ended, what it left. */
function summary(view: CopyView, pf: PolicyFacts, precedence: number, parts: RunPart[]): CopySummary {
  const c = view.facts;
  const mine = parts
    .filter((p) => p.name === c.name)
    .sort((a, b) => (b.completionTime ?? b.startTime ?? "").localeCompare(a.completionTime ?? a.startTime ?? ""));
  const latest = mine[0];
  return {
    name: c.name,
    copyType: c.copyType,
    precedence,
    active: c.active,
    primary: c.name === pf.primaryCopy,
    ready: view.ready,
    jobs: view.jobsAvailable,
    backlog: latest ? Math.max(0, (latest.jobsSelected ?? 0) - (latest.jobsCopied ?? 0)) + (latest.jobsRemaining ?? 0) : undefined,
    lagSeconds: mine.find((p) => p.lagSeconds !== undefined)?.lagSeconds,
    jobStates: mine.find((p) => p.jobStates !== undefined)?.jobStates,
    lastCopyTime: mine.find((p) => p.phase === "Completed")?.completionTime,
  };
}

/**
 * The policy's copies by precedence. `views` are every copy of the namespace (a source or the primary may be another
 * policy's copy), `parts` the per-copy progress of the policy's AuxCopyJobs.
 */
export function policyCopies(pf: PolicyFacts, views: ReadonlyMap<string, CopyView>, parts: RunPart[]): PolicyCopies {
  const mine = [...views.values()].filter((v) => v.facts.storagePolicy === pf.name);
  const prec = precedences(
    pf,
    mine.map((v) => v.facts),
  );
  const list = mine.map((v) => summary(v, pf, prec.get(v.facts.name) ?? 0, parts)).sort((a, b) => a.precedence - b.precedence);
  const sources = new Set(mine.filter((v) => v.facts.active && v.facts.name !== pf.primaryCopy).map((v) => effectiveSource(v.facts, pf)));
  const newest = [...sources]
    .map((n) => parseTime(n === undefined ? undefined : views.get(n)?.newestJob))
    .filter((t): t is number => t !== undefined);
  return {
    list,
    hasTargets: list.some((c) => !c.primary && c.active),
    newestSourceJob: newest.length ? Math.max(...newest) : undefined,
    lastDataAgingTime: mine
      .map((v) => v.lastDataAgingTime)
      .filter((x): x is string => !!x)
      .sort()
      .at(-1),
    primaryRepository: views.get(pf.primaryCopy)?.repository,
  };
}

/** Name of a policy's generated client Secret (shortened with a hash where the policy's name is very long). */
export const clientSecretName = (policy: string): string => boundedName(policy, "-auxo-client");

export interface ClientSecretFacts {
  policy: string;
  /** The Secret of the client Secret's name, if one exists: its data and whether this policy made it. */
  existing?: { ours: boolean; data: Record<string, string> };
  /** The primary copy in force, when it is a copy of this policy and its library exists. */
  primary?: { name: string; repositoryPath: string; password: { secret: string; key: string }; library: LibrarySpec };
  /** Secret data (base64, as the API returns it) of the Secrets the primary and its library name. */
  secretData: (secret: string, key: string) => string | undefined;
}

export type ClientSecretDecision =
  /** Leave the Secret as it is; `name` when it exists. */
  | { write?: undefined; name?: string; problem?: Problem }
  /** Write this content (the Secret's data, base64). */
  | { write: { data: Record<string, string>; primaryCopy: string }; name: string; problem?: undefined };

/**
 * The policy's client Secret: a restic client's environment for the primary copy in force (producers mount one
 * stable handle, and a promotion redirects new backups without touching them). Written only when its content
 * changes; kept as it was while the primary's library or a Secret is missing (backups go on where they went).
 */
export function clientSecretDecision(f: ClientSecretFacts): ClientSecretDecision {
  const name = clientSecretName(f.policy);
  // Never take over a Secret Auxo did not make for this policy: a user's Secret of the same name stays theirs.
  if (f.existing && !f.existing.ours)
    return {
      problem: {
        reason: "ClientSecretConflict",
        message: `Secret "${name}" exists and was not made by Auxo for this policy; Auxo leaves it alone and publishes no client Secret until it is renamed or removed`,
      },
    };
  const keep = f.existing ? { name } : {};
  if (!f.primary) return keep;
  const env = clientEnvironment(f.primary.library, f.primary.repositoryPath, f.primary.password, (s, k) => {
    const v = f.secretData(s, k);
    return v === undefined ? undefined : Buffer.from(v, "base64"); // bytes, as the MediaAgents get them
  });
  if ("missing" in env) return keep;
  const data = Object.fromEntries(Object.entries(env.data).map(([k, v]) => [k, v.toString("base64")]));
  if (f.existing && sameData(f.existing.data, data)) return keep;
  return { name, write: { data, primaryCopy: f.primary.name } };
}

function sameData(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

const TERMINAL = ["Completed", "CompletedWithErrors", "Failed", "Killed"];

/** An AuxCopyJob as the schedule sees it. */
export interface AutoJob {
  name: string;
  uid?: string;
  createdAt: string;
  phase?: string;
  /** Labelled as an automatic run (trigger=schedule). */
  scheduled: boolean;
  /** UIDs its ownerReferences name. */
  owners: string[];
}

/**
 * The policy's scheduled runs, each with its follow-up chain: a run created by the schedule (labelled so and owned by
 * the policy), then every job owned by a job of the chain (follow-ups beyond jobLimit name the run they follow),
 * transitively. Root first, then follow-ups in the order they were found.
 */
export function scheduledRuns(jobs: AutoJob[], policyUid: string | undefined): AutoJob[][] {
  const roots = jobs.filter((j) => j.scheduled && policyUid !== undefined && j.owners.includes(policyUid));
  return roots.map((root) => {
    const chain = [root];
    const seen = new Set([root.uid]);
    for (let i = 0; i < chain.length; i++) {
      const uid = chain[i]?.uid;
      if (uid === undefined) continue;
      for (const j of jobs)
        if (!seen.has(j.uid) && j.owners.includes(uid)) {
          seen.add(j.uid);
          chain.push(j);
        }
    }
    return chain;
  });
}

/** A chain's outcome: going while any job of it has not ended; Completed when every one completed; else the first other end. */
function chainPhase(chain: AutoJob[]): string | undefined {
  if (chain.some((j) => !TERMINAL.includes(j.phase ?? ""))) return undefined;
  return chain.find((j) => j.phase !== "Completed")?.phase ?? "Completed";
}

export interface AutomaticFacts {
  policy: string;
  policyUid?: string;
  schedule: NonNullable<StoragePolicySpec["auxCopySchedule"]>;
  /** The operator creates automatic jobs (--auto-aux-copy). */
  operatorEnabled: boolean;
  timeZone?: string;
  windows?: Window[];
  createdAt?: number;
  lastAuxCopyTime?: string;
  hasTargets: boolean;
  newestSourceJob?: number;
  /** No new automatic run while a promotion is pending: it waits for runs to end. */
  promotionPending: boolean;
  jobs: AutoJob[];
}

export interface AutomaticPlan {
  /** Finished automatic jobs beyond the history limits (with their follow-ups), follow-ups first. */
  deleteJobs: string[];
  /** The slot's time, when a job is due now: the job is named by it (policy/schedule.ts slotName). */
  createSlot?: number;
  /** The slot passed because of this operation window (doNotSubmitJob). */
  skippedBy?: string;
  lastAuxCopyTime?: string;
  recheckMs?: number;
}

/** The policy's automatic aux copy: which finished jobs go, and whether the slot due now gets its AuxCopyJob. */
export function automaticRuns(f: AutomaticFacts, now: number): AutomaticPlan {
  const runs = scheduledRuns(f.jobs, f.policyUid);
  const trimmed = new Set(
    overHistory(
      runs.map((chain) => ({ name: (chain[0] as AutoJob).name, createdAt: (chain[0] as AutoJob).createdAt, phase: chainPhase(chain) })),
      f.schedule.successfulJobsHistoryLimit ?? 3,
      f.schedule.failedJobsHistoryLimit ?? 1,
    ),
  );
  const deleteJobs = runs
    .filter((c) => trimmed.has((c[0] as AutoJob).name))
    .flatMap((c) => [...c.slice(1).reverse(), c[0] as AutoJob].map((j) => j.name));
  const d = autoCopy({
    // An unknown time zone: its windows cannot be read, so no automatic run (the policy's Ready says why).
    enabled: f.schedule.enabled !== false && f.operatorEnabled && checkTimeZone(f.timeZone).length === 0,
    everyMs: parseDuration("auxCopySchedule.every", f.schedule.every ?? "30m"),
    createdAt: f.createdAt ?? now,
    lastRun: parseTime(f.lastAuxCopyTime),
    now,
    running: f.promotionPending || runs.some((c) => chainPhase(c) === undefined),
    hasTargets: f.hasTargets,
    newestSourceJob: f.schedule.continuous === false ? undefined : f.newestSourceJob,
  });
  if (!d.create) return { deleteJobs, lastAuxCopyTime: f.lastAuxCopyTime, recheckMs: d.recheckMs };
  // A window with doNotSubmitJob skips the slot; other windows let the job queue until they end (docs/operations.md).
  const blocked = blockingWindow(f.windows, "AuxCopy", now, f.timeZone ?? "UTC");
  if (blocked?.window.doNotSubmitJob)
    return { deleteJobs, skippedBy: blocked.window.name, lastAuxCopyTime: formatTime(now), recheckMs: d.recheckMs };
  return { deleteJobs, createSlot: d.slot, lastAuxCopyTime: formatTime(now), recheckMs: d.recheckMs };
}

export interface PolicyStatusFacts {
  pf: PolicyFacts;
  /** Every copy of the namespace. */
  copies: ReadonlyMap<string, CopyFacts>;
  timeZone?: string;
  listed: PolicyCopies;
  promotion: { fields: Partial<StoragePolicyStatus>; condition?: NonNullable<ReadyPlan["others"]>[number]; requeueMs?: number };
  automatic: Pick<AutomaticPlan, "lastAuxCopyTime" | "recheckMs">;
  client: { name?: string; problem?: Problem };
  /** The image of the operator's MediaAgent pods (kubectl auxo starts its list and restore pods from it). */
  mediaAgentImage?: string;
}

/** The policy's status: copies, primary in force, client Secret, and Ready (its primary is a copy of its own). */
export function planPolicyStatus(f: PolicyStatusFacts): Plan<StoragePolicyStatus, never> {
  const { pf, listed } = f;
  const n = listed.list.length;
  const after = [f.automatic.recheckMs, f.promotion.requeueMs].filter((x): x is number => x !== undefined);
  return {
    ready: {
      problems: [...checkPolicy(pf, f.copies), ...checkTimeZone(f.timeZone), ...(f.client.problem ? [f.client.problem] : [])],
      ok: { reason: "CopiesResolved", message: `primary copy "${pf.primaryCopy}" and ${n - 1} secondary cop${n === 2 ? "y" : "ies"}` },
      others: f.promotion.condition ? [f.promotion.condition] : [],
    },
    status: {
      copies: listed.list.slice(0, 64),
      copyCount: n,
      lastAuxCopyTime: f.automatic.lastAuxCopyTime,
      ...f.promotion.fields,
      lastDataAgingTime: listed.lastDataAgingTime,
      primaryRepository: listed.primaryRepository,
      clientSecret: f.client.name,
      mediaAgentImage: f.mediaAgentImage,
    },
    requeueAfterMs: after.length ? Math.max(Math.min(...after), 1000) : undefined,
  };
}
