// A PolicyCopy's status: its references (library, policy, source, password Secret), its repository (one repository,
// one copy; initialised by a MediaAgent pod once its library is Ready, a deduplicating secondary with its source's
// chunker parameters), and its catalog, read by a scan pod every scan interval, when a user asks, and when an aux
// copy or a data aging run changed it, and summarised in status (counts, bytes, oldest and newest job; never a list
// of jobs). Pods are named by round, and a finished pod is removed only once status shows its result, so a reconcile
// on a stale cache never starts a second pod for the same work. Pure.
import type { AuxCopyJobStatus, LibrarySpec, PolicyCopySpec, PolicyCopyStatus, Typed } from "../api/v1alpha1/index.ts";
import { formatTime, parseTime } from "./time.ts";
import type { OwnerReference } from "../kube/resources.ts";
import { Label } from "./labels.ts";
import { podName } from "./names.ts";
import type { AgentPodInput } from "../mediaagent/pod.ts";
import type { InitResult, RecordedRuns, ScanResult } from "../mediaagent/protocol.ts";
import { recopyInFuture } from "./copyrules.ts";
import type { Plan, PlannedEvent } from "./plan.ts";
import { probeBackoffMs } from "./probe.ts";
import { checkCopyPlacement, checkSecrets, type CopyFacts, type PolicyFacts, type Problem, type SecretKeys } from "./references.ts";
import {
  type RepositoryAccess,
  type RepositoryClaim,
  repositoryConflict,
  repositoryLocation,
  repositoryPathProblem,
} from "./repository.ts";
import { largeSourceHold } from "./selection.ts";

export type CopyObject = Typed<PolicyCopySpec, PolicyCopyStatus>;

/** A MediaAgent pod of the copy, as the plan sees it. */
export interface AgentPodFact<R> {
  name: string;
  /** The attempt its label names (init pods). */
  attempt?: number;
  /** Its result once it ended (agent/results.ts agentResult). */
  result?: { ok: boolean; message: string; at?: string; data: Partial<R> };
  /** Why it has not started, once Pending for a while (agent/pods.ts stuckPending). */
  stuck?: string;
  /** Pending so long that the attempt counts as failed (agent/pods.ts PENDING_GIVE_UP_MS). */
  givenUp?: boolean;
}

export interface CopyRepositoryFacts {
  copy: CopyObject;
  /** The copy's repository path inside its library. */
  repoPath: string;
  library?: { spec: LibrarySpec; ready: boolean };
  /** Access to the copy's repository, with its library. */
  access?: RepositoryAccess;
  /** With deduplication: the source copy, its repository initialised, and access to it (undefined: its library is missing). */
  dedupSource?: { ready: boolean; access?: RepositoryAccess };
  /** Every copy's claim on a repository, cluster-wide (one repository, one copy). */
  claims: RepositoryClaim[];
  initPods: AgentPodFact<InitResult>[];
  scanPods: AgentPodFact<ScanResult>[];
  /** When the copy's catalog last changed by Auxo's hand (an aux copy to or from it, a data aging run): see catalogChangedAt. */
  catalogChangedAt?: number;
  owner: OwnerReference;
  image: string;
  probes: boolean;
  allowPathsOutsideNamespace: boolean;
  retryBaseMs?: number;
  scanIntervalMs: number;
}

type Fields = Record<string, unknown>;

interface RepositoryStep {
  fields: Fields;
  problems: Problem[];
  requeueMs?: number;
  pods?: AgentPodInput[];
  deletePods?: string[];
  events?: PlannedEvent[];
}

type Rejected = { name: string; message: string }[];

/** A failed init attempt as status records it; the next one waits the library probe's back-off. */
function initFailure(f: CopyRepositoryFacts, attempt: number, reason: string, message: string, at: number) {
  const retryAt = at + probeBackoffMs(attempt, f.retryBaseMs);
  return {
    attempts: attempt,
    reason, // the engine's kind (WrongPassword, Unreachable, ...) is what a user reads first
    message: `repository init failed (attempt ${attempt}): ${message}; next attempt at ${formatTime(retryAt)}`,
    lastAttemptTime: formatTime(at),
  };
}

