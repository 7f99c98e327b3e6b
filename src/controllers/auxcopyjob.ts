// AuxCopyJob: one run of an auxiliary copy. For each target copy it starts one MediaAgent copy pod that reads the
// source's and the target's catalogs, selects the jobs by the copy's rules (policy/selection.ts) and copies them in
// start order with restic copy. The controller shows each pod's live progress in status (read from its log), keeps
// the result once the pod ends, and retries a failed or killed pod with back-off up to maxAttempts: attempts are
// counted in status and pod names carry the attempt, so a restarted operator neither loses nor repeats one. Jobs
// a killed attempt finished are on the target, and the next attempt skips them. A copy whose source is itself a
// target of the run (a cascade) starts once its source's part is done.
import { isConflict, isNotFound } from "../kube/errors.ts";
import { labelValue, boundedName } from "../policy/names.ts";
import { createAgentPod, endedAgentHosts, Label, PENDING_GIVE_UP_MS, stuckPending } from "./agent/pods.ts";
import type { ProbeRequests } from "./agent/probes.ts";
import { repositoryRefusal } from "./agent/busy.ts";
import { formatTime, parseTime, Pods } from "../kube/resources.ts";
import { buildAgentPod, podName, type PodPlacement } from "../mediaagent/pod.ts";
import { parseDuration } from "../policy/duration.ts";
import { probeBackoffMs } from "../policy/probe.ts";
import { allocateStream, queuePosition } from "../policy/streams.ts";
import { blockingWindow, type Window } from "../policy/windows.ts";
import { checkTimeZone, effectiveSource } from "../policy/references.ts";
import { defaultRepositoryPath, repositoryAccess } from "../policy/repository.ts";
import { rulesOf } from "../policy/copyrules.ts";
import { requestRescan } from "./rescan.ts";
import type { Manager } from "../runtime/manager.ts";
import { watch } from "../runtime/controller.ts";
import { controllerRef } from "../runtime/objects.ts";
import { done, requeueAfter } from "../runtime/result.ts";
import type { AuxCopyJobStatus } from "../api/v1alpha1/index.ts";
import { agentResult, type PodObj } from "./agent/results.ts";
import { type ControllerSettings } from "./settings.ts";
import { podProgress } from "./agent/progress.ts";
import {
  type AcjObj,
  AuxCopyJobs,
  type CopyObj,
  Libraries,
  type LibraryObj,
  PolicyCopies,
  policyFacts,
  type PolicyObj,
  StoragePolicies,
} from "./resources.ts";
import { writeFields } from "./status.ts";

type CopyPart = NonNullable<AuxCopyJobStatus["copies"]>[number];

const Terminal = new Set(["Completed", "CompletedWithErrors", "Failed", "Killed"]);
const key = (ns: string | undefined, name: string) => `${ns}/${name}`;
const MAX_ATTEMPTS = 4;

/** Where a copy pod runs: the chosen copy's mediaAgent settings, with the job's node selector on top. */
function placementOf(acj: AcjObj, by: CopyObj): PodPlacement | undefined {
  const base = by.spec.mediaAgent as PodPlacement | undefined;
  const extra = acj.spec.mediaAgent?.nodeSelector;
  if (!extra) return base;
  return { ...base, nodeSelector: { ...base?.nodeSelector, ...extra } };
}

/** The overall phase from the copies' parts. */
export function overallPhase(parts: CopyPart[]): { phase: string; reason?: string } {
  const phases = parts.map((p) => p.phase ?? "Pending");
  if (phases.length === 0) return { phase: "Completed", reason: "NothingToCopy" };
  if (phases.some((p) => p === "Running")) return { phase: "Running" };
  if (phases.some((p) => p === "Pending" || p === "Retrying"))
    return { phase: "Pending", reason: phases.includes("Retrying") ? "Retrying" : undefined };
  if (phases.some((p) => p === "Waiting"))
    return {
      phase: "Waiting",
      reason: parts.some((p) => p.phase === "Waiting" && p.reason === "LockHeld") ? "LockHeld" : "ResourcesUnavailable",
    };
  if (phases.some((p) => p === "Queued"))
    return {
      phase: "Queued",
      reason: parts.some((p) => p.phase === "Queued" && p.message?.startsWith("operation window")) ? "OperationWindow" : "ConflictingJob",
    };
  if (phases.every((p) => p === "Completed")) return { phase: "Completed" };
  if (phases.every((p) => p === "Failed")) return { phase: "Failed" };
  return { phase: "CompletedWithErrors" };
}

