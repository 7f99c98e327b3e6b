// A copy's repository: initialised by a MediaAgent pod once its library is Ready (a deduplicating secondary with its
// source's chunker parameters, so only after the source's repository exists), then its catalog read by a scan pod
// every scan interval and summarised in status (counts, bytes, oldest and newest job; never a list of jobs).
// Pods are named by round, and a finished pod is removed only once status shows its result, so a reconcile on a
// stale cache never starts a second pod for the same work.
import { isConflict, isNotFound } from "../kube/errors.ts";
import { formatTime, parseTime, Pods } from "../kube/resources.ts";
import { buildAgentPod, podName } from "../mediaagent/pod.ts";
import { probeBackoffMs } from "../policy/probe.ts";
import { defaultRepositoryPath, repositoryAccess } from "../policy/repository.ts";
import type { Problem } from "../policy/references.ts";
import type { Manager } from "../runtime/manager.ts";
import { controllerRef } from "../runtime/objects.ts";
import { agentResult, type ControllerSettings, type PodObj } from "./library.ts";
import { type CopyObj, type LibraryObj, PolicyCopies } from "./resources.ts";
import type { Informer } from "../kube/informer.ts";

/** Set by the aux copy controller after it copied jobs to a copy: a scan is due now, not at the next interval. */
export const RESCAN_ANNOTATION = "auxo.dev/rescan-requested";

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
  ctx: { policy: string; source?: CopyObj; libraries: Informer<LibraryObj>; pods: Informer<PodObj> },
): Promise<RepositoryStep> {
  const now = settings.now ?? Date.now;
  const ns = copy.metadata.namespace as string;
  const st = copy.status ?? {};
  const fields: Record<string, unknown> = {
    repository: st.repository,
    repositoryReady: st.repositoryReady ?? false,
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
  const lib = ctx.libraries.get(ns, copy.spec.library);
  // Only a probed, reachable library gets MediaAgent pods: nothing touches storage that has not answered a probe.
  if (!lib || lib.status?.phase !== "Ready" || settings.probeLibraries === false) return { fields, problems: [] };
  const pw = copy.spec.encryption.passwordSecret;
  const access = repositoryAccess(lib.spec, copy.spec.repositoryPath ?? defaultRepositoryPath(ns, ctx.policy, copy.metadata.name), {
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
  ) => {
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
    await mgr.client.create(Pods, pod as never).catch((err) => {
      if (!isConflict(err)) throw err;
    });
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
    } else if (pod) return { fields, problems }; // running
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
    await start("init", podName(copy.metadata.name, "init", (copy.metadata.uid ?? "").slice(0, 8), String(attempt)), chunkerFrom, {
      "auxo.dev/attempt": String(attempt),
    });
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
  if (scan) return { fields, problems: [] };
  const requested = parseTime(copy.metadata.annotations?.[RESCAN_ANNOTATION]);
  const due = requested !== undefined && (last === undefined || requested > last) ? 0 : (last ?? 0) + (last === undefined ? 0 : interval);
  if (due > now()) return { fields, problems: [], requeueMs: due - now() };
  await start("scan", podName(copy.metadata.name, "scan", String(last ?? 0)));
  return { fields, problems: [] };
}
