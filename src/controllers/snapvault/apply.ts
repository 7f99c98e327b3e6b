// Carrying out a SnapVault plan: VolumeSnapshots to cut and restored volumes first (a pod that mounts a volume must not
// start before it is asked for), then what the shared applier does (pods, status with Ready, events, metrics), then
// the deletions the plan allows once status records why (restored volumes and snapshots no copy needs).
import type { KubeObject, ResourceType } from "../../kube/resources.ts";
import { planSnapVaultRun, type SnapVaultPlan, type SnapVaultRunFacts } from "../../policy/snapvault-run.ts";
import type { Manager } from "../../runtime/manager.ts";
import type { Result } from "../../runtime/result.ts";
import type { ProbeRequests } from "../agent/probes.ts";
import type { Applier } from "../apply.ts";
import { Annotation } from "../../policy/labels.ts";
import { PersistentVolumeClaims, PolicyCopies, type SnapVaultObj } from "../resources.ts";

export const VolumeSnapshots: ResourceType = {
  group: "snapshot.storage.k8s.io",
  version: "v1",
  plural: "volumesnapshots",
  kind: "VolumeSnapshot",
  namespaced: true,
};

export interface ApplyDeps {
  mgr: Manager;
  applier: Applier;
  probes?: ProbeRequests;
}

export async function applySnapVault(d: ApplyDeps, sv: SnapVaultObj, facts: SnapVaultRunFacts, plan: SnapVaultPlan): Promise<Result> {
  const now = facts.now;
  const ns = sv.metadata.namespace as string;
  for (const s of plan.createSnapshots) await d.mgr.client.createIfAbsent(VolumeSnapshots, s as unknown as KubeObject);
  for (const c of plan.createClaims) await d.mgr.client.createIfAbsent(PersistentVolumeClaims, c as unknown as KubeObject);
  if (plan.probe) d.probes?.request(ns, sv.spec.destination.library, plan.probe, now);
  // A pod the API server refused is a fact: the plan decides again with it, and that status is written.
  const result = await d.applier.apply(sv, plan, (rejected) => planSnapVaultRun({ ...facts, rejected }));
  // Backup jobs landed on the primary copy: its catalog is read now, so that status and aux copies see them.
  if (plan.rescan)
    await d.mgr.client
      .mergePatch(PolicyCopies, ns, plan.rescan, {
        metadata: { annotations: { [Annotation.rescanRequested]: new Date(now).toISOString() } },
      })
      .catch((err: unknown) => d.mgr.log.warn({ err, copy: `${ns}/${plan.rescan}` }, "could not ask for a scan of the primary copy"));
  for (const name of plan.deleteClaims) await d.mgr.client.deleteIfExists(PersistentVolumeClaims, ns, name);
  for (const name of plan.deleteSnapshots) await d.mgr.client.deleteIfExists(VolumeSnapshots, ns, name);
  return result;
}
