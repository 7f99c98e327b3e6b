// A copy's repository: initialised by a MediaAgent pod once its library is Ready (a deduplicating secondary with its
// source's chunker parameters, so only after the source's repository exists), then its catalog read by a scan pod
// every scan interval and summarised in status (counts, bytes, oldest and newest job; never a list of jobs).
// Pods are named by round, and a finished pod is removed only once status shows its result, so a reconcile on a
// stale cache never starts a second pod for the same work.
import { isNotFound } from "../kube/errors.ts";
import { formatTime, parseTime, Pods } from "../kube/resources.ts";
import { buildAgentPod, podName } from "../mediaagent/pod.ts";
import { probeBackoffMs } from "../policy/probe.ts";
import {
  defaultRepositoryPath,
  type RepositoryClaim,
  repositoryAccess,
  repositoryConflict,
  repositoryLocation,
  repositoryPathProblem,
} from "../policy/repository.ts";
import { createAgentPod, PENDING_GIVE_UP_MS, stuckPending } from "./agent/pods.ts";
import type { Problem } from "../policy/references.ts";
import type { Manager } from "../runtime/manager.ts";
import { controllerRef } from "../runtime/objects.ts";
import { agentResult, type PodObj } from "./agent/results.ts";
import { type ControllerSettings } from "./settings.ts";
import { type CopyObj, type LibraryObj, PolicyCopies } from "./resources.ts";
import type { Informer } from "../kube/informer.ts";

/** Set by the aux copy controller after it copied jobs to a copy: a scan is due now, not at the next interval. */
export const RESCAN_ANNOTATION = "auxo.dev/rescan-requested";

/** Reasons of a copy's Ready condition that keep every MediaAgent that would write or forget off its repository. */
/** What each copy claims (cluster-wide): where its repository is now, and what its status recorded there. */
export function repositoryClaims(copies: CopyObj[], libraries: Informer<LibraryObj>): RepositoryClaim[] {
  const out: RepositoryClaim[] = [];
  for (const c of copies) {
    const ns = c.metadata.namespace as string;
    const lib = libraries.get(ns, c.spec.library);
    if (!lib) continue;
    let location: string;
    try {
      location = repositoryLocation(
        lib.spec,
        ns,
        c.spec.repositoryPath ?? defaultRepositoryPath(ns, c.spec.storagePolicy, c.metadata.name),
      );
    } catch {
      continue;
    }
    out.push({
      key: `${ns}/${c.metadata.name}`,
      location,
      id: c.status?.repositoryId,
      established: !!c.status?.repositoryReady && c.status.repositoryLocation === location,
      createdAt: c.metadata.creationTimestamp ?? "",
    });
  }
  return out;
}

export interface RepositoryStep {
  fields: Record<string, unknown>;
  problems: Problem[];
  requeueMs?: number;
}

const ownedBy = (pods: PodObj[], copy: CopyObj, task: string) =>
  pods.filter(
    (p) =>
      p.metadata.labels?.["auxo.dev/task"] === task &&
      p.metadata.ownerReferences?.some((r) => r.kind === "PolicyCopy" && r.name === copy.metadata.name && r.controller),
  );

