// StoragePolicy: checks that its primary copy is a copy of its own, publishes its copies (by precedence) and the
// primary in force, carries out promotions (controllers/promotion.ts), keeps the client Secret, and creates the
// automatic aux copy jobs. Gather (gather.ts) → plans (policy/storagepolicy.ts) → apply (apply.ts, the shared applier).
import { keyOf, parseTime } from "../../kube/resources.ts";
import { automaticRuns, clientSecretDecision, planPolicyStatus, policyCopies } from "../../policy/storagepolicy.ts";
import type { Window } from "../../policy/windows.ts";
import { watch } from "../../runtime/controller.ts";
import type { Manager } from "../../runtime/manager.ts";
import { done, type Result } from "../../runtime/result.ts";
import { Applier } from "../apply.ts";
import { keysOf, type PolicyCaches, policiesOfCopies, policyCaches } from "../policycopy/indexes.ts";
import { promotionStep } from "../promotion/index.ts";
import { type PolicyObj, policyFacts, StoragePolicies } from "../resources.ts";
import type { ControllerSettings } from "../settings.ts";
import { applyAutomaticRuns, applyClientSecret } from "./apply.ts";
import { autoJobs, clientSecretFacts, copyFacts, copyViews } from "./gather.ts";

type Named = { metadata: { namespace?: string; name: string } };

export function registerStoragePolicyController(mgr: Manager, settings: ControllerSettings): void {
  const c = policyCaches(mgr);
  const secrets = mgr.secrets();
  const now = settings.now ?? Date.now;
  const applier = new Applier(mgr, StoragePolicies, now);
  const namedBy = (index: string) => (o: Named) => keysOf(c.policies.byIndex(index, keyOf(o.metadata)));
  const onLibraries = (libs: Named[]) => libs.flatMap((l) => policiesOfCopies(c.copies.byIndex("library", keyOf(l.metadata))));
  mgr.addController({
    name: "storagepolicy",
    forType: c.policies,
    // Promotion check pods.
    owns: [c.pods],
    watches: [
      // A copy changes its own policy's status, and that of a policy whose primaryCopy names it (a copy can claim
      // a policy by naming it, or stop naming it: the watch maps the old version too).
      // A copy's newest job starts continuous copying to the copies it fills, in whichever policy they are.
      watch(c.copies, (o) => [
        ...policiesOfCopies([o]),
        ...namedBy("primary")(o),
        ...policiesOfCopies(c.copies.byIndex("source", keyOf(o.metadata))),
      ]),
      // An automatic job that ends lets the next one start, and trims the history.
      watch(c.jobs, (j) => [`${j.metadata.namespace}/${j.spec.storagePolicy}`]),
      // The client Secret copies the primary's password and its library's credentials; the Secret itself too.
      watch(secrets.metadata, (s) => [
        ...namedBy("clientSecret")(s),
        ...policiesOfCopies(c.copies.byIndex("secret", keyOf(s.metadata))),
        ...onLibraries(c.libraries.byIndex("secret", keyOf(s.metadata))),
      ]),
      watch(c.libraries, (l) => onLibraries([l])),
    ],
    reconcile: async (req) => {
      const policy = c.policies.get(req.namespace, req.name);
      if (!policy) return done();
      return await reconcilePolicy(mgr, settings, c, applier, policy);
    },
  });
}

async function reconcilePolicy(
  mgr: Manager,
  settings: ControllerSettings,
  c: PolicyCaches,
  applier: Applier,
  policy: PolicyObj,
): Promise<Result> {
  const ns = policy.metadata.namespace as string;
  const t = (settings.now ?? Date.now)();
  const copies = c.copies.byIndex("namespace", ns);
  const facts = new Map(copies.map((o) => [o.metadata.name, copyFacts(o)]));
  const jobs = c.jobs.list(ns);
  const promo = await promotionStep(mgr, settings, policy, { copies, facts, libraries: c.libraries, jobs, pods: c.pods });
  // The rest of the status follows the primary in force after this step.
  const pf = policyFacts({ ...policy, status: { ...policy.status, ...promo.fields } });
  const listed = policyCopies(
    pf,
    copyViews(copies),
    jobs.filter((j) => j.spec.storagePolicy === pf.name).flatMap((j) => j.status?.copies ?? []),
  );
  const auto = automaticRuns(
    {
      policy: policy.metadata.name,
      policyUid: policy.metadata.uid,
      schedule: policy.spec.auxCopySchedule ?? {},
      operatorEnabled: settings.autoAuxCopy !== false,
      timeZone: policy.spec.timeZone,
      windows: policy.spec.operationWindows as Window[] | undefined,
      createdAt: parseTime(policy.metadata.creationTimestamp),
      lastAuxCopyTime: policy.status?.lastAuxCopyTime,
      hasTargets: listed.hasTargets,
      newestSourceJob: listed.newestSourceJob,
      promotionPending: promo.fields.promotion !== undefined,
      jobs: autoJobs(jobs),
    },
    t,
  );
  await applyAutomaticRuns(mgr, policy, auto);
  const primary = c.copies.get(ns, pf.primaryCopy);
  const client = await applyClientSecret(
    mgr,
    policy,
    clientSecretDecision(await clientSecretFacts(mgr.secrets(), c.libraries, policy, primary)),
  );
  const plan = planPolicyStatus({
    pf,
    copies: facts,
    timeZone: policy.spec.timeZone,
    listed,
    promotion: promo,
    automatic: auto,
    client,
    mediaAgentImage: settings.agentImage,
  });
  return await applier.apply(policy, plan);
}