function agentPod(
  f: CopyRepositoryFacts,
  task: "init" | "scan",
  name: string,
  source?: RepositoryAccess,
  labels?: Record<string, string>,
): AgentPodInput {
  return {
    task,
    namespace: f.copy.metadata.namespace as string,
    name,
    owner: f.owner,
    image: f.image,
    target: f.access as RepositoryAccess,
    source,
    deadlineSeconds: 3600,
    placement: f.copy.spec.mediaAgent,
    labels,
  };
}

type InitFailure = { attempts: number; reason: string; message: string; lastAttemptTime: string };

/**
 * An ended init pod: a success records the repository's identity and location (writers check the ID before they
 * write, and a later move of the copy is noticed); a failure is recorded first, and the pod goes only once status
 * shows it (a stale cache must not retry early). Undefined: its attempt is in status, the pod can go.
 */
function initResultStep(
  f: CopyRepositoryFacts,
  fields: Fields,
  location: string,
  pod: AgentPodFact<InitResult>,
  attempts: number,
  now: number,
): RepositoryStep | undefined {
  const r = pod.result as NonNullable<AgentPodFact<InitResult>["result"]>;
  if (r.ok)
    return {
      fields: {
        ...fields,
        repositoryReady: true,
        initFailure: undefined,
        repositoryId: typeof r.data.id === "string" && r.data.id ? r.data.id : undefined,
        repositoryIdFound: undefined,
        repositoryLocation: location,
      },
      problems: [],
    };
  const attempt = pod.attempt ?? 1;
  if (attempt <= attempts) return undefined;
  const reason = typeof r.data.kind === "string" && r.data.kind !== "Failed" ? r.data.kind : "RepositoryInitFailed";
  const recorded = initFailure(f, attempt, reason, r.message, parseTime(r.at) ?? now);
  return { fields: { ...fields, initFailure: recorded }, problems: [{ reason, message: recorded.message }] };
}

/** The next init attempt, once the back-off passed (and a deduplicating copy's source repository exists). */
function initAttemptStep(f: CopyRepositoryFacts, fields: Fields, problems: Problem[], now: number, rejected: Rejected): RepositoryStep {
  const failure = f.copy.status?.initFailure as InitFailure | undefined;
  const attempts = failure?.attempts ?? 0;
  if (failure) {
    const retryAt = (parseTime(failure.lastAttemptTime) ?? 0) + probeBackoffMs(attempts, f.retryBaseMs);
    if (retryAt > now) return { fields, problems, requeueMs: retryAt - now };
  }
  // A deduplicating copy takes the same chunker parameters as its source: only then do copies deduplicate.
  if (f.dedupSource && (!f.dedupSource.ready || !f.dedupSource.access)) return { fields, problems };
  const attempt = attempts + 1;
  const name = podName(f.copy.metadata.name, "init", (f.copy.metadata.uid ?? "").slice(0, 8), String(attempt));
  const pod = agentPod(f, "init", name, f.dedupSource?.access, { [Label.attempt]: String(attempt) });
  const refused = rejected.find((r) => r.name === name);
  // A refused pod counts as a failed attempt, so the next one backs off like any other.
  if (refused)
    return {
      fields: { ...fields, initFailure: initFailure(f, attempt, "PodRejected", refused.message, now) },
      problems: [{ reason: "PodRejected", message: refused.message }],
      pods: [pod],
    };
  return { fields, problems, pods: [pod] };
}

/**
 * The repository is not initialised: the init pod's result, a pod that never starts, or the next attempt. A failed
 * init is retried with the library probe's back-off (30 s doubling to 30 min): a wrong password or a full disk gets
 * fixed by a person, and the next attempt finds out, without a storm of pods meanwhile.
 */
function initStep(f: CopyRepositoryFacts, fields: Fields, location: string, now: number, rejected: Rejected): RepositoryStep {
  const failure = f.copy.status?.initFailure as InitFailure | undefined;
  const attempts = failure?.attempts ?? 0;
  const problems: Problem[] = failure ? [{ reason: failure.reason, message: failure.message }] : [];
  const [pod] = f.initPods;
  if (pod?.result) {
    const recorded = initResultStep(f, fields, location, pod, attempts, now);
    if (recorded) return recorded;
    return { ...initAttemptStep(f, fields, problems, now, rejected), deletePods: [pod.name] };
  }
  if (!pod) return initAttemptStep(f, fields, problems, now, rejected);
  // Running, or never started: a pod that cannot start is reported, and after a while counts as a failed attempt.
  if (pod.stuck && pod.givenUp)
    return {
      fields: { ...fields, initFailure: initFailure(f, attempts + 1, "PodNotScheduled", pod.stuck, now) },
      problems: [{ reason: "PodNotScheduled", message: pod.stuck }],
      deletePods: [pod.name],
    };
  return { fields, problems: pod.stuck ? [...problems, { reason: "PodNotScheduled", message: pod.stuck }] : problems };
}

