// The StoragePolicy's own writes besides its status: the client Secret and the automatic AuxCopyJobs.
import { type ApiError, isRejected } from "../../kube/errors.ts";
import { apiVersionOf, Secrets } from "../../kube/resources.ts";
import { labelValue } from "../../policy/names.ts";
import type { Problem } from "../../policy/references.ts";
import { slotName } from "../../policy/schedule.ts";
import type { AutomaticPlan, ClientSecretDecision } from "../../policy/storagepolicy.ts";
import type { Manager } from "../../runtime/manager.ts";
import { controllerRef } from "../../runtime/objects.ts";
import { Annotation, Label, MANAGED_BY } from "../../policy/labels.ts";
import { AuxCopyJobs, type PolicyObj, StoragePolicies, statusManager } from "../resources.ts";

/** Writes the client Secret when the decision says so; a refusal is a problem of the policy (the same write would fail again). */
export async function applyClientSecret(
  mgr: Manager,
  policy: PolicyObj,
  d: ClientSecretDecision,
): Promise<{ name?: string; problem?: Problem }> {
  if (!d.write) return { name: d.name, problem: d.problem };
  try {
    await mgr.client.apply(
      Secrets,
      {
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
          name: d.name,
          namespace: policy.metadata.namespace,
          labels: { [Label.managedBy]: MANAGED_BY, [Label.storagePolicy]: labelValue(policy.metadata.name) },
          annotations: { [Annotation.primaryCopy]: d.write.primaryCopy },
          ownerReferences: [controllerRef(policy, StoragePolicies)],
        },
        type: "Opaque",
        data: d.write.data,
      },
      statusManager,
    );
  } catch (err) {
    if (!isRejected(err)) throw err;
    return {
      problem: { reason: "ClientSecretRejected", message: `the API server refused Secret "${d.name}": ${(err as ApiError).apiMessage}` },
    };
  }
  mgr.events.event(policy, "Normal", "ClientSecretUpdated", `Secret ${d.name} points at the primary copy "${d.write.primaryCopy}"`);
  return { name: d.name };
}

/**
 * Deletes the automatic jobs beyond the history and creates the AuxCopyJob of the slot due now (owned by the policy,
 * labelled trigger=schedule). A job the API server refuses lets this slot pass (the next one tries again) instead of
 * a create loop.
 */
export async function applyAutomaticRuns(mgr: Manager, policy: PolicyObj, plan: AutomaticPlan): Promise<void> {
  const ns = policy.metadata.namespace as string;
  for (const name of plan.deleteJobs) await mgr.client.deleteIfExists(AuxCopyJobs, ns, name);
  if (plan.skippedBy !== undefined)
    mgr.events.event(policy, "Normal", "AuxCopySkipped", `automatic aux copy skipped: operation window "${plan.skippedBy}"`);
  if (plan.createSlot === undefined) return;
  const name = slotName(policy.metadata.name, plan.createSlot);
  try {
    await mgr.client.createIfAbsent(AuxCopyJobs, {
      apiVersion: apiVersionOf(AuxCopyJobs),
      kind: AuxCopyJobs.kind,
      metadata: {
        name,
        namespace: ns,
        labels: { [Label.storagePolicy]: labelValue(policy.metadata.name), [Label.trigger]: "schedule" },
        ownerReferences: [controllerRef(policy, StoragePolicies)],
      },
      spec: { storagePolicy: policy.metadata.name },
    });
  } catch (err) {
    if (!isRejected(err)) throw err;
    mgr.events.event(policy, "Warning", "AuxCopyRejected", `automatic aux copy ${name}: ${(err as ApiError).apiMessage}`);
    return;
  }
  mgr.events.event(policy, "Normal", "AuxCopyScheduled", `automatic aux copy ${name}`);
}
