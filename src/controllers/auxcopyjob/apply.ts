// Carrying out an AuxCopyJob plan: what the shared applier does (pods, status with Ready, events, metrics), and
// around it what only this kind needs: probes of libraries a pod found unreachable, and the follow-up run for jobs
// beyond jobLimit (created before the status that names it). Copies whose catalogs a run changed are scanned again by
// the PolicyCopy controller, which watches AuxCopyJobs (their history).
import { apiVersionOf } from "../../kube/resources.ts";
import type { RunFacts } from "../../policy/auxcopy.ts";
import { type AuxCopyPlan, planAuxCopy } from "../../policy/auxcopy-run.ts";
import { labelValue } from "../../policy/names.ts";
import type { Manager } from "../../runtime/manager.ts";
import { controllerRef } from "../../runtime/objects.ts";
import type { Result } from "../../runtime/result.ts";
import { Label } from "../../policy/labels.ts";
import type { ProbeRequests } from "../agent/probes.ts";
import type { Applier } from "../apply.ts";
import { type AcjObj, AuxCopyJobs } from "../resources.ts";

export interface ApplyDeps {
  mgr: Manager;
  applier: Applier;
  probes?: ProbeRequests;
}

export async function applyAuxCopy(d: ApplyDeps, acj: AcjObj, facts: RunFacts, plan: AuxCopyPlan): Promise<Result> {
  const ns = facts.job.namespace;
  for (const p of plan.probes ?? []) d.probes?.request(ns, p.library, p.why, facts.now);
  if (plan.followUp) await createFollowUp(d.mgr, acj, plan.followUp);
  // A pod the API server refused is a fact: the plan decides again with it, and that status is written.
  let final = plan;
  const result = await d.applier.apply(acj, plan, (rejected) => (final = planAuxCopy({ ...facts, rejected })));
  // Only a refused pod's last attempt can end the run here; then its follow-up comes after the status.
  if (final.followUp && !plan.followUp) await createFollowUp(d.mgr, acj, final.followUp);
  return result;
}

/**
 * The follow-up run: the same spec for the copies with jobs left, the same labels, and a reference (not controlling)
 * to the run it follows, so that it is found from that run.
 */
async function createFollowUp(mgr: Manager, acj: AcjObj, f: NonNullable<AuxCopyPlan["followUp"]>): Promise<void> {
  await mgr.client.createIfAbsent(AuxCopyJobs, {
    apiVersion: apiVersionOf(AuxCopyJobs),
    kind: AuxCopyJobs.kind,
    metadata: {
      name: f.name,
      namespace: acj.metadata.namespace,
      labels: { ...acj.metadata.labels, [Label.follows]: labelValue(acj.metadata.name) },
      ownerReferences: [{ ...controllerRef(acj, AuxCopyJobs), controller: false, blockOwnerDeletion: false }],
    },
    spec: { ...acj.spec, copies: f.copies, suspend: false },
  });
}