/** A finished scan's counts, identity check and job metadata, as status shows them. */
function scanResultStep(
  f: CopyRepositoryFacts,
  fields: Fields,
  location: string,
  pod: AgentPodFact<ScanResult>,
  now: number,
): RepositoryStep {
  const st = f.copy.status ?? {};
  const r = pod.result as NonNullable<AgentPodFact<ScanResult>["result"]>;
  const at = formatTime(parseTime(r.at) ?? now);
  if (st.lastScanTime === at) return { fields, problems: [], requeueMs: f.scanIntervalMs, deletePods: [pod.name] };
  const out: Fields = { ...fields, lastScanTime: at };
  if (!r.ok) return { fields: out, problems: [{ reason: "ScanFailed", message: r.message }] };
  // The repository's identity: recorded once (copies initialised before Auxo recorded it), then checked on every scan.
  const id = typeof r.data.repositoryId === "string" && r.data.repositoryId ? r.data.repositoryId : undefined;
  if (id && !st.repositoryId) Object.assign(out, { repositoryId: id, repositoryLocation: location });
  out.repositoryIdFound = id && st.repositoryId && id !== st.repositoryId ? id : undefined;
  if (out.repositoryIdFound)
    return {
      fields: out,
      problems: [{ reason: "RepositoryChanged", message: `the repository at ${location} has another ID than the one recorded` }],
      events: [
        {
          type: "Warning",
          reason: "RepositoryChanged",
          message: `the repository at ${location} has another ID than the one recorded; nothing is written to it`,
        },
      ],
    };
  const byStatus = r.data.byStatus ?? {};
  // A job that failed verification is Bad on the copy, not Available.
  const bad = r.data.verification?.failed ?? 0;
  out.jobs = {
    ...(st.jobs ?? {}),
    available: Math.max(0, (byStatus.completed ?? 0) + (byStatus.completedWithErrors ?? 0) - bad),
    bad: bad || undefined,
  };
  out.bytes = r.data.bytes;
  out.oldestJob = r.data.oldestJob;
  out.newestJob = r.data.newestJob;
  const v = r.data.verification;
  if (v)
    out.verification = {
      verified: v.verified,
      failed: v.failed,
      recopied: v.recopied || undefined,
      failedJobs: v.failedJobs.length ? v.failedJobs : undefined,
      lastVerificationTime: v.lastVerification,
    };
  if (typeof r.data.copyRetries === "number") out.copyRetries = r.data.copyRetries;
  out.recovered = recoveredFrom(r.data.recorded, st);
  out.metadataMessage = typeof r.data.metadataError === "string" ? r.data.metadataError : undefined;
  return { fields: out, problems: [] };
}

/**
 * When the next scan is due: an interval after the last one, or now when the user asked (the rescan annotation) or
 * the catalog changed since the last scan. Never scanned: now.
 */
function scanDueAt(f: CopyRepositoryFacts, requested: number | undefined): number {
  const last = parseTime(f.copy.status?.lastScanTime);
  if (last === undefined) return 0;
  if (requested !== undefined && requested > last) return 0;
  // Times are whole seconds: a change in the second of the last scan may have come after it, so that one scans again.
  if (f.catalogChangedAt !== undefined && f.catalogChangedAt >= last) return 0;
  return last + f.scanIntervalMs;
}

