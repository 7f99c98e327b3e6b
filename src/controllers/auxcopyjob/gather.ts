// The facts one AuxCopyJob reconcile decides on, read from the caches into plain objects: the job, its policy, per
// target copy the copy, its source, their libraries, refusals and holds, the pod of the part's attempt with its result
// and (when due) its live progress, the other jobs of the policy for queueing, and the streams in use.
import type { Informer } from "../../kube/informer.ts";
import { parseTime } from "../../kube/resources.ts";
import type { CopyResult } from "../../mediaagent/protocol.ts";
import {
  attemptOf,
  type CopySide,
  type OtherJob,
  partPodName,
  type PartPod,
  type RunFacts,
  type TargetFacts,
  TERMINAL,
} from "../../policy/auxcopy.ts";
import { rulesOf } from "../../policy/copyrules.ts";
import { labelValue } from "../../policy/names.ts";
import { effectiveSource } from "../../policy/references.ts";
import type { Window } from "../../policy/windows.ts";
import type { Manager } from "../../runtime/manager.ts";
import { controllerRef } from "../../runtime/objects.ts";
import { copyAccess } from "../agent/access.ts";
import { COPY_TASKS, podActive, podsOnRepository, prunes, repositoryRefusal, taskOf } from "../agent/busy.ts";
import { Label } from "../../policy/labels.ts";
import { endedAgentHosts, PENDING_GIVE_UP_MS, stuckPending } from "../agent/pods.ts";
import { podProgress } from "../agent/progress.ts";
import { agentResult, type PodObj } from "../agent/results.ts";
import { type AcjObj, AuxCopyJobs, type CopyObj, type LibraryObj, policyFacts, type PolicyObj } from "../resources.ts";
import type { ControllerSettings } from "../settings.ts";

/** Index names (the informers are shared: names of this controller's own). */
export const JOBS_BY_POLICY = "auxcopy/jobs-by-policy";
export const COPIES_BY_POLICY = "auxcopy/copies-by-policy";
export const COPIES_BY_LIBRARY = "auxcopy/copies-by-library";
export const key = (ns: string | undefined, name: string): string => `${ns}/${name}`;

export interface Caches {
  mgr: Manager;
  settings: ControllerSettings;
  jobs: Informer<AcjObj>;
  policies: Informer<PolicyObj>;
  copies: Informer<CopyObj>;
  libraries: Informer<LibraryObj>;
  agentPods: Informer<PodObj>;
  /** When each pod's progress was last read: at most one log read per pod per interval. */
  progressReadAt: Map<string, number>;
}

export async function gather(c: Caches, acj: AcjObj, now: number): Promise<RunFacts> {
  const ns = acj.metadata.namespace as string;
  const st = acj.status ?? {};
  const policy = c.policies.get(ns, acj.spec.storagePolicy);
  const mine = c.agentPods
    .list(ns)
    .filter((p) => p.metadata.ownerReferences?.some((r) => r.kind === "AuxCopyJob" && r.uid === acj.metadata.uid));
  // Targets matter only to a job that goes on.
  const goesOn = policy && !TERMINAL.has(st.phase ?? "") && !acj.spec.cancel && !acj.spec.suspend;
  const targets = goesOn ? await Promise.all(targetsOf(c, acj, policy).map((name) => targetFacts(c, acj, policy, mine, name, now))) : [];
  return {
    job: {
      name: acj.metadata.name,
      namespace: ns,
      uid: acj.metadata.uid as string,
      resourceVersion: acj.metadata.resourceVersion,
      createdAt: acj.metadata.creationTimestamp ?? "",
      labels: acj.metadata.labels,
      spec: acj.spec,
      status: st,
      owner: controllerRef(acj, AuxCopyJobs),
    },
    policy: policy && {
      name: policy.metadata.name,
      primaryCopy: policyFacts(policy).primaryCopy,
      timeZone: policy.spec.timeZone,
      operationWindows: policy.spec.operationWindows as Window[] | undefined,
    },
    pods: mine.map((p) => p.metadata.name),
    targets,
    others: c.jobs.byIndex(JOBS_BY_POLICY, key(ns, acj.spec.storagePolicy)).map(otherJob),
    streamQueue: c.jobs
      .list(ns)
      .filter(
        (o) =>
          o.metadata.uid !== acj.metadata.uid &&
          (o.status?.copies ?? []).some((p) => p.phase === "Waiting" && p.queuePosition !== undefined),
      )
      .map((o) => ({ createdAt: o.metadata.creationTimestamp ?? "", name: o.metadata.name })),
    streams: streamsInUse(c, acj, targets),
    settings: {
      agentImage: c.settings.agentImage,
      retryBaseMs: c.settings.retryBaseMs,
      progressIntervalMs: c.settings.progressIntervalMs,
      pendingGiveUpMs: PENDING_GIVE_UP_MS,
    },
    now,
  };
}

/** The job's copies, else every active secondary copy of the policy; in name order. */
function targetsOf(c: Caches, acj: AcjObj, policy: PolicyObj): string[] {
  const ns = acj.metadata.namespace;
  const primary = policyFacts(policy).primaryCopy;
  const all = c.copies.byIndex(COPIES_BY_POLICY, key(ns, policy.metadata.name));
  return (acj.spec.copies ?? all.filter((x) => x.metadata.name !== primary && x.spec.active !== false).map((x) => x.metadata.name)).sort();
}

