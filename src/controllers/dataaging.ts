// Data aging: each copy ages its jobs by its own retention (policy/retention.ts), daily at the policy's dataAging.at
// in its time zone, in a MediaAgent `age` pod that reads the copy's catalog and the catalogs of the copies filled from
// it (their needs hold jobs), stops at the mass-deletion breaker, forgets and prunes. Prune takes restic's exclusive
// lock, so a run waits while another Auxo pod writes the repository, and aux copies wait for it (auxcopyjob.ts). A
// dry-run pod after each catalog scan previews the next run in status. Pods are named by run number, recorded in
// status before they start, so a stale cache never starts a run twice.
import { isNotFound } from "../kube/errors.ts";
import { labelValue } from "../policy/names.ts";
import { probeBackoffMs } from "../policy/probe.ts";
import { createAgentPod, endedAgentHosts, Label } from "./agent/pods.ts";
import type { ProbeRequests } from "./agent/probes.ts";
import { repositoryRefusal } from "./agent/busy.ts";
import { formatTime, parseTime, Pods } from "../kube/resources.ts";
import { buildAgentPod, type DownstreamTask, podName } from "../mediaagent/pod.ts";
import { checkTimeZone, type CopyFacts, holdersOf } from "../policy/references.ts";
import { defaultRepositoryPath, type RepositoryAccess, repositoryAccess } from "../policy/repository.ts";
import type { RetentionOverride, RetentionSpec } from "../policy/retention.ts";
import { nextAgingRun } from "../policy/retention.ts";
import { blockingWindow, type Window } from "../policy/windows.ts";
import type { Manager } from "../runtime/manager.ts";
import { watch } from "../runtime/controller.ts";
import { controllerRef } from "../runtime/objects.ts";
import { done, requeueAfter } from "../runtime/result.ts";
import type { PolicyCopyStatus } from "../api/v1alpha1/index.ts";
import { rulesOf } from "../policy/copyrules.ts";
import { requestRescan } from "./rescan.ts";
import { agentResult, type PodObj } from "./agent/results.ts";
import { type ControllerSettings } from "./settings.ts";
import { type CopyObj, Libraries, type LibraryObj, PolicyCopies, policyFacts, type PolicyObj, StoragePolicies } from "./resources.ts";
import { writeFields } from "./status.ts";
import { type Condition, setCondition } from "../runtime/conditions.ts";

/** Asks for a data aging run of a copy now (an RFC 3339 time later than its last run), like the rescan annotation. */
export const AGE_NOW_ANNOTATION = "auxo.dev/data-aging-requested";

type AgingStatus = NonNullable<PolicyCopyStatus["dataAging"]>;
const OFF = "data aging is off for this copy (the policy's dataAging.enabled or the copy's retention.enableDataAging)";
const key = (ns: string | undefined, name: string) => `${ns}/${name}`;
/** The furthest ahead a mass-aging confirmation may reach: a value left in Git must not disarm the breaker for good. */
const MAX_CONFIRM_AHEAD_MS = 7 * 86_400_000;
/** Annotation with a MediaAgent pod's copy, in full (its label value may be shortened). */
const COPY_ANNOTATION = "auxo.dev/copy";
const active = (p: PodObj) => !p.status?.phase || p.status.phase === "Pending" || p.status.phase === "Running";