/** The repository is initialised: init pods go, and the catalog is read by scan rounds. */
function scanStep(
  f: CopyRepositoryFacts,
  fields: Fields,
  location: string,
  requested: number | undefined,
  now: number,
  rejected: Rejected,
): RepositoryStep {
  // The init result is in status.
  const initDone = f.initPods.map((p) => p.name);
  const [scan] = f.scanPods;
  const step = ((): RepositoryStep => {
    if (scan?.result) return scanResultStep(f, fields, location, scan, now);
    if (scan) {
      // Give up a round that never starts; the next scan is due an interval later.
      if (scan.stuck && scan.givenUp)
        return {
          fields: { ...fields, lastScanTime: formatTime(now) },
          problems: [{ reason: "PodNotScheduled", message: scan.stuck }],
          deletePods: [scan.name],
        };
      return { fields, problems: scan.stuck ? [{ reason: "PodNotScheduled", message: scan.stuck }] : [] };
    }
    const due = scanDueAt(f, requested);
    if (due > now) return { fields, problems: [], requeueMs: due - now };
    const last = parseTime(f.copy.status?.lastScanTime);
    const pod = agentPod(f, "scan", podName(f.copy.metadata.name, "scan", String(last ?? 0)));
    const refused = rejected.find((r) => r.name === pod.name);
    // A scan pod the API refuses waits an interval, like a failed scan (never a pod storm).
    if (refused)
      return {
        fields: { ...fields, lastScanTime: formatTime(now) },
        problems: [{ reason: "PodRejected", message: refused.message }],
        requeueMs: f.scanIntervalMs,
        pods: [pod],
      };
    return { fields, problems: [], pods: [pod] };
  })();
  return { ...step, deletePods: [...initDone, ...(step.deletePods ?? [])] };
}

/** The status fields this step owns, as status shows them now. */
function currentFields(st: PolicyCopyStatus): Fields {
  return {
    repository: st.repository,
    repositoryReady: st.repositoryReady ?? false,
    repositoryId: st.repositoryId,
    repositoryIdFound: st.repositoryIdFound,
    repositoryLocation: st.repositoryLocation,
    jobs: st.jobs,
    bytes: st.bytes,
    oldestJob: st.oldestJob,
    newestJob: st.newestJob,
    lastScanTime: st.lastScanTime,
    initFailure: st.initFailure,
    verification: st.verification,
    copyRetries: st.copyRetries,
    metadataMessage: st.metadataMessage,
    recovered: stillRecovering(st),
  };
}

type Recovered = NonNullable<PolicyCopyStatus["recovered"]>;

/**
 * The run records a scan found, for the parts of status that have no runs of their own (a cluster rebuilt from its
 * manifests): data aging and verification start from them (aging.ts, verification.ts). Undefined once both have runs.
 */
export function recoveredFrom(rec: RecordedRuns | undefined, st: PolicyCopyStatus): Recovered | undefined {
  const out: Recovered = {};
  const a = rec?.aging;
  if (a && st.dataAging?.runs === undefined) {
    const sum = (a.last?.summary ?? {}) as Record<string, unknown>;
    const num = (k: string) => (typeof sum[k] === "number" ? (sum[k] as number) : undefined);
    out.dataAging = {
      runs: a.lastRun,
      lastRunTime: a.last?.at,
      lastAgedJobs: num("aged"),
      lastAgedBytes: num("agedBytes"),
      lastReclaimedBytes: num("reclaimedBytes"),
      agedJobs: a.agedJobs,
      result: typeof sum.result === "string" ? sum.result : undefined,
      message: typeof sum.message === "string" ? sum.message : undefined,
    };
  }
  const v = rec?.verification;
  if (v && st.dataVerification?.runs === undefined) {
    const sum = (v.last?.summary ?? {}) as Record<string, unknown>;
    const last = v.last;
    out.dataVerification = {
      runs: v.lastRun,
      lastRunTime: last?.at,
      verifiedJobs: v.verifiedJobs,
      lastRun: last && {
        run: last.run,
        trigger: typeof sum.trigger === "string" ? sum.trigger : undefined,
        startTime: typeof sum.startTime === "string" ? sum.startTime : undefined,
        completionTime: last.at,
        jobs: last.jobs,
        verified: last.jobs - (last.failed ?? 0),
        failed: last.failed ?? 0,
        failedJobs: Array.isArray(sum.failedJobs) ? (sum.failedJobs as string[]).slice(0, 20) : undefined,
        bytes: typeof sum.bytes === "number" ? sum.bytes : undefined,
        result: (last.failed ?? 0) > 0 ? "CompletedWithFailures" : "Completed",
      },
      history: v.history.map((h) => ({
        run: h.run,
        ...(h.run === last?.run && typeof sum.trigger === "string" ? { trigger: sum.trigger } : {}),
        completionTime: h.at,
        jobs: h.jobs,
        verified: h.jobs - h.failed,
        failed: h.failed,
        result: h.failed > 0 ? "CompletedWithFailures" : "Completed",
      })),
    };
  }
  return out.dataAging || out.dataVerification ? out : undefined;
}

