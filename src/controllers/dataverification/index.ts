// Data verification (docs/verification.md): each copy's jobs are read in full in MediaAgent `verify` pods, on the
// copy's schedule, after jobs land on it and on request. The reconcile gathers the copy's facts (gather.ts), reads
// the running pod's progress, plans with policy/verification.ts and applies the plan with the shared applier. A
// verify pod and a prune never overlap: this plan waits for a prune, data aging waits for a verify pod.
import { Pods } from "../../kube/resources.ts";
import { AGENT_PODS, Annotation, Label } from "../../policy/labels.ts";
import { planVerification, verifyPodName } from "../../policy/verification.ts";
import { watch } from "../../runtime/controller.ts";
import type { Manager } from "../../runtime/manager.ts";
import { done } from "../../runtime/result.ts";
import type { ProbeRequests } from "../agent/probes.ts";
import { podProgress } from "../agent/progress.ts";
import type { PodObj } from "../agent/results.ts";
import { Applier } from "../apply.ts";
import {
  type AcjObj,
  AuxCopyJobs,
  Libraries,
  type LibraryObj,
  PolicyCopies,
  type CopyObj,
  type PolicyObj,
  StoragePolicies,
} from "../resources.ts";
import type { ControllerSettings } from "../settings.ts";
import { gatherVerification } from "./gather.ts";

/** Its own field manager: the copy controller and data aging write the rest of the copy's status. */
const FIELD_MANAGER = "auxo-data-verification";
const BY_POLICY = "dataverification/policy";
const BY_LIBRARY = "dataverification/library";
const key = (ns: string | undefined, name: string) => `${ns}/${name}`;

export function registerDataVerificationController(mgr: Manager, settings: ControllerSettings, probes?: ProbeRequests): void {
  const caches = {
    copies: mgr.informer<CopyObj>(PolicyCopies),
    policies: mgr.informer<PolicyObj>(StoragePolicies),
    libraries: mgr.informer<LibraryObj>(Libraries),
    jobs: mgr.informer<AcjObj>(AuxCopyJobs),
    pods: mgr.informer<PodObj>(Pods, { labelSelector: AGENT_PODS }),
  };
  const { copies } = caches;
  copies.addIndexer(BY_POLICY, (c) => [key(c.metadata.namespace, c.spec.storagePolicy)]);
  copies.addIndexer(BY_LIBRARY, (c) => [key(c.metadata.namespace, c.spec.library)]);
  const keys = (cs: CopyObj[]) =>
    cs.filter((c) => c.spec.dataVerification?.enabled || c.status?.dataVerification).map((c) => key(c.metadata.namespace, c.metadata.name));
  const now = settings.now ?? Date.now;
  const applier = new Applier(mgr, PolicyCopies, now, FIELD_MANAGER);

  mgr.addController({
    name: "dataverification",
    forType: copies,
    watches: [
      watch(caches.policies, (p) => keys(copies.byIndex(BY_POLICY, key(p.metadata.namespace, p.metadata.name)))),
      watch(caches.libraries, (l) => keys(copies.byIndex(BY_LIBRARY, key(l.metadata.namespace, l.metadata.name)))),
      // Its own pods end runs; other pods on a library free a stream or end a prune.
      watch(caches.pods, (p) => {
        const c = p.metadata.annotations?.[Annotation.copy] ?? p.metadata.labels?.[Label.copy];
        const lib = p.metadata.labels?.[Label.targetLibrary];
        const onLib = lib ? keys(copies.list(p.metadata.namespace).filter((o) => o.spec.library === lib)) : [];
        return [...(c ? [key(p.metadata.namespace, c)] : []), ...onLib];
      }),
      // An aux copy that copied jobs to a copy: a run after the copy may be due.
      watch(caches.jobs, (j) => keys((j.status?.copies ?? []).flatMap((p) => copies.get(j.metadata.namespace, p.name) ?? []))),
    ],
    reconcile: async (req, ctx) => {
      const t = now();
      const g = gatherVerification(caches, settings.agentImage, req.namespace as string, req.name, t);
      if (!g) return done();
      const runPod = verifyPodName(g.facts.copy.name, g.facts.copy.status.runs ?? 0);
      const running = g.facts.pods.find((p) => p.active && !p.result && p.name === runPod);
      const progress = running ? await podProgress(mgr, g.facts.copy.namespace, running.name) : undefined;
      const facts = { ...g.facts, progress };
      const plan = planVerification(facts);
      if (plan.probe && g.library) probes?.request(g.copy.metadata.namespace as string, g.library.metadata.name, plan.probe, t);
      return await applier.apply(g.copy, plan, (rejected) => planVerification({ ...facts, rejected }), ctx.log);
    },
  });
}