async function targetFacts(c: Caches, acj: AcjObj, policy: PolicyObj, mine: PodObj[], name: string, now: number): Promise<TargetFacts> {
  const ns = acj.metadata.namespace as string;
  const copy = c.copies.get(ns, name);
  const pf = policyFacts(policy);
  if (!copy || copy.spec.storagePolicy !== policy.metadata.name || name === pf.primaryCopy) return { name, deadHosts: [] };
  const sourceName = effectiveSource(
    {
      name,
      storagePolicy: copy.spec.storagePolicy,
      copyType: copy.spec.copyType ?? "Synchronous",
      sourceCopy: copy.spec.sourceCopy,
      active: copy.spec.active ?? true,
      createdAt: "",
    },
    pf,
  ) as string;
  const source = c.copies.get(ns, sourceName);
  const pods = c.agentPods.list(ns);
  const aging = [copy, source]
    .flatMap((x) => (x ? podsOnRepository(pods, { name: x.metadata.name, uid: x.metadata.uid }) : []))
    .find(prunes);
  const prev = (acj.status?.copies ?? []).find((p) => p.name === name) ?? { name };
  const { attempt, pass } = attemptOf(prev);
  const earlier = Array.from({ length: attempt - 1 }, (_, i) => partPodName(acj.metadata.name, name, pass, i + 1));
  const settled = prev.phase === "Completed" || prev.phase === "Failed";
  const pod = mine.find((p) => p.metadata.name === partPodName(acj.metadata.name, name, pass, attempt));
  return {
    name,
    copy: {
      ...side(c, copy, "target"),
      source: sourceName,
      hold: (copy.status?.conditions ?? []).find((x) => x.type === "Ready" && x.reason === "BackupsRequired")?.message,
      rules: rulesOf(copy, policy, now),
    },
    sourceCopy: source && side(c, source, "source"),
    agingPod: aging?.metadata.name,
    pod: pod && !settled ? await partPod(c, pod, now) : undefined,
    deadHosts: endedAgentHosts(pods, earlier),
  };
}

function side(c: Caches, copy: CopyObj, role: string): CopySide {
  const lib = c.libraries.get(copy.metadata.namespace as string, copy.spec.library);
  return {
    name: copy.metadata.name,
    library: lib && { name: lib.metadata.name, phase: lib.status?.phase, maxStreams: lib.spec.maxStreams ?? 10 },
    refusal: repositoryRefusal(copy),
    repositoryReady: copy.status?.repositoryReady === true,
    access: lib && copyAccess(copy, lib, role, true),
    placement: copy.spec.mediaAgent as CopySide["placement"],
  };
}

/** The attempt's pod: its result once it ended; while it runs, its progress when a read is due. */
async function partPod(c: Caches, pod: PodObj, now: number): Promise<PartPod> {
  const name = pod.metadata.name;
  const result = agentResult<CopyResult>(pod);
  const facts: PartPod = { name, uid: pod.metadata.uid, createdAt: parseTime(pod.metadata.creationTimestamp), result };
  if (result) return facts;
  facts.stuck = stuckPending(pod, now);
  const interval = c.settings.progressIntervalMs ?? 2000;
  const due = pod.status?.phase === "Running" && now - (c.progressReadAt.get(name) ?? 0) >= interval;
  if (due) {
    c.progressReadAt.set(name, now);
    if (c.progressReadAt.size > 10_000) c.progressReadAt.delete(c.progressReadAt.keys().next().value as string);
    facts.progress = await podProgress(c.mgr, pod.metadata.namespace as string, name);
  }
  facts.progressReadAt = c.progressReadAt.get(name);
  return facts;
}

function otherJob(o: AcjObj): OtherJob {
  return {
    name: o.metadata.name,
    uid: o.metadata.uid,
    createdAt: o.metadata.creationTimestamp ?? "",
    phase: o.status?.phase,
    hasStatus: o.status !== undefined,
    specCopies: o.spec.copies,
    parts: (o.status?.copies ?? []).map((p) => ({ name: p.name, phase: p.phase })),
  };
}

/** Live copy pods of the namespace: this job's, and on each library of its parts (as target or source). */
function streamsInUse(c: Caches, acj: AcjObj, targets: TargetFacts[]): RunFacts["streams"] {
  // Snap copies (SnapVault) share the libraries' streams with aux copies.
  const live = c.agentPods.list(acj.metadata.namespace).filter((p) => podActive(p) && COPY_TASKS.includes(taskOf(p)));
  const libraries = new Set(targets.flatMap((t) => [t.copy?.library?.name, t.sourceCopy?.library?.name]).filter((l) => l !== undefined));
  const on = (lib: string) =>
    live.filter(
      (p) => p.metadata.labels?.[Label.targetLibrary] === labelValue(lib) || p.metadata.labels?.[Label.sourceLibrary] === labelValue(lib),
    ).length;
  return {
    // By owner, not object identity: the cache may hand out a newer copy of a pod during this reconcile.
    job: live.filter((p) => p.metadata.ownerReferences?.some((o) => o.uid === acj.metadata.uid)).length,
    byLibrary: Object.fromEntries([...libraries].map((l) => [l, on(l)])),
  };
}