/** The recovered parts still waiting to be taken up (a part with runs of its own needs none). */
function stillRecovering(st: PolicyCopyStatus): Recovered | undefined {
  const r = st.recovered;
  if (!r) return undefined;
  const out: Recovered = {
    ...(r.dataAging && st.dataAging?.runs === undefined ? { dataAging: r.dataAging } : {}),
    ...(r.dataVerification && st.dataVerification?.runs === undefined ? { dataVerification: r.dataVerification } : {}),
  };
  return out.dataAging || out.dataVerification ? out : undefined;
}

/** The library or path changed: the repository there is another one until an init pod has opened it again. */
function movedStep(fields: Fields, from: string, location: string): RepositoryStep {
  return {
    fields: {
      ...fields,
      repositoryReady: false,
      repositoryId: undefined,
      repositoryIdFound: undefined,
      repositoryLocation: undefined,
      initFailure: undefined,
    },
    problems: [{ reason: "RepositoryMoved", message: `the repository location changed to ${location}; checking it again` }],
    requeueMs: 1000,
    events: [
      {
        type: "Normal",
        reason: "RepositoryMoved",
        message: `the repository moved from ${from} to ${location}; it is checked again before use`,
      },
    ],
  };
}

/**
 * Whether the copy may use the repository at its location: the path stays in its namespace (unless allowed), no other
 * copy has it, it did not move, and it is the repository recorded. A refusal or a move is the whole step.
 */
function repositoryIdentityStep(f: CopyRepositoryFacts, fields: Fields, location: string): RepositoryStep | undefined {
  const c = f.copy;
  const ns = c.metadata.namespace as string;
  const st = c.status ?? {};
  const pathProblem = repositoryPathProblem(ns, c.spec.repositoryPath, f.allowPathsOutsideNamespace);
  if (pathProblem)
    return { fields: { ...fields, repositoryReady: false }, problems: [{ reason: "RepositoryPathNotAllowed", message: pathProblem }] };
  // One repository, one copy: a copy whose repository another copy has (or gets first) is never written.
  const me = f.claims.find((x) => x.key === `${ns}/${c.metadata.name}`) ?? {
    key: `${ns}/${c.metadata.name}`,
    location,
    id: st.repositoryId,
    established: !!st.repositoryReady && st.repositoryLocation === location,
    createdAt: c.metadata.creationTimestamp ?? "",
  };
  const shared = repositoryConflict(me, f.claims);
  if (shared) return { fields: { ...fields, repositoryReady: false }, problems: [shared] };
  if (st.repositoryLocation && st.repositoryLocation !== location) return movedStep(fields, st.repositoryLocation, location);
  if (st.repositoryIdFound && st.repositoryIdFound !== st.repositoryId)
    return {
      fields,
      problems: [
        {
          reason: "RepositoryChanged",
          message: `the repository at ${location} has ID ${st.repositoryIdFound.slice(0, 12)}, not the recorded ${st.repositoryId?.slice(0, 12)}: another repository took its place, and Auxo writes nothing to it. Recreate the PolicyCopy to adopt the new one`,
        },
      ],
    };
  return undefined;
}

/** The copy's repository: identity and refusal, then init or scan rounds once its library answered a probe. */
export function repositoryStep(
  f: CopyRepositoryFacts,
  requested: number | undefined,
  now: number,
  rejected: Rejected = [],
): RepositoryStep {
  const fields = currentFields(f.copy.status ?? {});
  if (!f.library) return { fields, problems: [] };
  const location = repositoryLocation(f.library.spec, f.copy.metadata.namespace as string, f.repoPath);
  const refused = repositoryIdentityStep(f, fields, location);
  if (refused) return refused;
  // Only a probed, reachable library gets MediaAgent pods: nothing touches storage that has not answered a probe.
  if (!f.library.ready || !f.probes) return { fields, problems: [] };
  fields.repository = f.access?.repository;
  if (!f.copy.status?.repositoryReady) return initStep(f, fields, location, now, rejected);
  return scanStep(f, fields, location, requested, now, rejected);
}

/**
 * When Auxo last changed the copy's catalog: an aux copy run copied jobs to it or from it (AuxCopyJob history:
 * Copied entries whose copy is this one, or whose copy's source is; a part that ended having copied jobs), or a data
 * aging run aged jobs on it, or a verification run read some. A scan is
 * due once this is not before the last scan (scanDueAt), so status shows the change without waiting an interval.
 */
