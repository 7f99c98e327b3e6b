// AuxCopyJob: one run of an auxiliary copy. For each target copy it starts one MediaAgent copy pod that reads the
// source's and the target's catalogs, selects the jobs by the copy's rules (policy/selection.ts) and copies them in
// start order with restic copy. The controller shows each pod's live progress in status (read from its log), keeps
// the result once the pod ends, and retries a failed or killed pod with back-off; a copy whose source is itself a
// target of the run (a cascade) starts once its source's part is done. The reconcile is gather (gather.ts) → plan
// (policy/auxcopy-run.ts, policy/auxcopy.ts) → apply (apply.ts with the shared applier).
import { Pods } from "../../kube/resources.ts";
import { planAuxCopy } from "../../policy/auxcopy-run.ts";
import { watch } from "../../runtime/controller.ts";
import type { Manager } from "../../runtime/manager.ts";
import { done } from "../../runtime/result.ts";
import { AGENT_PODS } from "../../policy/labels.ts";
import type { ProbeRequests } from "../agent/probes.ts";
import type { PodObj } from "../agent/results.ts";
import { Applier } from "../apply.ts";
import {
  type AcjObj,
  AuxCopyJobs,
  type CopyObj,
  Libraries,
  type LibraryObj,
  PolicyCopies,
  type PolicyObj,
  StoragePolicies,
} from "../resources.ts";
import type { ControllerSettings } from "../settings.ts";
import { applyAuxCopy } from "./apply.ts";
import { type Caches, COPIES_BY_LIBRARY, COPIES_BY_POLICY, gather, JOBS_BY_POLICY, key } from "./gather.ts";

export function registerAuxCopyController(mgr: Manager, settings: ControllerSettings, probes?: ProbeRequests): void {
  const now = settings.now ?? Date.now;
  const c: Caches = {
    mgr,
    settings,
    jobs: mgr.informer<AcjObj>(AuxCopyJobs),
    policies: mgr.informer<PolicyObj>(StoragePolicies),
    copies: mgr.informer<CopyObj>(PolicyCopies),
    libraries: mgr.informer<LibraryObj>(Libraries),
    // Every Auxo pod: streams count every copy pod, and a copy waits for a prune on its repositories.
    agentPods: mgr.informer<PodObj>(Pods, { labelSelector: AGENT_PODS }),
    progressReadAt: new Map(),
  };
  const { jobs, copies } = c;
  jobs.addIndexer(JOBS_BY_POLICY, (j) => [key(j.metadata.namespace, j.spec.storagePolicy)]);
  copies.addIndexer(COPIES_BY_POLICY, (x) => [key(x.metadata.namespace, x.spec.storagePolicy)]);
  copies.addIndexer(COPIES_BY_LIBRARY, (x) => [key(x.metadata.namespace, x.spec.library)]);
  const ofPolicy = (ns: string | undefined, policy: string) =>
    jobs.byIndex(JOBS_BY_POLICY, key(ns, policy)).map((j) => key(j.metadata.namespace, j.metadata.name));
  // Jobs of every policy with a copy on the library: they share its streams and wait for it to be Ready.
  const ofLibrary = (ns: string | undefined, library: string) =>
    [...new Set(copies.byIndex(COPIES_BY_LIBRARY, key(ns, library)).map((x) => x.spec.storagePolicy))].flatMap((p) => ofPolicy(ns, p));
  const librariesOf = (ns: string | undefined, policy: string) =>
    new Set(copies.byIndex(COPIES_BY_POLICY, key(ns, policy)).map((x) => x.spec.library));
  const applier = new Applier(mgr, AuxCopyJobs, now);
  const deps = { mgr, applier, probes };

  mgr.addController({
    name: "auxcopyjob",
    forType: jobs,
    owns: [c.agentPods],
    watches: [
      // Windows, time zone and the primary copy live on the policy.
      watch(c.policies, (p) => ofPolicy(p.metadata.namespace, p.metadata.name)),
      watch(copies, (x) => ofPolicy(x.metadata.namespace, x.spec.storagePolicy)),
      watch(c.libraries, (l) => ofLibrary(l.metadata.namespace, l.metadata.name)),
      // A job queued behind another of its policy goes on when that one finishes its part; a job waiting for a
      // stream when one of a library it shares ends.
      watch(jobs, (j) => {
        const ns = j.metadata.namespace;
        const keys = ofPolicy(ns, j.spec.storagePolicy);
        for (const lib of librariesOf(ns, j.spec.storagePolicy)) keys.push(...ofLibrary(ns, lib));
        return [...new Set(keys)];
      }),
    ],
    reconcile: async (req) => {
      const acj = jobs.get(req.namespace, req.name);
      if (!acj) return done();
      const facts = await gather(c, acj, now());
      return applyAuxCopy(deps, acj, facts, planAuxCopy(facts));
    },
  });
}
