// Promotion's facts, from what the StoragePolicy controller read of its caches, as plain objects for the plan
// (policy/promotion.ts).
import type { Informer } from "../../kube/informer.ts";
import type { AgentPodInput, PodPlacement } from "../../mediaagent/pod.ts";
import type { PlanResult } from "../../mediaagent/protocol.ts";
import { rulesOf } from "../../policy/copyrules.ts";
import type { PromotionFacts } from "../../policy/promotion.ts";
import { type CopyFacts, promotionDownstream } from "../../policy/references.ts";
import { controllerRef } from "../../runtime/objects.ts";
import { copyAccess } from "../agent/access.ts";
import { taskOf } from "../agent/busy.ts";
import { Label } from "../../policy/labels.ts";
import { agentResult, type PodObj } from "../agent/results.ts";
import { type AcjObj, type CopyObj, type LibraryObj, policyFacts, type PolicyObj, StoragePolicies } from "../resources.ts";

export interface PromotionCaches {
  copies: CopyObj[];
  /** Every copy of the namespace. */
  facts: ReadonlyMap<string, CopyFacts>;
  libraries: Informer<LibraryObj>;
  jobs: AcjObj[];
  pods: Informer<PodObj>;
}

export function gatherPromotion(policy: PolicyObj, c: PromotionCaches, image: string, now: number): PromotionFacts {
  const ns = policy.metadata.namespace as string;
  const name = policy.metadata.name;
  const mine = c.copies.filter((o) => o.spec.storagePolicy === name);
  const libraryReady = (o: CopyObj) => c.libraries.get(ns, o.spec.library)?.status?.phase === "Ready";
  const copies = new Map(
    mine.map((o) => [
      o.metadata.name,
      {
        ...(c.facts.get(o.metadata.name) as CopyFacts),
        libraryReady: libraryReady(o),
        repositoryReady: o.status?.repositoryReady ?? false,
      },
    ]),
  );
  const checkPods = c.pods
    .list(ns)
    .filter(
      (p) => taskOf(p) === "plan" && p.metadata.ownerReferences?.some((o) => o.kind === "StoragePolicy" && o.uid === policy.metadata.uid),
    )
    .map((p) => {
      const result = agentResult<PlanResult>(p);
      return { name: p.metadata.name, ...(result ? { result } : {}) };
    });
  return {
    now,
    policy: policyFacts(policy),
    requested: policy.spec.primaryCopy,
    forceTo: policy.spec.forcePromotionTo,
    timeZone: policy.spec.timeZone,
    status: {
      primaryCopy: policy.status?.primaryCopy,
      promotion: policy.status?.promotion,
      lastPromotion: policy.status?.lastPromotion,
    },
    copies,
    jobs: c.jobs
      .filter((j) => j.spec.storagePolicy === name)
      .map((j) => ({ name: j.metadata.name, phase: j.status?.phase, completionTime: j.status?.completionTime })),
    checkPods,
    checkPod: checkPod(policy, c, mine, image, now),
  };
}

/**
 * The check pod of a pending request (from the primary in force to spec.primaryCopy), but its name: it reads both
 * catalogs and those of the copies the promotion re-points to the candidate, whose needs count too. One that cannot
 * be read (library or repository not ready, sources never reaching the primary) may need any job.
 */
function checkPod(
  policy: PolicyObj,
  c: PromotionCaches,
  mine: CopyObj[],
  image: string,
  now: number,
): Omit<AgentPodInput, "name"> | undefined {
  const ns = policy.metadata.namespace as string;
  const byName = new Map(mine.map((o) => [o.metadata.name, o]));
  const fromName = policy.status?.primaryCopy;
  const from = fromName === undefined ? undefined : byName.get(fromName);
  const to = byName.get(policy.spec.primaryCopy);
  const lib = (o: CopyObj) => c.libraries.get(ns, o.spec.library);
  const fromLib = from && lib(from);
  const toLib = to && lib(to);
  if (!from || !to || from === to || !fromLib || !toLib) return undefined;
  const downstream = promotionDownstream(from.metadata.name, to.metadata.name, policyFacts(policy), c.facts).map((x, i) => {
    const o = byName.get(x.name) as CopyObj;
    const l = lib(o);
    const readable = !x.unreadable && !!l && l.status?.phase === "Ready" && !!o.status?.repositoryReady;
    return {
      name: x.name,
      access: readable && l ? copyAccess(o, l, `down${i}`) : copyAccess(to, toLib, `down${i}`),
      rules: rulesOf(o, policy, now),
      active: o.spec.active ?? true,
      ...(readable ? {} : { unreachable: true }),
    };
  });
  return {
    task: "plan",
    namespace: ns,
    owner: controllerRef(policy, StoragePolicies),
    image,
    source: copyAccess(from, fromLib, "source"),
    target: copyAccess(to, toLib, "target"),
    downstream,
    // The candidate's own rules, deferral aside: a deferred job is still to be copied.
    plan: { rules: { ...rulesOf(to, policy, now), copyType: "Synchronous", deferDays: 0 } },
    deadlineSeconds: 1800,
    placement: to.spec.mediaAgent as PodPlacement | undefined,
    labels: { [Label.promoteTo]: to.metadata.name },
  };
}