export function catalogChangedAt(
  copy: string,
  jobs: { status?: AuxCopyJobStatus }[],
  aging: PolicyCopyStatus["dataAging"],
  verification?: PolicyCopyStatus["dataVerification"],
): number | undefined {
  let latest: number | undefined;
  const later = (t: number | undefined) => {
    if (t !== undefined && (latest === undefined || t > latest)) latest = t;
  };
  for (const j of jobs) {
    const sourceOf = new Map((j.status?.copies ?? []).map((p) => [p.name, p.source]));
    for (const h of j.status?.history ?? [])
      if (h.result === "Copied" && (h.copy === copy || sourceOf.get(h.copy) === copy)) later(parseTime(h.time));
    // A part that ended having copied jobs: also those of a pod killed before it could name them.
    for (const p of j.status?.copies ?? [])
      if ((p.settledJobsCopied ?? 0) > 0 && (p.name === copy || p.source === copy)) later(parseTime(p.completionTime));
  }
  if ((aging?.lastAgedJobs ?? 0) > 0) later(parseTime(aging?.lastRunTime));
  // A verification run that read jobs changed their verdicts (status.verification).
  if ((verification?.lastRun?.jobs ?? 0) > 0) later(parseTime(verification?.lastRun?.completionTime));
  return latest;
}

export interface CopyFactsForPlan {
  copy: CopyObject;
  facts: CopyFacts;
  policy?: PolicyFacts;
  /** Every copy of the namespace. */
  copies: ReadonlyMap<string, CopyFacts>;
  libraryExists: boolean;
  secrets: SecretKeys;
  /** Its precedence among its policy's copies. */
  precedence?: number;
  /** The status of the copy it is filled from. */
  sourceStatus?: PolicyCopyStatus;
  /** The user's rescan request (the annotation's time). */
  rescanRequested?: number;
  repository: CopyRepositoryFacts;
}

/** Holds that keep an aux copy from running to this copy: a large source without a backups date, a Recopy dated ahead. */
function copyHolds(f: CopyFactsForPlan, now: number): Problem[] {
  const out: Problem[] = [];
  const hold = largeSourceHold(f.copy.spec.backups, f.sourceStatus, now, f.copy.status?.jobs?.available);
  if (hold) out.push({ reason: "BackupsRequired", message: `aux copy holds: ${hold}` });
  const future = (f.copy.spec.jobOverrides ?? []).filter((o) => recopyInFuture(o, now));
  if (future.length)
    out.push({
      reason: "RecopyInFuture",
      message: `jobOverrides: Recopy of ${future.map((o) => `"${o.jobId}"`).join(", ")} has an "at" in the future; it is ignored until "at" names the time of the request (now or earlier)`,
    });
  return out;
}

/** The copy's whole plan: references, then (when they resolve) its repository and holds. */
export function planCopy(f: CopyFactsForPlan, now: number, rejected: Rejected = []): Plan<Fields, AgentPodInput> {
  const problems: Problem[] = [];
  if (!f.libraryExists)
    problems.push({ reason: "LibraryNotFound", message: `library "${f.copy.spec.library}" does not exist in this namespace` });
  problems.push(...checkCopyPlacement(f.facts, f.policy, f.copies));
  const pw = f.copy.spec.encryption.passwordSecret;
  problems.push(...checkSecrets([{ field: "spec.encryption.passwordSecret", name: pw.name, key: pw.key ?? "password" }], f.secrets));
  const primary = f.policy?.primaryCopy === f.copy.metadata.name;
  let repo: RepositoryStep = { fields: {}, problems: [] };
  if (problems.length === 0 && f.policy) {
    repo = repositoryStep(f.repository, f.rescanRequested, now, rejected);
    problems.push(...repo.problems, ...copyHolds(f, now));
  }
  return {
    status: { primary, ...(f.precedence !== undefined ? { precedence: f.precedence } : {}), ...repo.fields },
    ready: {
      problems,
      ok: {
        reason: "ReferencesResolved",
        message: primary
          ? "primary copy; library, policy and password Secret resolve"
          : "library, policy, source copy and password Secret resolve",
      },
    },
    pods: repo.pods,
    deletePods: repo.deletePods,
    events: repo.events,
    requeueAfterMs: repo.requeueMs !== undefined ? Math.max(repo.requeueMs, 1000) : undefined,
  };
}
