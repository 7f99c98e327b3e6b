// SnapVault: vault and mirror copies of CSI VolumeSnapshots (docs/snapvault.md). Each run cuts snapshots of the
// selected PVCs (and finds the adopted ones), restores a volume from each ready snapshot the destination lacks and
// copies it with a MediaAgent pod that mounts it read-only; source faults cost a snapshot one attempt of its retry
// budget, destination faults park the run. Gather (gather.ts) → plan (policy/snapvault-run.ts) → apply (apply.ts).
import { Pods } from "../../kube/resources.ts";
import { AGENT_PODS, Label } from "../../policy/labels.ts";
import { planSnapVaultRun } from "../../policy/snapvault-run.ts";
import { watch } from "../../runtime/controller.ts";
import type { Manager } from "../../runtime/manager.ts";
import { done } from "../../runtime/result.ts";
import type { ProbeRequests } from "../agent/probes.ts";
import type { PodObj } from "../agent/results.ts";
import { Applier } from "../apply.ts";
import {
  type CopyObj,
  Libraries,
  PersistentVolumeClaims,
  PolicyCopies,
  type PolicyObj,
  type SnapVaultObj,
  SnapVaults,
  StoragePolicies,
  type LibraryObj,
} from "../resources.ts";
import type { ControllerSettings } from "../settings.ts";
import { applySnapVault, VolumeSnapshots } from "./apply.ts";
import { type Caches, gather, type PvcObj, type VsObj } from "./gather.ts";

const key = (ns: string | undefined, name: string) => `${ns}/${name}`;

export function registerSnapVaultController(mgr: Manager, settings: ControllerSettings, probes?: ProbeRequests): void {
  const now = settings.now ?? Date.now;
  const c: Caches = {
    mgr,
    settings,
    vaults: mgr.informer<SnapVaultObj>(SnapVaults),
    libraries: mgr.informer<LibraryObj>(Libraries),
    policies: mgr.informer<PolicyObj>(StoragePolicies),
    copies: mgr.informer<CopyObj>(PolicyCopies),
    claims: mgr.informer<PvcObj>(PersistentVolumeClaims),
    // Only when the cluster serves snapshots: an informer on a type the server lacks never syncs.
    snapshots: settings.volumeSnapshots ? mgr.informer<VsObj>(VolumeSnapshots) : undefined,
    agentPods: mgr.informer<PodObj>(Pods, { labelSelector: AGENT_PODS }),
    progressReadAt: new Map(),
    progress: new Map(),
  };
  const { vaults } = c;
  const secrets = mgr.secrets();
  vaults.addIndexer("snapvault/library", (v) => [key(v.metadata.namespace, v.spec.destination.library)]);
  vaults.addIndexer("snapvault/secret", (v) => [key(v.metadata.namespace, v.spec.destination.encryption.passwordSecret.name)]);
  vaults.addIndexer("snapvault/policy", (v) => (v.spec.storagePolicy ? [key(v.metadata.namespace, v.spec.storagePolicy)] : []));
  const vaultsOf = (index: string) => (o: { metadata: { namespace?: string; name: string } }) =>
    vaults.byIndex(index, key(o.metadata.namespace, o.metadata.name)).map((v) => key(v.metadata.namespace, v.metadata.name));
  // Snapshots and PVCs (sources and restored volumes) wake every SnapVault of their namespace: there are few.
  const inNamespace = (o: { metadata: { namespace?: string } }) =>
    vaults.list(o.metadata.namespace).map((v) => key(v.metadata.namespace, v.metadata.name));
  // Copy pods of the library end: runs waiting for a stream go on (backup copies: any library, they are few).
  const onLibraryPods = (p: PodObj) => {
    const lib = p.metadata.labels?.[Label.targetLibrary];
    return lib
      ? vaults
          .list(p.metadata.namespace)
          .filter((v) => v.spec.destination.library === lib || v.spec.backupCopy?.enabled)
          .map((v) => key(v.metadata.namespace, v.metadata.name))
      : [];
  };
  const applier = new Applier(mgr, SnapVaults, now);
  const deps = { mgr, applier, probes };
  mgr.addController({
    name: "snapvault",
    forType: vaults,
    owns: [c.agentPods],
    watches: [
      watch(c.libraries, vaultsOf("snapvault/library")),
      watch(c.policies, vaultsOf("snapvault/policy")),
      watch(c.copies, (o) =>
        vaults
          .byIndex("snapvault/policy", key(o.metadata.namespace, o.spec.storagePolicy))
          .filter((v) => v.spec.backupCopy?.enabled)
          .map((v) => key(v.metadata.namespace, v.metadata.name)),
      ),
      watch(secrets.metadata, vaultsOf("snapvault/secret")),
      watch(c.claims, inNamespace),
      watch(c.agentPods, onLibraryPods),
      ...(c.snapshots ? [watch(c.snapshots, inNamespace)] : []),
    ],
    reconcile: async (req) => {
      const sv = vaults.get(req.namespace, req.name);
      if (!sv || sv.metadata.deletionTimestamp) return done();
      const t = now();
      const facts = await gather(c, sv, t);
      return await applySnapVault(deps, sv, facts, planSnapVaultRun(facts));
    },
  });
}
