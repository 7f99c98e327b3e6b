// Data aging (docs/retention.md): each copy ages its jobs by its own retention in MediaAgent `age` pods. The
// reconcile gathers the copy's facts (gather.ts), plans with policy/aging.ts and applies the plan with the shared
// applier; prune takes restic's exclusive lock, so aux copies wait for a run (auxcopyjob).
import { Pods } from "../../kube/resources.ts";
import { planDataAging } from "../../policy/aging.ts";
import { watch } from "../../runtime/controller.ts";
import type { Manager } from "../../runtime/manager.ts";
import { done } from "../../runtime/result.ts";
import { AGENT_PODS, Annotation, Label } from "../../policy/labels.ts";
import type { ProbeRequests } from "../agent/probes.ts";
import type { PodObj } from "../agent/results.ts";
import { Applier } from "../apply.ts";
import { Libraries, type LibraryObj, PolicyCopies, type CopyObj, type PolicyObj, StoragePolicies } from "../resources.ts";
import type { ControllerSettings } from "../settings.ts";
import { gatherAging } from "./gather.ts";

/** Its own field manager: the copy controller applies the rest of the copy's status as "auxo-operator". */
const FIELD_MANAGER = "auxo-data-aging";
const BY_POLICY = "dataaging/policy";
const BY_LIBRARY = "dataaging/library";
const key = (ns: string | undefined, name: string) => `${ns}/${name}`;

export function registerDataAgingController(mgr: Manager, settings: ControllerSettings, probes?: ProbeRequests): void {
  const caches = {
    copies: mgr.informer<CopyObj>(PolicyCopies),
    policies: mgr.informer<PolicyObj>(StoragePolicies),
    libraries: mgr.informer<LibraryObj>(Libraries),
    pods: mgr.informer<PodObj>(Pods, { labelSelector: AGENT_PODS }),
  };
  const { copies } = caches;
  copies.addIndexer(BY_POLICY, (c) => [key(c.metadata.namespace, c.spec.storagePolicy)]);
  copies.addIndexer(BY_LIBRARY, (c) => [key(c.metadata.namespace, c.spec.library)]);
  const keys = (cs: CopyObj[]) => cs.map((c) => key(c.metadata.namespace, c.metadata.name));
  const ofPolicy = (ns: string | undefined, name: string) => copies.byIndex(BY_POLICY, key(ns, name));
  // A library decides whether its copies age and whether the copies they fill can be read: every copy of a policy
  // with a copy on it.
  const ofLibrary = (l: LibraryObj) => {
    const ns = l.metadata.namespace;
    const policies = new Set(copies.byIndex(BY_LIBRARY, key(ns, l.metadata.name)).map((c) => c.spec.storagePolicy));
    return [...policies].flatMap((p) => keys(ofPolicy(ns, p)));
  };
  const now = settings.now ?? Date.now;
  const applier = new Applier(mgr, PolicyCopies, now, FIELD_MANAGER);

  mgr.addController({
    name: "dataaging",
    forType: copies,
    watches: [
      watch(caches.policies, (p) => keys(ofPolicy(p.metadata.namespace, p.metadata.name))),
      watch(caches.libraries, ofLibrary),
      // Its own pods end runs; other pods on a repository end a wait.
      watch(caches.pods, (p) => {
        const c = p.metadata.annotations?.[Annotation.copy] ?? p.metadata.labels?.[Label.copy];
        return c ? [key(p.metadata.namespace, c)] : [];
      }),
    ],
    reconcile: async (req, ctx) => {
      if (settings.dataAging !== true) return done();
      const t = now();
      const g = gatherAging(caches, settings.agentImage, req.namespace as string, req.name, t);
      if (!g) return done();
      const facts = { ...g.facts, retryBaseMs: settings.retryBaseMs };
      const plan = planDataAging(facts);
      // A run that could not reach its library asks for the library's probe now.
      if (plan.probe && g.library) probes?.request(g.copy.metadata.namespace as string, g.library.metadata.name, plan.probe, t);
      return await applier.apply(g.copy, plan, (rejected) => planDataAging({ ...facts, rejected }), ctx.log);
    },
  });
}