export function registerAuxCopyController(mgr: Manager, settings: ControllerSettings, probes?: ProbeRequests): void {
  const jobs = mgr.informer<AcjObj>(AuxCopyJobs);
  const policies = mgr.informer<PolicyObj>(StoragePolicies);
  const copies = mgr.informer<CopyObj>(PolicyCopies);
  const libraries = mgr.informer<LibraryObj>(Libraries);
  // Every Auxo pod: a copy pod may clear every lock on a repository only when no other Auxo pod works on it.
  const agentPods = mgr.informer<PodObj>(Pods, { labelSelector: "app.kubernetes.io/managed-by=auxo" });
  const now = settings.now ?? Date.now;
  const counted = new Set<string>();
  const progressReadAt = new Map<string, number>();
  const once = (id: string) => {
    if (counted.has(id)) return false;
    counted.add(id);
    if (counted.size > 10_000) counted.delete(counted.values().next().value as string);
    return true;
  };
  // Why each job was last announced as Queued: a reconcile on a cache that does not show the new status yet must not
  // announce it again.
  const announcedQueued = new Map<string, string>();
  const jobsOf = (o: { metadata: { namespace?: string } }) =>
    jobs.list(o.metadata.namespace).map((j) => key(j.metadata.namespace, j.metadata.name));

  mgr.addController({
    name: "auxcopyjob",
    forType: jobs,
    owns: [agentPods],
    // A job waits on its copies' repositories and libraries.
    watches: [
      // Windows, time zone and the primary copy live on the policy.
      watch(policies, jobsOf),
      watch(copies, jobsOf),
      watch(libraries, jobsOf),
      // A job queued behind another for the same copy goes on when that one finishes its part.
      watch(jobs, jobsOf),
    ],
    reconcile: async (req) => {
      const acj = jobs.get(req.namespace, req.name);
      if (!acj) return done();
      const ns = req.namespace as string;
      const st = acj.status ?? {};
      const mine = agentPods
        .list(ns)
        .filter((p) => p.metadata.ownerReferences?.some((r) => r.kind === "AuxCopyJob" && r.uid === acj.metadata.uid));
      if (st.phase && Terminal.has(st.phase)) {
        // Results are in status: the pods can go.
        for (const p of mine) await deletePod(mgr, ns, p.metadata.name);
        return done();
      }
      const write = async (fields: Partial<AuxCopyJobStatus>) => {
        await writeFields(mgr, AuxCopyJobs, acj, { observedGeneration: acj.metadata.generation, ...fields } as Record<string, unknown>);
      };
      const started = st.startTime ?? formatTime(now());
      // Parts still under way when the whole job stops take the job's phase: no copy shows Running without a pod.
      const stopParts = (phase: string) =>
        st.copies?.map((c) =>
          ["Completed", "CompletedWithErrors", "Failed"].includes(c.phase ?? "")
            ? c
            : { ...c, phase, currentJob: undefined, etaSeconds: undefined, queuePosition: undefined },
        );
      if (acj.spec.cancel) {
        for (const p of mine) await deletePod(mgr, ns, p.metadata.name);
        mgr.events.event(acj, "Normal", "Killed", "cancelled by spec.cancel");
        await write({
          ...st,
          copies: stopParts("Killed"),
          phase: "Killed",
          reason: "Cancelled",
          message: "cancelled by spec.cancel",
          completionTime: formatTime(now()),
        });
        return done();
      }
      const maxMs = parseDuration("maxRunningTime", acj.spec.maxRunningTime ?? "6h");
      const runningFor = now() - (parseTime(started) ?? now());
      const anyRunning = (st.copies ?? []).some((c) => c.phase === "Running");
      if (runningFor > maxMs && (!anyRunning || acj.spec.killWhenMaxRunningTimeExpires)) {
        // Reference §4.8: past its total running time a job that is not running is killed; a running one keeps
        // going unless killWhenMaxRunningTimeExpires. Jobs copied so far stay on the copies.
        for (const p of mine) await deletePod(mgr, ns, p.metadata.name);
        const message = `total running time ${acj.spec.maxRunningTime ?? "6h"} expired`;
        mgr.events.event(acj, "Warning", "Killed", message);
        await write({
          ...st,
          copies: stopParts("Killed"),
          phase: "Killed",
          reason: "MaxRunningTimeExpired",
          message,
          completionTime: formatTime(now()),
        });
        return done();
      }
      const policy = policies.get(ns, acj.spec.storagePolicy);
      if (!policy) {
        await write({
          ...st,
          phase: "Pending",
          reason: "PolicyNotFound",
          message: `storage policy "${acj.spec.storagePolicy}" does not exist`,
        });
        return done();
      }
      if (acj.spec.suspend) {
        for (const p of mine) await deletePod(mgr, ns, p.metadata.name);
        await write({
          ...st,
          copies: stopParts("Suspended"),
          phase: "Suspended",
          reason: "Suspended",
          message: "suspended by spec.suspend; progress is kept",
        });
        return done();
      }
      const all = copies.list(ns).filter((c) => c.spec.storagePolicy === policy.metadata.name);
      const targets = (
        acj.spec.copies ??
        all.filter((c) => c.metadata.name !== policyFacts(policy).primaryCopy && c.spec.active !== false).map((c) => c.metadata.name)
      ).sort();
      const previous = new Map((st.copies ?? []).map((p) => [p.name, p]));
      // Pods this reconcile creates, with their libraries: the cache does not show them yet.
      const createdHere: string[][] = [];
      const parts: CopyPart[] = [];
      const history = [...(st.history ?? [])];
      let requeueMs: number | undefined;
      const soon = (ms: number) => (requeueMs = Math.min(requeueMs ?? ms, ms));
      for (const name of targets) {
        const prev: CopyPart = previous.get(name) ?? { name };
        const part: CopyPart = { ...prev, name };
        parts.push(part);
        if (part.phase === "Completed" || part.phase === "Failed") continue;
        const copy = copies.get(ns, name);
        if (!copy || copy.spec.storagePolicy !== policy.metadata.name || name === policyFacts(policy).primaryCopy) {
          Object.assign(part, {
            phase: "Failed",
            message: `"${name}" is not a secondary copy of storage policy "${policy.metadata.name}"`,
          });
          continue;
        }
        const sourceName = effectiveSource(
          {
            name,
            storagePolicy: copy.spec.storagePolicy,
            copyType: copy.spec.copyType ?? "Synchronous",
            sourceCopy: copy.spec.sourceCopy,
            active: copy.spec.active ?? true,
            createdAt: "",
          },
          policyFacts(policy),
        ) as string;
        part.source = sourceName;
        const source = copies.get(ns, sourceName);
        // A cascade: wait for the source's own part of this run.
        const upstream =
          parts.find((p) => p.name === sourceName) ??
          previous.get(sourceName) ??
          (targets.includes(sourceName) ? { phase: "Pending" } : undefined);
        const waiting = (message: string) => Object.assign(part, { phase: "Waiting", message });
        if (upstream && upstream.phase !== "Completed" && upstream.phase !== "CompletedWithErrors" && upstream.phase !== "Failed") {
          waiting(`waiting for its source copy "${sourceName}" to be filled by this run`);
          continue;
        }
        const lib = copy && libraries.get(ns, copy.spec.library);
        const srcLib = source && libraries.get(ns, source.spec.library);
        if (!source || !lib || !srcLib) {
          waiting(`source copy "${sourceName}", or a library, does not exist`);
          continue;
        }
        // A library outage parks the copy instead of failing it; it resumes when the probe sees the library again.
        const down = [lib, srcLib].find((l) => l.status?.phase !== "Ready");
        if (down) {
          waiting(`library "${down.metadata.name}" is ${down.status?.phase ?? "not probed yet"}`);
          continue;
        }
        // Data aging prunes with restic's exclusive lock: a copy into or out of that repository waits for it.
        const aging = agentPods
          .list(ns)
          .find(
            (p) =>
              (!p.status?.phase || p.status.phase === "Pending" || p.status.phase === "Running") &&
              p.metadata.labels?.["auxo.dev/task"] === "age" &&
              p.metadata.labels?.["auxo.dev/dry-run"] !== "true" &&
              [name, sourceName].map(labelValue).includes(p.metadata.labels?.[Label.copy] ?? ""),
          );
        if (aging) {
          waiting(`data aging runs on the repository (pod ${aging.metadata.name})`);
          soon(5000);
          continue;
        }
        const hold = (copy.status?.conditions ?? []).find((c) => c.type === "Ready" && c.reason === "BackupsRequired");
        if (hold) {
          waiting(hold.message);
          continue;
        }
        // A repository shared with another copy, or replaced at its location, is never written or read for this copy.
        const refusedBy = [copy, source].find((c) => repositoryRefusal(c));
        if (refusedBy) {
          const why = repositoryRefusal(refusedBy) as { reason: string; message: string };
          waiting(`copy "${refusedBy.metadata.name}": ${why.message}`);
          part.reason = why.reason;
          continue;
        }
        if (!copy.status?.repositoryReady || !source.status?.repositoryReady) {
          waiting(`repository of "${copy.status?.repositoryReady ? sourceName : name}" is not initialised yet`);
          continue;
        }
        const attempt = Math.max(prev.attempts ?? 0, 1);
        const pass = prev.pass ?? 1;
        const pName = podName(acj.metadata.name, name, ...(pass > 1 ? [`p${pass}`] : []), String(attempt));
        // Totals of this run: what pods that ended copied, plus the running pod's progress.
        const settledJobs = prev.settledJobsCopied ?? 0;
        const settledBytes = prev.settledBytesCopied ?? 0;
        const pod = mine.find((p) => p.metadata.name === pName);
        const r = pod && agentResult(pod);
        if (pod && !r) {
          const stuck = stuckPending(pod, now());
          if (stuck && once(`pending/${pod.metadata.uid}`)) mgr.events.event(acj, "Warning", "PodNotScheduled", `copy "${name}": ${stuck}`);
          if (stuck && now() - (parseTime(pod.metadata.creationTimestamp) ?? now()) > PENDING_GIVE_UP_MS) {
            // A pod that never starts counts as a failed attempt: the run goes on (or ends) instead of waiting forever.
            await deletePod(mgr, ns, pName);
            const retryAt = now() + probeBackoffMs(attempt, settings.retryBaseMs);
            Object.assign(part, {
              phase: attempt - (prev.lockWaits ?? 0) >= MAX_ATTEMPTS ? "Failed" : "Retrying",
              reason: "PodNotScheduled",
              attempts: attempt + 1,
              nextAttemptTime: formatTime(retryAt),
              message: stuck,
            });
            soon(Math.max(retryAt - now(), 1000));
            continue;
          }
          // Running: its live progress.
          part.phase = "Running";
          part.reason = stuck ? "PodNotScheduled" : undefined;
          part.attempts = attempt;
          part.startTime ??= formatTime(now());
          // At most one log read per pod per interval: the status write a read causes wakes this controller again,
          // and without the pacing progress would be read (and written) as fast as the API answers.
          const interval = settings.progressIntervalMs ?? 2000;
          const readAt = progressReadAt.get(pName) ?? 0;
          const due = pod.status?.phase === "Running" && now() - readAt >= interval;
          if (due) progressReadAt.set(pName, now());
          if (progressReadAt.size > 10_000) progressReadAt.delete(progressReadAt.keys().next().value as string);
          const pr = due ? await podProgress(mgr, ns, pName) : undefined;
          if (pr) {
            if (pr.jobsTotal !== undefined) part.jobsSelected = settledJobs + pr.jobsTotal;
            if (pr.jobsDone !== undefined) part.jobsCopied = settledJobs + pr.jobsDone;
            if (pr.bytesDone !== undefined) part.bytesCopied = settledBytes + pr.bytesDone;
            if (pr.bytesTotal !== undefined) part.bytesTotal = settledBytes + pr.bytesTotal;
            part.currentJob = pr.job;
            // restic is retrying its storage: probe both libraries now, so an outage shows (and parks the part) soon.
            if (pr.backendError)
              for (const l of [lib, srcLib]) probes?.request(ns, l.metadata.name, `copy pod ${pName}: ${pr.backendError}`, now());
            const secs = (now() - (parseTime(part.startTime) ?? now())) / 1000;
            if (secs > 0 && pr.bytesDone) {
              part.throughput = Math.round(pr.bytesDone / secs);
              if (pr.bytesTotal && part.throughput > 0) part.etaSeconds = Math.round((pr.bytesTotal - pr.bytesDone) / part.throughput);
            }
          }
          part.message = stuck ?? `copying from "${sourceName}" (attempt ${attempt})`;
          soon(Math.max(100, interval - (now() - (progressReadAt.get(pName) ?? 0))));
          continue;
        }
        if (pod && r) {
          const d = r.data as {
            lagSeconds?: number;
            runCopied?: number;
            copied?: number;
            selected?: number;
            remaining?: number;
            counts?: { ToBeCopied: number; PartiallyCopied: number; Available: number; DoNotCopy: number; Bad: number };
            bytes?: number;
            kind?: string;
            retryable?: boolean;
            lock?: { host?: string; ageSeconds?: number };
            copiedJobs?: string[];
            failedJobs?: string[];
          };
          // The run's history: the jobs this pod copied or could not copy (bounded; the job events keep all). Added
          // once by content, so a reconcile on a cache without the last write adds them again rather than losing them.
          {
            const at = r.at ?? formatTime(now());
            const seen = new Set(history.map((h) => `${h.copy}/${h.jobId}/${h.time}`));
            const add = (jobId: string, result: "Copied" | "Failed") => {
              if (seen.has(`${name}/${jobId}/${at}`)) return;
              history.push({ jobId, copy: name, result, time: at, ...(result === "Failed" ? { message: r.message.slice(0, 200) } : {}) });
            };
            for (const j of d.copiedJobs ?? []) add(String(j), "Copied");
            if (!r.ok) for (const j of d.failedJobs ?? []) add(String(j), "Failed");
          }
          // A pod that died without a result leaves only its last progress as the count of what it finished.
          const copiedNow = d.copied ?? Math.max(0, (part.jobsCopied ?? settledJobs) - settledJobs);
          const bytesNow = d.bytes ?? Math.max(0, (part.bytesCopied ?? settledBytes) - settledBytes);
          // The job events beside the repository give the exact count, also after a killed pod.
          // (Never below what the pods said they copied: an event lost to a storage outage must not lower the count.)
          part.settledJobsCopied = Math.max(d.runCopied ?? 0, settledJobs + copiedNow);
          part.settledBytesCopied = settledBytes + bytesNow;
          part.jobsCopied = part.settledJobsCopied;
          part.bytesCopied = part.settledBytesCopied;
          const labels = { namespace: ns, policy: policy.metadata.name, copy: name };
          // A reconcile on a cache that does not show this result in status yet sees the pod again: count it once.
          if (once(pod.metadata.uid ?? pName)) {
            mgr.metrics.copiedJobs.inc(labels, copiedNow);
            mgr.metrics.copiedBytes.inc(labels, bytesNow);
          }
          mgr.metrics.copyBacklog.set(labels, d.remaining ?? 0);
          if (d.lagSeconds !== undefined) {
            part.lagSeconds = d.lagSeconds;
            mgr.metrics.copyLag.set(labels, d.lagSeconds);
          }
          // The copy's catalog changed, and its source had new jobs: both statuses should show it now, not at their
          // next scan.
          if (copiedNow > 0) for (const c of [copy, source]) await requestRescan(mgr, c);
          if (d.selected !== undefined) part.jobsSelected = settledJobs + d.selected;
          // States as the pod's selection saw them, before it copied: what it copied is Available now.
          if (d.counts && r.ok) {
            const moved = d.selected ?? 0;
            part.jobStates = {
              ...d.counts,
              Available: d.counts.Available + moved,
              ToBeCopied: Math.max(0, d.counts.ToBeCopied + d.counts.PartiallyCopied - moved),
              PartiallyCopied: 0,
            };
          } else if (d.counts) part.jobStates = d.counts;
          part.jobsRemaining = d.remaining;
          part.currentJob = undefined;
          part.etaSeconds = undefined;
          if (r.ok) {
            // Scalable resource allocation: jobs that reached the source while this pass ran are picked up by another
            // pass, until one finds nothing new (not with doNotPickNewBackups, nor past the job limit).
            const again = copiedNow > 0 && !d.remaining && acj.spec.scalableResourceAllocation !== false && !acj.spec.doNotPickNewBackups;
            if (again) {
              Object.assign(part, {
                phase: "Pending",
                pass: pass + 1,
                attempts: 0,
                message: `pass ${pass} copied ${copiedNow} jobs; looking for new ones`,
              });
              soon(500);
              continue;
            }
            Object.assign(part, {
              phase: "Completed",
              jobsSelected: part.settledJobsCopied,
              jobsFailed: 0,
              bytesTotal: part.settledBytesCopied,
              message: `copied ${part.settledJobsCopied} jobs from "${sourceName}"`,
            });
            part.completionTime = r.at;
            mgr.events.event(acj, "Normal", "CopyCompleted", `copy "${name}": ${part.message}`);
            continue;
          }
          if (d.kind === "Unreachable")
            for (const l of [lib, srcLib]) probes?.request(ns, l.metadata.name, `copy pod ${pName}: ${r.message}`, now());
          if (d.kind === "LockHeld") {
            // Another process holds a lock Auxo cannot prove is its own and dead: wait and try again, without counting
            // it as a failed attempt (the run's running-time limit still bounds the wait).
            const waits = (prev.lockWaits ?? 0) + 1;
            const retryAt = (parseTime(r.at) ?? now()) + Math.min(probeBackoffMs(Math.min(waits, 4), settings.retryBaseMs), 5 * 60_000);
            Object.assign(part, {
              phase: "Waiting",
              reason: "LockHeld",
              attempts: attempt + 1,
              lockWaits: waits,
              nextAttemptTime: formatTime(retryAt),
              message: `${r.message}; trying again at ${formatTime(retryAt)}`,
            });
            if (waits === 1) mgr.events.event(acj, "Warning", "LockHeld", `copy "${name}": ${r.message}`);
            soon(Math.max(retryAt - now(), 1000));
            continue;
          }
          const retryable = d.retryable !== false;
          if (!retryable || attempt - (prev.lockWaits ?? 0) >= MAX_ATTEMPTS) {
            Object.assign(part, {
              phase: "Failed",
              reason: d.kind,
              jobsFailed: Math.max(0, (part.jobsSelected ?? 0) - (part.jobsCopied ?? 0)),
              message: `attempt ${attempt}: ${r.message}`,
            });
            part.completionTime = r.at;
            mgr.events.event(acj, "Warning", "CopyFailed", `copy "${name}" failed: ${r.message}`);
            continue;
          }
          // Retry after back-off; the attempt count is in status before the next pod exists.
          const retryAt = (parseTime(r.at) ?? now()) + probeBackoffMs(attempt, settings.retryBaseMs);
          Object.assign(part, {
            phase: "Retrying",
            reason: d.kind,
            attempts: attempt + 1,
            nextAttemptTime: formatTime(retryAt),
            message: `attempt ${attempt} failed (${r.message}); retrying at ${formatTime(retryAt)}`,
          });
          mgr.events.event(acj, "Warning", "CopyRetrying", `copy "${name}": ${part.message}`);
          soon(Math.max(retryAt - now(), 1000));
          continue;
        }
        // No pod for this attempt yet. An older unfinished job with a part for the same copy goes first: two
        // copies into one repository at once could both copy the same job.
        const ahead = jobs
          .list(ns)
          .filter(
            (o) =>
              o.metadata.uid !== acj.metadata.uid &&
              o.spec.storagePolicy === acj.spec.storagePolicy &&
              !Terminal.has(o.status?.phase ?? ""),
          )
          .filter((o) => older(o, acj))
          .find(
            (o) =>
              (o.status?.copies ?? []).some((c) => c.name === name && c.phase !== "Completed" && c.phase !== "Failed") ||
              (!o.status && (!o.spec.copies || o.spec.copies.includes(name))),
          );
        if (ahead) {
          Object.assign(part, { phase: "Queued", message: `queued behind auxcopyjob ${ahead.metadata.name}, which copies to "${name}"` });
          continue;
        }
        const retryAt = parseTime(prev.nextAttemptTime);
        if (retryAt !== undefined && retryAt > now()) {
          part.phase = prev.reason === "LockHeld" ? "Waiting" : "Retrying";
          soon(retryAt - now());
          continue;
        }
        // An unknown time zone: its windows and calendars cannot be read, so no copy pod starts.
        const badZone = checkTimeZone(policy.spec.timeZone)[0];
        if (badZone) {
          waiting(badZone.message);
          continue;
        }
        // An operation window: no new copy pod starts inside it; running ones go on (reference §5.4).
        const blocked = blockingWindow(
          policy.spec.operationWindows as Window[] | undefined,
          "AuxCopy",
          now(),
          policy.spec.timeZone ?? "UTC",
        );
        if (blocked) {
          Object.assign(part, {
            phase: "Queued",
            message: `operation window "${blocked.window.name}" until ${formatTime(blocked.endsAt)}`,
          });
          soon(Math.max(blocked.endsAt - now(), 1000));
          continue;
        }
        // A stream: under the job's cap and every library's maxStreams, counting all copy pods of the namespace.
        const active = (p: PodObj) => !p.status?.phase || p.status.phase === "Pending" || p.status.phase === "Running";
        const streams = agentPods.list(ns).filter((p) => active(p) && p.metadata.labels?.["auxo.dev/task"] === "copy");
        const verdict = allocateStream({
          jobStreams: acj.spec.streams,
          // By owner, not object identity: the cache may hand out a newer copy of a pod during this reconcile.
          jobInUse: streams.filter((p) => p.metadata.ownerReferences?.some((o) => o.uid === acj.metadata.uid)).length + createdHere.length,
          libraries: [...new Set([lib, srcLib])].map((l) => ({
            name: l.metadata.name,
            maxStreams: l.spec.maxStreams ?? 10,
            inUse:
              createdHere.filter((c) => c.includes(l.metadata.name)).length +
              streams.filter(
                (p) =>
                  p.metadata.labels?.[Label.targetLibrary] === labelValue(l.metadata.name) ||
                  p.metadata.labels?.[Label.sourceLibrary] === labelValue(l.metadata.name),
              ).length,
          })),
        });
        if (!verdict.ok) {
          const waitingJobs = jobs
            .list(ns)
            .filter(
              (o) =>
                o.metadata.uid !== acj.metadata.uid &&
                (o.status?.copies ?? []).some((c) => c.phase === "Waiting" && c.queuePosition !== undefined),
            )
            .map((o) => ({ createdAt: o.metadata.creationTimestamp ?? "", name: o.metadata.name }));
          const position = queuePosition({ createdAt: acj.metadata.creationTimestamp ?? "", name: acj.metadata.name }, waitingJobs);
          Object.assign(part, {
            phase: "Waiting",
            queuePosition: position,
            message: `waiting for a stream: ${verdict.message}; position ${position} in the queue`,
          });
          soon(5000); // a freed stream also wakes it (the other job's status changes)
          continue;
        }
        part.queuePosition = undefined;
        if ((prev.attempts ?? 0) < attempt) {
          // Record the attempt before its pod exists: a stale cache after a restart must not start another.
          Object.assign(part, { phase: "Pending", attempts: attempt, message: `starting attempt ${attempt}` });
          soon(500);
          continue;
        }
        const access = (c: CopyObj, l: LibraryObj, role: string) => {
          const pw = c.spec.encryption.passwordSecret;
          return {
            ...repositoryAccess(
              l.spec,
              c.spec.repositoryPath ?? defaultRepositoryPath(ns, policy.metadata.name, c.metadata.name),
              { secret: pw.name, key: pw.key ?? "password" },
              role,
            ),
            // The pod checks it before it writes: a repository swapped in at the location is never written.
            repositoryId: c.status?.repositoryId,
          };
        };
        const podObj = buildAgentPod({
          task: "copy",
          namespace: ns,
          name: pName,
          owner: controllerRef(acj, AuxCopyJobs),
          image: settings.agentImage,
          target: access(copy, lib, "target"),
          source: access(source, srcLib, "source"),
          plan: {
            rules: rulesOf(copy, policy, now()),
            cutoff: acj.spec.doNotPickNewBackups ? started : undefined,
            runStart: started,
            skipVerificationFailed: acj.spec.skipVerificationFailedJobs,
            limit: acj.spec.jobLimit ?? 1000,
            mostRecentFull: acj.spec.useMostRecentFull,
          },
          // Locks of Auxo pods that ended (a killed attempt's) may go; any other lock is waited for (docs/job-metadata.md).
          locks: {
            deadHosts: endedAgentHosts(
              agentPods.list(ns),
              Array.from({ length: attempt - 1 }, (_, i) =>
                podName(acj.metadata.name, name, ...(pass > 1 ? [`p${pass}`] : []), String(i + 1)),
              ),
            ),
          },
          deadlineSeconds: 6 * 3600,
          placement: placementOf(acj, acj.spec.mediaAgent?.from === "Source" ? source : copy),
          labels: {
            [Label.targetLibrary]: labelValue(lib.metadata.name),
            [Label.sourceLibrary]: labelValue(srcLib.metadata.name),
            [Label.copy]: labelValue(name),
            [Label.source]: labelValue(sourceName),
            [Label.auxCopyJob]: labelValue(acj.metadata.name),
            [Label.attempt]: String(attempt),
          },
        });
        const created = await createAgentPod(mgr, podObj);
        if (!created.created) {
          // The API refuses the pod itself (quota, admission, invalid settings): a failed attempt with the server's words.
          const retryAt = now() + probeBackoffMs(attempt, settings.retryBaseMs);
          const last = attempt - (prev.lockWaits ?? 0) >= MAX_ATTEMPTS;
          Object.assign(part, {
            phase: last ? "Failed" : "Retrying",
            reason: "PodRejected",
            attempts: last ? attempt : attempt + 1,
            nextAttemptTime: last ? undefined : formatTime(retryAt),
            message: `attempt ${attempt}: ${created.message}`,
          });
          if (last) part.completionTime = formatTime(now());
          mgr.events.event(acj, "Warning", "PodRejected", `copy "${name}": ${created.message}`);
          if (!last) soon(Math.max(retryAt - now(), 1000));
          continue;
        }
        createdHere.push([lib.metadata.name, srcLib.metadata.name]);
        Object.assign(part, {
          phase: "Running",
          reason: undefined,
          message: `copying from "${sourceName}" (attempt ${attempt})`,
          startTime: part.startTime ?? formatTime(now()),
        });
        soon(settings.progressIntervalMs ?? 2000);
      }
      const overall = overallPhase(parts);
      const totals = parts.reduce(
        (t, p) => ({
          selected: t.selected + (p.jobsSelected ?? 0),
          copied: t.copied + (p.jobsCopied ?? 0),
          bytes: t.bytes + (p.bytesCopied ?? 0),
        }),
        { selected: 0, copied: 0, bytes: 0 },
      );
      const terminal = Terminal.has(overall.phase);
      if (!st.startTime)
        mgr.events.event(
          acj,
          "Normal",
          "Started",
          `aux copy to ${targets.length} cop${targets.length === 1 ? "y" : "ies"}: ${targets.join(", ")}`,
        );
      // Reference §5.4: an event when the job goes to Queued, or is queued for another reason; not on every reconcile.
      const uid = acj.metadata.uid ?? req.name;
      if (overall.phase !== "Queued") announcedQueued.delete(uid);
      else if ((st.phase !== "Queued" || st.reason !== overall.reason) && announcedQueued.get(uid) !== overall.reason) {
        announcedQueued.set(uid, overall.reason ?? "");
        if (announcedQueued.size > 10_000) announcedQueued.delete(announcedQueued.keys().next().value as string);
        mgr.events.event(
          acj,
          "Normal",
          overall.reason === "OperationWindow" ? "OperationWindow" : "Queued",
          parts
            .filter((p) => p.phase === "Queued")
            .map((p) => `copy "${p.name}": ${p.message}`)
            .join("; "),
        );
      }
      let followUpJob = st.followUpJob;
      const more = parts.filter((p) => (p.jobsRemaining ?? 0) > 0).map((p) => p.name);
      if (terminal && more.length > 0 && !followUpJob) {
        // Beyond jobLimit: a follow-up run picks up the rest (reference §4.5).
        followUpJob = boundedName(followUpName(acj.metadata.name), "");
        await mgr.client
          .create(AuxCopyJobs, {
            apiVersion: "auxo.dev/v1alpha1",
            kind: "AuxCopyJob",
            metadata: {
              name: followUpJob,
              namespace: ns,
              labels: { ...acj.metadata.labels, [Label.follows]: labelValue(acj.metadata.name) },
            },
            spec: { ...acj.spec, copies: more, suspend: false },
          } as never)
          .catch((err) => {
            if (!isConflict(err)) throw err;
          });
        mgr.events.event(acj, "Normal", "FollowUpCreated", `${more.join(", ")}: jobs beyond jobLimit go to auxcopyjob ${followUpJob}`);
      }
      if (terminal && once(`run/${acj.metadata.uid}`))
        mgr.metrics.auxCopyRuns.observe(
          { namespace: ns, policy: policy.metadata.name, phase: overall.phase },
          (now() - (parseTime(started) ?? now())) / 1000,
        );
      if (terminal)
        mgr.events.event(
          acj,
          overall.phase === "Completed" ? "Normal" : "Warning",
          overall.phase,
          `copied ${totals.copied} of ${totals.selected} jobs`,
        );
      await write({
        phase: overall.phase as AuxCopyJobStatus["phase"],
        reason: overall.reason,
        message:
          parts
            .filter((p) => p.phase !== "Completed")
            .map((p) => `${p.name}: ${p.message}`)
            .join("; ") || undefined,
        startTime: started,
        completionTime: terminal ? formatTime(now()) : undefined,
        copies: parts,
        jobsSelected: totals.selected,
        jobsCopied: totals.copied,
        bytesCopied: totals.bytes,
        progress: `${totals.copied}/${totals.selected} jobs`,
        followUpJob,
        history: history.length ? history.slice(-100) : undefined,
      });
      return requeueMs !== undefined ? requeueAfter(requeueMs) : done();
    },
  });
}

/** Creation order, then name: which of two conflicting jobs goes first. */
function older(a: AcjObj, b: AcjObj): boolean {
  const ta = a.metadata.creationTimestamp ?? "";
  const tb = b.metadata.creationTimestamp ?? "";
  return ta !== tb ? ta < tb : a.metadata.name < b.metadata.name;
}

/** `nightly` → `nightly-2`, `nightly-2` → `nightly-3`. */
export function followUpName(name: string): string {
  const m = /^(.*)-(\d+)$/.exec(name);
  return m ? `${m[1]}-${Number(m[2]) + 1}` : `${name}-2`;
}

async function deletePod(mgr: Manager, ns: string, name: string): Promise<void> {
  await mgr.client.delete(Pods, ns, name).catch((err) => {
    if (!isNotFound(err)) throw err;
  });
}