export async function repositoryStep(
  mgr: Manager,
  settings: ControllerSettings,
  copy: CopyObj,
  ctx: {
    policy: string;
    source?: CopyObj;
    libraries: Informer<LibraryObj>;
    pods: Informer<PodObj>;
    /** Every copy's claim on a repository, cluster-wide (one repository, one copy). */
    claims: RepositoryClaim[];
  },
): Promise<RepositoryStep> {
  const now = settings.now ?? Date.now;
  const ns = copy.metadata.namespace as string;
  const st = copy.status ?? {};
  const fields: Record<string, unknown> = {
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
  };
  const initFailed = (attempt: number, reason: string, message: string) => {
    const retryAt = now() + probeBackoffMs(attempt, settings.retryBaseMs);
    return {
      attempts: attempt,
      reason,
      message: `repository init failed (attempt ${attempt}): ${message}; next attempt at ${formatTime(retryAt)}`,
      lastAttemptTime: formatTime(now()),
    };
  };
  const lib = ctx.libraries.get(ns, copy.spec.library);
  if (!lib) return { fields, problems: [] };
  const repoPath = copy.spec.repositoryPath ?? defaultRepositoryPath(ns, ctx.policy, copy.metadata.name);
  const pathProblem = repositoryPathProblem(ns, copy.spec.repositoryPath, settings.allowRepositoryPathsOutsideNamespace === true);
  if (pathProblem)
    return { fields: { ...fields, repositoryReady: false }, problems: [{ reason: "RepositoryPathNotAllowed", message: pathProblem }] };
  // One repository, one copy: a copy whose repository another copy has (or gets first) is never written.
  const location = repositoryLocation(lib.spec, ns, repoPath);
  const me = ctx.claims.find((c) => c.key === `${ns}/${copy.metadata.name}`) ?? {
    key: `${ns}/${copy.metadata.name}`,
    location,
    id: st.repositoryId,
    established: !!st.repositoryReady && st.repositoryLocation === location,
    createdAt: copy.metadata.creationTimestamp ?? "",
  };
  const shared = repositoryConflict(me, ctx.claims);
  if (shared) return { fields: { ...fields, repositoryReady: false }, problems: [shared] };
  if (st.repositoryLocation && st.repositoryLocation !== location) {
    // The library or path changed: the repository there is another one until an init pod has opened it again.
    Object.assign(fields, {
      repositoryReady: false,
      repositoryId: undefined,
      repositoryIdFound: undefined,
      repositoryLocation: undefined,
      initFailure: undefined,
    });
    mgr.events.event(
      copy,
      "Normal",
      "RepositoryMoved",
      `the repository moved from ${st.repositoryLocation} to ${location}; it is checked again before use`,
    );
    return {
      fields,
      problems: [{ reason: "RepositoryMoved", message: `the repository location changed to ${location}; checking it again` }],
      requeueMs: 1000,
    };
  }
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
  // Only a probed, reachable library gets MediaAgent pods: nothing touches storage that has not answered a probe.
  if (lib.status?.phase !== "Ready" || settings.probeLibraries === false) return { fields, problems: [] };
  const pw = copy.spec.encryption.passwordSecret;
  const access = repositoryAccess(lib.spec, repoPath, {
    secret: pw.name,
    key: pw.key ?? "password",
  });
  fields.repository = access.repository;
  const pods = ctx.pods.list(ns);
  const finish = async (pod: PodObj) =>
    await mgr.client.delete(Pods, ns, pod.metadata.name).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
  const start = async (
    task: "init" | "scan",
    name: string,
    source?: ReturnType<typeof repositoryAccess>,
    labels?: Record<string, string>,
  ): Promise<string | undefined> => {
    const pod = buildAgentPod({
      task,
      namespace: ns,
      name,
      owner: controllerRef(copy, PolicyCopies),
      image: settings.agentImage,
      target: access,
      source,
      deadlineSeconds: 3600,
      placement: copy.spec.mediaAgent as never,
      labels,
    });
    const out = await createAgentPod(mgr, pod);
    return out.created ? undefined : out.message;
  };

  if (!st.repositoryReady) {
    // A failed init is retried with the library probe's back-off (30 s doubling to 30 min): a wrong password or a
    // full disk gets fixed by a person, and the next attempt finds out, without a storm of pods meanwhile.
    const failure = st.initFailure as { attempts: number; reason: string; message: string; lastAttemptTime: string } | undefined;
    const attempts = failure?.attempts ?? 0;
    const problems: Problem[] = failure ? [{ reason: failure.reason, message: failure.message }] : [];
    const [pod] = ownedBy(pods, copy, "init");
    const r = pod && agentResult(pod);
    if (pod && r) {
      const attempt = Number(pod.metadata.labels?.["auxo.dev/attempt"] ?? "1");
      if (r.ok) {
        fields.repositoryReady = true; // the pod is removed once status shows it
        fields.initFailure = undefined;
        // Its identity: writers check the ID before they write, and a later move of the copy is noticed.
        fields.repositoryId = typeof r.data.id === "string" && r.data.id ? r.data.id : undefined;
        fields.repositoryIdFound = undefined;
        fields.repositoryLocation = location;
        return { fields, problems: [] };
      }
      if (attempt > attempts) {
        // Record the attempt first; the pod goes only once status shows it (a stale cache must not retry early).
        const reason = typeof r.data.kind === "string" && r.data.kind !== "Failed" ? r.data.kind : "RepositoryInitFailed";
        const retryAt = (parseTime(r.at) ?? now()) + probeBackoffMs(attempt, settings.retryBaseMs);
        fields.initFailure = {
          attempts: attempt,
          reason, // the engine's kind (WrongPassword, Unreachable, ...) is what a user reads first
          message: `repository init failed (attempt ${attempt}): ${r.message}; next attempt at ${formatTime(retryAt)}`,
          lastAttemptTime: formatTime(parseTime(r.at) ?? now()),
        };
        return { fields, problems: [{ reason, message: (fields.initFailure as { message: string }).message }] };
      }
      await finish(pod);
    } else if (pod) {
      // Running, or never started: a pod that cannot start is reported, and after a while counts as a failed attempt.
      const stuck = stuckPending(pod, now());
      if (stuck && now() - (parseTime(pod.metadata.creationTimestamp) ?? now()) > PENDING_GIVE_UP_MS) {
        await finish(pod);
        return {
          fields: { ...fields, initFailure: initFailed(attempts + 1, "PodNotScheduled", stuck) },
          problems: [{ reason: "PodNotScheduled", message: stuck }],
        };
      }
      return { fields, problems: stuck ? [...problems, { reason: "PodNotScheduled", message: stuck }] : problems };
    }
    if (failure) {
      const retryAt = (parseTime(failure.lastAttemptTime) ?? 0) + probeBackoffMs(attempts, settings.retryBaseMs);
      if (retryAt > now()) return { fields, problems, requeueMs: retryAt - now() };
    }
    let chunkerFrom: ReturnType<typeof repositoryAccess> | undefined;
    if (copy.spec.deduplication?.enabled && ctx.source) {
      // The same chunker parameters as the source: only then do copies deduplicate.
      const srcLib = ctx.libraries.get(ns, ctx.source.spec.library);
      if (!ctx.source.status?.repositoryReady || !srcLib) return { fields, problems };
      const spw = ctx.source.spec.encryption.passwordSecret;
      chunkerFrom = repositoryAccess(
        srcLib.spec,
        ctx.source.spec.repositoryPath ?? defaultRepositoryPath(ns, ctx.policy, ctx.source.metadata.name),
        { secret: spw.name, key: spw.key ?? "password" },
        "source",
      );
    }
    const attempt = attempts + 1;
    const refused = await start(
      "init",
      podName(copy.metadata.name, "init", (copy.metadata.uid ?? "").slice(0, 8), String(attempt)),
      chunkerFrom,
      {
        "auxo.dev/attempt": String(attempt),
      },
    );
    if (refused) {
      // Counted as a failed attempt, so the next one backs off like any other.
      fields.initFailure = initFailed(attempt, "PodRejected", refused);
      return { fields, problems: [{ reason: "PodRejected", message: refused }] };
    }
    return { fields, problems };
  }
  for (const p of ownedBy(pods, copy, "init")) await finish(p); // the init result is in status

  const interval = (settings.scanIntervalSeconds ?? 600) * 1000;
  const last = parseTime(st.lastScanTime);
  const [scan] = ownedBy(pods, copy, "scan");
  const r = scan && agentResult(scan);
  if (scan && r) {
    const at = formatTime(parseTime(r.at) ?? now());
    if (st.lastScanTime === at) {
      await finish(scan);
      return { fields, problems: [], requeueMs: interval };
    }
    fields.lastScanTime = at;
    if (!r.ok) return { fields, problems: [{ reason: "ScanFailed", message: r.message }] };
    // The repository's identity: recorded once (copies initialised before Auxo recorded it), then checked on every scan.
    const id = typeof r.data.repositoryId === "string" && r.data.repositoryId ? r.data.repositoryId : undefined;
    if (id && !st.repositoryId) Object.assign(fields, { repositoryId: id, repositoryLocation: location });
    fields.repositoryIdFound = id && st.repositoryId && id !== st.repositoryId ? id : undefined;
    if (fields.repositoryIdFound) {
      mgr.events.event(
        copy,
        "Warning",
        "RepositoryChanged",
        `the repository at ${location} has another ID than the one recorded; nothing is written to it`,
      );
      return {
        fields,
        problems: [{ reason: "RepositoryChanged", message: `the repository at ${location} has another ID than the one recorded` }],
      };
    }
    const byStatus = (r.data.byStatus ?? {}) as Record<string, number>;
    fields.jobs = { ...((st.jobs as object) ?? {}), available: (byStatus.completed ?? 0) + (byStatus.completedWithErrors ?? 0) };
    fields.bytes = r.data.bytes;
    fields.oldestJob = r.data.oldestJob;
    fields.newestJob = r.data.newestJob;
    const v = r.data.verification as { verified: number; failed: number; failedJobs: string[]; lastVerification?: string } | undefined;
    if (v)
      fields.verification = {
        verified: v.verified,
        failed: v.failed,
        failedJobs: v.failedJobs.length ? v.failedJobs : undefined,
        lastVerificationTime: v.lastVerification,
      };
    if (typeof r.data.copyRetries === "number") fields.copyRetries = r.data.copyRetries;
    fields.metadataMessage = typeof r.data.metadataError === "string" ? r.data.metadataError : undefined;
    return { fields, problems: [] };
  }
  if (scan) {
    const stuck = stuckPending(scan, now());
    if (stuck && now() - (parseTime(scan.metadata.creationTimestamp) ?? now()) > PENDING_GIVE_UP_MS) {
      // Give up this round; the next scan is due an interval later.
      await finish(scan);
      return { fields: { ...fields, lastScanTime: formatTime(now()) }, problems: [{ reason: "PodNotScheduled", message: stuck }] };
    }
    return { fields, problems: stuck ? [{ reason: "PodNotScheduled", message: stuck }] : [] };
  }
  const requested = parseTime(copy.metadata.annotations?.[RESCAN_ANNOTATION]);
  const due = requested !== undefined && (last === undefined || requested > last) ? 0 : (last ?? 0) + (last === undefined ? 0 : interval);
  if (due > now()) return { fields, problems: [], requeueMs: due - now() };
  const refused = await start("scan", podName(copy.metadata.name, "scan", String(last ?? 0)));
  // A scan pod the API refuses waits an interval, like a failed scan (never a pod storm).
  if (refused)
    return {
      fields: { ...fields, lastScanTime: formatTime(now()) },
      problems: [{ reason: "PodRejected", message: refused }],
      requeueMs: interval,
    };
  return { fields, problems: [] };
}