export function registerDataAgingController(mgr: Manager, settings: ControllerSettings, probes?: ProbeRequests): void {
  const copies = mgr.informer<CopyObj>(PolicyCopies);
  const policies = mgr.informer<PolicyObj>(StoragePolicies);
  const libraries = mgr.informer<LibraryObj>(Libraries);
  const pods = mgr.informer<PodObj>(Pods, { labelSelector: "app.kubernetes.io/managed-by=auxo" });
  const now = settings.now ?? Date.now;
  const ofPolicy = (p: { metadata: { namespace?: string; name: string } }) =>
    copies
      .list(p.metadata.namespace)
      .filter((c) => c.spec.storagePolicy === p.metadata.name)
      .map((c) => key(c.metadata.namespace, c.metadata.name));

  mgr.addController({
    name: "dataaging",
    forType: copies,
    watches: [
      watch(policies, ofPolicy),
      watch(libraries, (l) => copies.list(l.metadata.namespace).map((c) => key(c.metadata.namespace, c.metadata.name))),
      // Its own pods end runs; other pods on a repository end a wait.
      watch(pods, (p) => {
        const c = p.metadata.annotations?.[COPY_ANNOTATION] ?? (p as PodObj).metadata.labels?.[Label.copy];
        return c ? [key(p.metadata.namespace, c)] : [];
      }),
    ],
    reconcile: async (req) => {
      const copy = copies.get(req.namespace, req.name);
      if (!copy) return done();
      const ns = req.namespace as string;
      const policy = policies.get(ns, copy.spec.storagePolicy);
      const lib = libraries.get(ns, copy.spec.library);
      const st: AgingStatus = { ...(copy.status?.dataAging ?? {}) };
      const write = async (s: AgingStatus) => {
        // The DataAging condition: False while the mass-deletion breaker holds the copy, until a person confirms
        // (Auxo's own safety rule, not Commvault's).
        const stopped = s.phase === "Stopped";
        const conditions = setCondition(
          copy.status?.conditions as Condition[] | undefined,
          stopped
            ? { type: "DataAging", status: "False", reason: "MassDeletion", message: s.message ?? "" }
            : {
                type: "DataAging",
                status: "True",
                reason: s.message === OFF ? "Disabled" : "Enabled",
                message: s.message ?? "data aging runs on schedule",
              },
          copy.metadata.generation,
          now(),
        ).filter((c) => c.type === "DataAging");
        // Its own field manager: the copy controller applies the rest of this status as "auxo-operator".
        await writeFields(mgr, PolicyCopies, copy, { dataAging: s, conditions }, "auxo-data-aging");
      };
      if (settings.dataAging !== true) return done();
      const sched = policy?.spec.dataAging ?? {};
      if (!policy || sched.enabled === false || copy.spec.retention?.enableDataAging === false) {
        await write({ ...st, phase: "Idle", message: OFF, nextRunTime: undefined, preview: undefined });
        return done();
      }
      const refused = repositoryRefusal(copy);
      if (refused) {
        // Never forget or prune in a repository this copy does not own alone.
        const message = `no data aging: ${refused.message}`;
        if (st.message !== message) await write({ ...st, phase: "Waiting", message, nextRunTime: undefined });
        return done();
      }
      if (!lib || lib.status?.phase !== "Ready" || !copy.status?.repositoryReady) return done(); // library/repository status says why
      const tz = policy.spec.timeZone ?? "UTC";
      // An unknown time zone: no day, window or calendar can be read in it, so no run (the policy's Ready says so).
      const badZone = checkTimeZone(policy.spec.timeZone)[0];
      if (badZone) {
        if (st.message !== badZone.message) await write({ ...st, phase: "Waiting", message: badZone.message, nextRunTime: undefined });
        return done(); // a fixed policy wakes the copy
      }
      const t = now();
      const mine = pods
        .list(ns)
        .filter((p) => p.metadata.ownerReferences?.some((o) => o.kind === "PolicyCopy" && o.uid === copy.metadata.uid));
      const agePods = mine.filter((p) => p.metadata.labels?.["auxo.dev/task"] === "age");
      const runs = st.runs ?? 0;
      const runPod = agePods.find((p) => p.metadata.name === podName(copy.metadata.name, "age", String(runs)));
      const previewPods = agePods.filter((p) => p.metadata.labels?.["auxo.dev/dry-run"] === "true");
      const remove = async (p: PodObj) =>
        await mgr.client.delete(Pods, ns, p.metadata.name).catch((err) => {
          if (!isNotFound(err)) throw err;
        });
      const labels = { namespace: ns, policy: policy.metadata.name, copy: copy.metadata.name };

      // What the task needs: this copy, and every copy filled from it.
      const access = (c: CopyObj, l: LibraryObj, role: string): RepositoryAccess => {
        const pw = c.spec.encryption.passwordSecret;
        return repositoryAccess(
          l.spec,
          c.spec.repositoryPath ?? defaultRepositoryPath(ns, policy.metadata.name, c.metadata.name),
          { secret: pw.name, key: pw.key ?? "password" },
          role,
        );
      };
      const pf = policyFacts(policy);
      // The copies this one holds jobs for (references.ts holdersOf): those filled from it, those the last promotion
      // re-pointed away from it (the old primary), and, for the primary, those whose sources never reach it.
      const facts = new Map(
        copies.list(ns).map((c): [string, CopyFacts] => [
          c.metadata.name,
          {
            name: c.metadata.name,
            storagePolicy: c.spec.storagePolicy,
            copyType: c.spec.copyType ?? "Synchronous",
            sourceCopy: c.spec.sourceCopy,
            active: c.spec.active ?? true,
            createdAt: "",
          },
        ]),
      );
      const downstream = copies
        .list(ns)
        .filter((c) => c.spec.storagePolicy === policy.metadata.name && c.metadata.name !== copy.metadata.name)
        .flatMap((c) => {
          const h = holdersOf(facts.get(c.metadata.name) as CopyFacts, pf, facts).find((x) => x.name === copy.metadata.name);
          return h ? [{ c, unreadable: !!h.unreadable }] : [];
        })
        .map(({ c, unreadable }, i): Omit<DownstreamTask, "access"> & { access: RepositoryAccess } => {
          const dl = libraries.get(ns, c.spec.library);
          const reachable = !unreadable && !!dl && dl.status?.phase === "Ready" && !!c.status?.repositoryReady;
          return {
            name: c.metadata.name,
            access: dl ? access(c, dl, `down${i}`) : access(copy, lib, `down${i}`),
            rules: rulesOf(c, policy, now()),
            active: c.spec.active ?? true,
            ...(reachable ? {} : { unreachable: true }),
          };
        });
      const until = parseTime(copy.spec.retention?.confirmMassAgingUntil) ?? 0;
      // A confirmation reaches at most 7 days ahead; one further out is not honoured (and says so).
      const confirmed = until > t && until <= t + MAX_CONFIRM_AHEAD_MS;
      const confirmTooFar =
        until > t + MAX_CONFIRM_AHEAD_MS
          ? `spec.retention.confirmMassAgingUntil is more than 7 days ahead and is not honoured: confirm a time within the next 7 days`
          : undefined;
      const aging = {
        retention: copy.spec.retention as RetentionSpec | undefined,
        overrides: copy.spec.jobOverrides as RetentionOverride[] | undefined,
        timeZone: tz,
        maxSharePercent: confirmed ? 100 : (sched.maxAgedShare ?? 50),
      };
      const start = async (name: string, dryRun: boolean, at?: string) => {
        const pod = buildAgentPod({
          task: "age",
          namespace: ns,
          name,
          owner: controllerRef(copy, PolicyCopies),
          image: settings.agentImage,
          target: { ...access(copy, lib, "target"), repositoryId: copy.status?.repositoryId },
          downstream,
          // The decision time is the operator's: a pod whose clock is off refuses instead of ageing by it.
          aging: { ...aging, at: at ?? formatTime(now()), ...(dryRun ? { dryRun: true } : {}) },
          // Locks of Auxo's ended pods (earlier runs, killed copies) may go; any other lock is waited for.
          ...(dryRun
            ? {}
            : {
                locks: {
                  deadHosts: endedAgentHosts(
                    pods.list(ns),
                    Array.from({ length: Math.min(runs, 5) }, (_, i) => podName(copy.metadata.name, "age", String(runs - 1 - i))),
                  ),
                },
              }),
          deadlineSeconds: 6 * 3600,
          placement: copy.spec.mediaAgent as never,
          labels: { [Label.copy]: labelValue(copy.metadata.name), ...(dryRun ? { [Label.dryRun]: "true" } : {}) },
        }) as { metadata: { annotations?: Record<string, string> } };
        pod.metadata.annotations = { ...pod.metadata.annotations, [COPY_ANNOTATION]: copy.metadata.name };
        const out = await createAgentPod(mgr, pod);
        return out.created ? undefined : out.message;
      };

      // A run that ended: its result goes to status (and metrics, once), then the pod goes.
      const runResult = runPod && agentResult(runPod);
      if (runPod && runResult) {
        if (st.lastRunTime !== runResult.at && st.lockedRunTime !== runResult.at) {
          const d = runResult.data as { aged?: number; agedBytes?: number; reclaimedBytes?: number; kind?: string };
          const next: AgingStatus = { ...st, lastRunTime: runResult.at };
          if (runResult.ok) {
            Object.assign(next, {
              phase: "Idle",
              message: `aged ${d.aged ?? 0} jobs, freed ${d.reclaimedBytes ?? 0} bytes`,
              lastAgedJobs: d.aged ?? 0,
              lastAgedBytes: d.agedBytes ?? 0,
              lastReclaimedBytes: d.reclaimedBytes ?? 0,
              agedJobs: (st.agedJobs ?? 0) + (d.aged ?? 0),
            });
            mgr.metrics.agedJobs.inc(labels, d.aged ?? 0);
            mgr.metrics.reclaimedBytes.inc(labels, d.reclaimedBytes ?? 0);
            mgr.metrics.agingRuns.inc({ ...labels, result: "completed" });
            mgr.events.event(copy, "Normal", "DataAgingCompleted", next.message as string);
            if ((d.aged ?? 0) > 0) await requestRescan(mgr, copy); // its status shows the smaller catalog now
          } else if (d.kind === "MassDeletion") {
            Object.assign(next, {
              phase: "Stopped",
              message: `${runResult.message}; set spec.retention.confirmMassAgingUntil to a time later than now to let runs before it age more`,
            });
            mgr.metrics.agingRuns.inc({ ...labels, result: "stopped" });
            mgr.events.event(copy, "Warning", "MassDeletion", next.message as string);
          } else if (d.kind === "LockHeld") {
            // Another process holds a lock Auxo cannot prove is its own and dead: wait and run again, never unlock it.
            const retryAt = (parseTime(runResult.at) ?? t) + 2 * 60_000;
            Object.assign(next, {
              lastRunTime: st.lastRunTime,
              lockedRunTime: runResult.at,
              phase: "Waiting",
              message: `${runResult.message}; trying again at ${formatTime(retryAt)}`,
              retryTime: formatTime(retryAt),
            });
            mgr.events.event(copy, "Warning", "LockHeld", `data aging waits: ${runResult.message}`);
          } else {
            Object.assign(next, { phase: "Idle", message: `data aging failed: ${runResult.message}` });
            mgr.metrics.agingRuns.inc({ ...labels, result: "failed" });
            mgr.events.event(copy, "Warning", "DataAgingFailed", next.message as string);
            if (d.kind === "Unreachable") probes?.request(ns, lib.metadata.name, `data aging: ${runResult.message}`, t);
          }
          const unread = downstream.filter((x) => x.unreachable).map((x) => x.name);
          if (runResult.ok && unread.length)
            next.message = `${next.message}; held every job for ${unread.map((n) => `"${n}"`).join(", ")}, which cannot be read now`;
          next.preview = undefined; // the catalog changed (or a person must look): preview again
          await write(next);
          return requeueAfter(1000);
        }
        await remove(runPod);
      }
      if (runPod && !runResult) {
        if (st.phase !== "Running")
          await write({ ...st, phase: "Running", message: `data aging run ${runs} in pod ${runPod.metadata.name}` });
        return done(); // its end wakes us
      }

      const last = parseTime(st.lastRunTime) ?? parseTime(copy.metadata.creationTimestamp) ?? t;
      const scheduled = nextAgingRun(last, sched.at ?? "12:00", tz);
      const asked = parseTime(copy.metadata.annotations?.[AGE_NOW_ANNOTATION]);
      const due = asked !== undefined && asked > last ? Math.min(asked, scheduled) : scheduled;
      const nextRunTime = formatTime(due);

      // The preview: a dry run as of the next run, once per catalog scan; a failing preview backs off.
      const scanned = copy.status?.lastScanTime;
      for (const p of previewPods) {
        const r = agentResult(p);
        if (!r) continue;
        if (!r.ok && st.lastPreviewFailureTime !== r.at) {
          await write({ ...st, previewFailures: (st.previewFailures ?? 0) + 1, lastPreviewFailureTime: r.at ?? formatTime(t) });
          return requeueAfter(1000);
        }
        const d = r.data as { aged?: number; agedBytes?: number; breaker?: { stop?: boolean } };
        const catalogTime = p.metadata.annotations?.["auxo.dev/catalog-time"];
        if (r.ok && st.preview?.catalogTime !== catalogTime) {
          await write({
            ...st,
            nextRunTime,
            previewFailures: undefined,
            lastPreviewFailureTime: undefined,
            preview: { at: nextRunTime, jobs: d.aged ?? 0, bytes: d.agedBytes ?? 0, breakerWouldStop: !!d.breaker?.stop, catalogTime },
          });
          return requeueAfter(1000);
        }
        await remove(p);
      }

      const retryAt = st.phase === "Waiting" ? parseTime(st.retryTime) : undefined;
      if (retryAt !== undefined && retryAt > t && due <= t) return requeueAfter(retryAt - t); // a lock holds it
      if (due > t) {
        const failures = st.previewFailures ?? 0;
        const previewAt = failures ? (parseTime(st.lastPreviewFailureTime) ?? t) + probeBackoffMs(failures, settings.retryBaseMs) : t;
        const wantPreview = scanned && st.preview?.catalogTime !== scanned && previewPods.length === 0 && previewAt <= t;
        if (wantPreview && !mine.some((p) => active(p) && p.metadata.labels?.["auxo.dev/task"] !== "scan")) {
          // Named by the catalog scan and the failures so far: a failed preview pod is not recreated under its name.
          const name = podName(copy.metadata.name, "age-preview", String(parseTime(scanned) ?? 0), ...(failures ? [String(failures)] : []));
          const pod = buildAgentPod({
            task: "age",
            namespace: ns,
            name,
            owner: controllerRef(copy, PolicyCopies),
            image: settings.agentImage,
            target: access(copy, lib, "target"),
            downstream,
            aging: { ...aging, dryRun: true, at: nextRunTime },
            deadlineSeconds: 3600,
            placement: copy.spec.mediaAgent as never,
            labels: { [Label.copy]: labelValue(copy.metadata.name), [Label.dryRun]: "true" },
          }) as { metadata: { annotations?: Record<string, string> } };
          pod.metadata.annotations = { "auxo.dev/catalog-time": scanned, [COPY_ANNOTATION]: copy.metadata.name };
          const out = await createAgentPod(mgr, pod);
          if (!out.created) {
            mgr.events.event(copy, "Warning", "PodRejected", `data aging preview: ${out.message}`);
            await write({ ...st, nextRunTime, previewFailures: failures + 1, lastPreviewFailureTime: formatTime(t), message: out.message });
            return requeueAfter(probeBackoffMs(failures + 1, settings.retryBaseMs));
          }
        } else if (wantPreview === false && previewAt > t && scanned && st.preview?.catalogTime !== scanned) {
          const back = previewAt - t;
          if (st.nextRunTime !== nextRunTime) await write({ ...st, nextRunTime });
          return requeueAfter(Math.min(back, due - t));
        }
        if (confirmTooFar && st.message !== confirmTooFar) {
          mgr.events.event(copy, "Warning", "ConfirmationTooFar", confirmTooFar);
          await write({ ...st, nextRunTime, message: confirmTooFar });
          return requeueAfter(Math.min(due - t, 3600_000));
        }
        if (st.nextRunTime !== nextRunTime || (st.phase !== "Idle" && st.phase !== "Stopped"))
          await write({ ...st, phase: st.phase === "Stopped" ? "Stopped" : "Idle", nextRunTime });
        return requeueAfter(Math.min(due - t, 3600_000));
      }

      // Due. Windows first, then the repository must be free: prune is exclusive.
      const blocked = blockingWindow(policy.spec.operationWindows as Window[] | undefined, "DataAging", t, tz);
      if (blocked) {
        const message = `operation window "${blocked.window.name}" until ${formatTime(blocked.endsAt)}`;
        if (st.message !== message) mgr.events.event(copy, "Normal", "OperationWindow", `data aging waits: ${message}`);
        await write({ ...st, phase: "Waiting", message, nextRunTime });
        return requeueAfter(Math.max(blocked.endsAt - t, 1000));
      }
      const using = pods
        .list(ns)
        .filter(
          (p) =>
            active(p) &&
            p.metadata.name !== podName(copy.metadata.name, "age", String(runs)) &&
            !["scan", "probe", "plan"].includes(p.metadata.labels?.["auxo.dev/task"] ?? "") &&
            (p.metadata.labels?.[Label.copy] === labelValue(copy.metadata.name) ||
              p.metadata.labels?.[Label.source] === labelValue(copy.metadata.name) ||
              (p.metadata.ownerReferences?.some((o) => o.uid === copy.metadata.uid) ?? false)),
        );
      if (using.length) {
        await write({
          ...st,
          phase: "Waiting",
          message: `waiting for pod ${using[0]?.metadata.name} to finish with the repository`,
          nextRunTime,
        });
        return requeueAfter(10_000);
      }
      // The run is recorded before its pod exists (a stale cache then names the same pod), then the pod starts.
      if (st.phase === "Starting" || (st.phase === "Running" && !runPod)) {
        const refused = await start(podName(copy.metadata.name, "age", String(runs)), false);
        if (refused) {
          // The API refuses the pod: a failed run, reported; the next run is the next scheduled one.
          mgr.events.event(copy, "Warning", "PodRejected", `data aging run ${runs}: ${refused}`);
          mgr.metrics.agingRuns.inc({ ...labels, result: "failed" });
          await write({ ...st, phase: "Idle", message: `data aging failed: ${refused}`, lastRunTime: formatTime(t) });
        }
        return done();
      }
      await write({
        ...st,
        runs: runs + 1,
        phase: "Starting",
        message: `data aging run ${runs + 1} starting`,
        nextRunTime,
        retryTime: undefined,
      });
      return requeueAfter(500);
    },
  });
}
