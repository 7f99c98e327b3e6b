// SnapVault: checks the destination library and the password Secret it names.
import { checkSecrets, type Problem } from "../policy/references.ts";
import type { Manager } from "../runtime/manager.ts";
import { watch } from "../runtime/controller.ts";
import { done } from "../runtime/result.ts";
import { secretKeys } from "./library.ts";
import { Libraries, SnapVaults, type SnapVaultObj, StoragePolicies } from "./resources.ts";
import { writeStatus } from "./status.ts";

export function registerSnapVaultController(mgr: Manager, now: () => number): void {
  const vaults = mgr.informer<SnapVaultObj>(SnapVaults);
  const libraries = mgr.informer(Libraries);
  const policies = mgr.informer(StoragePolicies);
  const secrets = mgr.secrets();
  const inNamespace = (o: { metadata: { namespace?: string } }) =>
    vaults.list(o.metadata.namespace).map((v) => `${v.metadata.namespace}/${v.metadata.name}`);
  mgr.addController({
    name: "snapvault",
    forType: vaults,
    watches: [watch(libraries, inNamespace), watch(policies, inNamespace), watch(secrets.metadata, inNamespace)],
    reconcile: async (req) => {
      const sv = vaults.get(req.namespace, req.name);
      if (!sv) return done();
      const ns = req.namespace as string;
      const problems: Problem[] = [];
      if (!libraries.get(ns, sv.spec.destination.library)) {
        problems.push({
          reason: "LibraryNotFound",
          message: `destination library "${sv.spec.destination.library}" does not exist in this namespace`,
        });
      }
      const pw = sv.spec.destination.encryption.passwordSecret;
      problems.push(
        ...checkSecrets(
          [{ field: "spec.destination.encryption.passwordSecret", name: pw.name, key: pw.key ?? "password" }],
          secretKeys(await secrets.getMany(ns, [pw.name])),
        ),
      );
      const bc = sv.spec.backupCopy;
      if (bc?.enabled && bc.storagePolicy && !policies.get(ns, bc.storagePolicy)) {
        problems.push({
          reason: "StoragePolicyNotFound",
          message: `backupCopy.storagePolicy "${bc.storagePolicy}" does not exist in this namespace`,
        });
      }
      await writeStatus(
        mgr,
        SnapVaults,
        sv,
        { problems, ok: { reason: "ReferencesResolved", message: "destination library and password Secret resolve" } },
        {},
        now(),
      );
      return done();
    },
  });
}
