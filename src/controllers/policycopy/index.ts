// PolicyCopy: checks what the copy names (library, policy, source copy, password Secret), publishes its role and
// precedence, and keeps its repository: init and scan pods. Gather (gather.ts) → plan (policy/policycopy.ts) →
// apply (the shared applier).
import { planCopy } from "../../policy/policycopy.ts";
import { watch } from "../../runtime/controller.ts";
import type { Manager } from "../../runtime/manager.ts";
import { done } from "../../runtime/result.ts";
import { Applier } from "../apply.ts";
import { PolicyCopies } from "../resources.ts";
import type { ControllerSettings } from "../settings.ts";
import { gatherCopy } from "./gather.ts";
import { copiesBy, copiesOfJob, keysOf, policyCaches } from "./indexes.ts";

export function registerPolicyCopyController(mgr: Manager, settings: ControllerSettings): void {
  const c = policyCaches(mgr);
  const secrets = mgr.secrets();
  const now = settings.now ?? Date.now;
  const applier = new Applier(mgr, PolicyCopies, now);
  mgr.addController({
    name: "policycopy",
    forType: c.copies,
    owns: [c.pods],
    watches: [
      watch(c.policies, copiesBy(c, "policy")),
      watch(c.libraries, copiesBy(c, "library")),
      watch(secrets.metadata, copiesBy(c, "secret")),
      // Sources and cycles depend on the other copies of the namespace; a copy kept off a shared repository (in any
      // namespace) looks again when another copy changes or goes.
      watch(c.copies, (o) =>
        keysOf([...c.copies.byIndex("namespace", o.metadata.namespace ?? ""), ...c.copies.byIndex("refused", "refused")]),
      ),
      // An aux copy that copied jobs changed the catalogs of its copies and their sources: a scan is due.
      watch(c.jobs, copiesOfJob),
    ],
    reconcile: async (req) => {
      const copy = c.copies.get(req.namespace, req.name);
      if (!copy) return done();
      const t = now();
      const facts = await gatherCopy(c, secrets, settings, copy, t);
      return await applier.apply(copy, planCopy(facts, t), (rejected) => planCopy(facts, t, rejected));
    },
  });
}
