// Data aging's facts, read from the caches into plain objects for the plan (policy/aging.ts).
import type { Informer } from "../../kube/informer.ts";
import type { PodPlacement } from "../../mediaagent/pod.ts";
import type { AgeResult } from "../../mediaagent/protocol.ts";
import { type AgingFacts, type AgingPod, type AgingPodBase, earlierRunPods } from "../../policy/aging.ts";
import { rulesOf } from "../../policy/copyrules.ts";
import { type CopyFacts, holdersOf } from "../../policy/references.ts";
import type { RetentionOverride, RetentionSpec } from "../../policy/retention.ts";
import type { Window } from "../../policy/windows.ts";
import type { Condition } from "../../policy/conditions.ts";
import { controllerRef } from "../../runtime/objects.ts";
import { copyAccess } from "../agent/access.ts";
import { podActive, podsOnRepository, readsOnly, repositoryRefusal, taskOf } from "../agent/busy.ts";
import { Annotation, Label } from "../../policy/labels.ts";
import { endedAgentHosts } from "../agent/pods.ts";
import { agentResult, type PodObj } from "../agent/results.ts";
import { type CopyObj, type LibraryObj, PolicyCopies, policyFacts, type PolicyObj } from "../resources.ts";

export interface AgingCaches {
  copies: Informer<CopyObj>;
  policies: Informer<PolicyObj>;
  libraries: Informer<LibraryObj>;
  pods: Informer<PodObj>;
}

/** The facts of a copy's data aging at `now`; undefined when the copy is gone. */
export function gatherAging(
  c: AgingCaches,
  image: string,
  ns: string,
  name: string,
  now: number,
): { facts: AgingFacts; copy: CopyObj; library?: LibraryObj } | undefined {
  const copy = c.copies.get(ns, name);
  if (!copy) return undefined;
  const policy = c.policies.get(ns, copy.spec.storagePolicy);
  const lib = c.libraries.get(ns, copy.spec.library);
  const nsPods = c.pods.list(ns);
  const status = { ...(copy.status?.dataAging ?? {}) };
  const facts: AgingFacts = {
    now,
    copy: {
      name: copy.metadata.name,
      namespace: ns,
      generation: copy.metadata.generation,
      createdAt: copy.metadata.creationTimestamp,
      status,
      conditions: copy.status?.conditions as Condition[] | undefined,
      repositoryReady: !!copy.status?.repositoryReady,
      repositoryId: copy.status?.repositoryId,
      lastScanTime: copy.status?.lastScanTime,
      requestedAt: copy.metadata.annotations?.[Annotation.dataAgingRequested],
      enabled: copy.spec.retention?.enableDataAging !== false,
      retention: copy.spec.retention as RetentionSpec | undefined,
      overrides: copy.spec.jobOverrides as RetentionOverride[] | undefined,
      confirmMassAgingUntil: copy.spec.retention?.confirmMassAgingUntil,
      recovered: copy.status?.recovered?.dataAging,
    },
    policy: policy && {
      name: policy.metadata.name,
      timeZone: policy.spec.timeZone,
      schedule: policy.spec.dataAging ?? {},
      operationWindows: policy.spec.operationWindows as Window[] | undefined,
    },
    refusal: repositoryRefusal(copy),
    libraryReady: lib?.status?.phase === "Ready",
    pods: nsPods
      .filter((p) => p.metadata.ownerReferences?.some((o) => o.kind === "PolicyCopy" && o.uid === copy.metadata.uid))
      .map(agingPod),
    repositoryPods: podsOnRepository(nsPods, { name: copy.metadata.name, uid: copy.metadata.uid })
      .filter((p) => !readsOnly(p))
      .map((p) => p.metadata.name),
    pod: policy && lib && podBase(c, image, copy, policy, lib, now),
    deadHosts: endedAgentHosts(nsPods, earlierRunPods(copy.metadata.name, status.runs ?? 0)),
    awaitingFirstScan: !copy.status?.lastScanTime,
  };
  return { facts, copy, library: lib };
}

function agingPod(p: PodObj): AgingPod {
  const result = agentResult<AgeResult>(p);
  return {
    name: p.metadata.name,
    task: taskOf(p),
    active: podActive(p),
    dryRun: p.metadata.labels?.[Label.dryRun] === "true",
    catalogTime: p.metadata.annotations?.[Annotation.catalogTime],
    ...(result ? { result } : {}),
  };
}

/** What every pod of the copy's data aging takes: the copy's repository and the copies that hold its jobs. */
function podBase(c: AgingCaches, image: string, copy: CopyObj, policy: PolicyObj, lib: LibraryObj, now: number): AgingPodBase {
  return {
    namespace: copy.metadata.namespace as string,
    owner: controllerRef(copy, PolicyCopies),
    image,
    target: copyAccess(copy, lib, "target"),
    downstream: holders(c, copy, policy, lib, now),
    placement: copy.spec.mediaAgent as PodPlacement | undefined,
  };
}

/**
 * The copies this one holds jobs for (references.ts holdersOf): those filled from it, those the last promotion
 * re-pointed away from it (the old primary), and, for the primary, those whose sources never reach it. One that
 * cannot be read (library or repository not ready) needs every job.
 */
function holders(c: AgingCaches, copy: CopyObj, policy: PolicyObj, lib: LibraryObj, now: number): AgingPodBase["downstream"] {
  const ns = copy.metadata.namespace as string;
  const all = c.copies.list(ns);
  const facts = new Map(all.map((o): [string, CopyFacts] => [o.metadata.name, copyFacts(o)]));
  const pf = policyFacts(policy);
  return all
    .filter((o) => o.spec.storagePolicy === policy.metadata.name && o.metadata.name !== copy.metadata.name)
    .flatMap((o) => {
      const h = holdersOf(facts.get(o.metadata.name) as CopyFacts, pf, facts).find((x) => x.name === copy.metadata.name);
      return h ? [{ o, unreadable: !!h.unreadable }] : [];
    })
    .map(({ o, unreadable }, i) => {
      const dl = c.libraries.get(ns, o.spec.library);
      const reachable = !unreadable && !!dl && dl.status?.phase === "Ready" && !!o.status?.repositoryReady;
      return {
        name: o.metadata.name,
        access: dl ? copyAccess(o, dl, `down${i}`) : copyAccess(copy, lib, `down${i}`),
        rules: rulesOf(o, policy, now),
        active: o.spec.active ?? true,
        ...(reachable ? {} : { unreachable: true }),
      };
    });
}

const copyFacts = (o: CopyObj): CopyFacts => ({
  name: o.metadata.name,
  storagePolicy: o.spec.storagePolicy,
  copyType: o.spec.copyType ?? "Synchronous",
  sourceCopy: o.spec.sourceCopy,
  active: o.spec.active ?? true,
  createdAt: "",
});
