// Promotion of a secondary copy to primary (docs/operations.md, "Promoting a copy to primary"): the StoragePolicy
// controller's step that turns a change of spec.primaryCopy into the primary in force (status.primaryCopy) once the
// preconditions hold. The count of jobs the candidate lacks comes from a MediaAgent `plan` pod that reads both
// catalogs. This step gathers the facts (gather.ts), plans with policy/promotion.ts, and carries out the plan's pods
// and events with the shared applier; the policy controller writes the returned fields and condition.
import type { Informer } from "../../kube/informer.ts";
import type { Manager } from "../../runtime/manager.ts";
import { type PromotionPlan, type PromotionStep, planPromotion } from "../../policy/promotion.ts";
import type { CopyFacts } from "../../policy/references.ts";
import type { PodObj } from "../agent/results.ts";
import { Applier } from "../apply.ts";
import { type AcjObj, type CopyObj, type LibraryObj, type PolicyObj, StoragePolicies } from "../resources.ts";
import type { ControllerSettings } from "../settings.ts";
import { gatherPromotion } from "./gather.ts";

export type { PromotionStep } from "../../policy/promotion.ts";

/** One applier per manager: its once-memory lives as long as the operator. */
const appliers = new WeakMap<Manager, Applier>();

export async function promotionStep(
  mgr: Manager,
  settings: ControllerSettings,
  policy: PolicyObj,
  ctx: {
    copies: CopyObj[];
    facts: ReadonlyMap<string, CopyFacts>;
    libraries: Informer<LibraryObj>;
    jobs: AcjObj[];
    pods: Informer<PodObj>;
  },
): Promise<PromotionStep> {
  const clock = settings.now ?? Date.now;
  const facts = gatherPromotion(policy, ctx, settings.agentImage, clock());
  let applier = appliers.get(mgr);
  if (!applier) appliers.set(mgr, (applier = new Applier(mgr, StoragePolicies, clock)));
  const plan = planPromotion(facts);
  let final: PromotionPlan = plan;
  // No status in the plan: the policy controller writes the step with the rest of the policy's status.
  await applier.apply(policy, plan, (rejected) => (final = planPromotion({ ...facts, rejected })));
  return final.step;
}
