// SnapVault: checks the destination library, the password Secret and the backup copy's policy it names.
// Gather (here: three cache reads) → plan (policy/snapvault.ts) → apply.
import { planSnapVault } from "../../policy/snapvault.ts";
import { secretKeys } from "../../policy/references.ts";
import { watch } from "../../runtime/controller.ts";
import type { Manager } from "../../runtime/manager.ts";
import { done } from "../../runtime/result.ts";
import { Applier } from "../apply.ts";
import { Libraries, SnapVaults, type SnapVaultObj, StoragePolicies } from "../resources.ts";

const key = (ns: string | undefined, name: string) => `${ns}/${name}`;

export function registerSnapVaultController(mgr: Manager, now: () => number): void {
  const vaults = mgr.informer<SnapVaultObj>(SnapVaults);
  const libraries = mgr.informer(Libraries);
  const policies = mgr.informer(StoragePolicies);
  const secrets = mgr.secrets();
  vaults.addIndexer("library", (v) => [key(v.metadata.namespace, v.spec.destination.library)]);
  vaults.addIndexer("secret", (v) => [key(v.metadata.namespace, v.spec.destination.encryption.passwordSecret.name)]);
  vaults.addIndexer("policy", (v) =>
    v.spec.backupCopy?.storagePolicy ? [key(v.metadata.namespace, v.spec.backupCopy.storagePolicy)] : [],
  );
  const vaultsOf = (index: string) => (o: { metadata: { namespace?: string; name: string } }) =>
    vaults.byIndex(index, key(o.metadata.namespace, o.metadata.name)).map((v) => key(v.metadata.namespace, v.metadata.name));
  const applier = new Applier(mgr, SnapVaults, now);
  mgr.addController({
    name: "snapvault",
    forType: vaults,
    watches: [watch(libraries, vaultsOf("library")), watch(policies, vaultsOf("policy")), watch(secrets.metadata, vaultsOf("secret"))],
    reconcile: async (req) => {
      const sv = vaults.get(req.namespace, req.name);
      if (!sv) return done();
      const ns = req.namespace as string;
      const bc = sv.spec.backupCopy;
      const plan = planSnapVault({
        spec: sv.spec,
        libraryExists: libraries.get(ns, sv.spec.destination.library) !== undefined,
        policyExists: !bc?.storagePolicy || policies.get(ns, bc.storagePolicy) !== undefined,
        secrets: secretKeys(await secrets.getMany(ns, [sv.spec.destination.encryption.passwordSecret.name])),
      });
      return await applier.apply(sv, plan);
    },
  });
}
