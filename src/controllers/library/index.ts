// Library: checks what the library names (credentials Secrets and keys, the claim of a filesystem library) and
// probes its storage with a MediaAgent pod. Gather (gather.ts) → plan (policy/library.ts) → apply (the shared applier).
import { Pods } from "../../kube/resources.ts";
import { librarySecretRefs, planLibrary } from "../../policy/library.ts";
import { watch } from "../../runtime/controller.ts";
import type { Manager } from "../../runtime/manager.ts";
import { done } from "../../runtime/result.ts";
import { agentPodsOf } from "../../policy/labels.ts";
import type { ProbeRequests } from "../agent/probes.ts";
import type { PodObj } from "../agent/results.ts";
import { Applier } from "../apply.ts";
import { Libraries, type LibraryObj, PersistentVolumeClaims } from "../resources.ts";
import type { ControllerSettings } from "../settings.ts";
import { gatherLibrary } from "./gather.ts";

const key = (ns: string | undefined, name: string) => `${ns}/${name}`;

export function registerLibraryController(mgr: Manager, settings: ControllerSettings, probesAsked?: ProbeRequests): void {
  const now = settings.now ?? Date.now;
  const libraries = mgr.informer<LibraryObj>(Libraries);
  const caches = {
    secrets: mgr.secrets(),
    claims: mgr.informer(PersistentVolumeClaims),
    probes: mgr.informer<PodObj>(Pods, { labelSelector: agentPodsOf("probe") }),
    asked: probesAsked,
  };
  libraries.addIndexer("secret", (l) => librarySecretRefs(l.spec).map((r) => key(l.metadata.namespace, r.name)));
  libraries.addIndexer("claim", (l) =>
    l.spec.filesystem?.persistentVolumeClaim ? [key(l.metadata.namespace, l.spec.filesystem.persistentVolumeClaim.claimName)] : [],
  );
  const byIndex = (index: string) => (o: { metadata: { namespace?: string; name: string } }) =>
    libraries.byIndex(index, key(o.metadata.namespace, o.metadata.name)).map((l) => key(l.metadata.namespace, l.metadata.name));
  const applier = new Applier(mgr, Libraries, now);
  const controller = mgr.addController({
    name: "library",
    forType: libraries,
    owns: [caches.probes],
    watches: [watch(caches.secrets.metadata, byIndex("secret")), watch(caches.claims, byIndex("claim"))],
    reconcile: async (req) => {
      const lib = libraries.get(req.namespace, req.name);
      if (!lib) {
        mgr.metrics.setLibraryPhase(req.namespace as string, req.name, undefined);
        return done();
      }
      const facts = await gatherLibrary(caches, settings, lib);
      const t = now();
      let plan = planLibrary(facts, t);
      const result = await applier.apply(lib, plan, (rejected) => (plan = planLibrary(facts, t, rejected)));
      // The phase status now shows (auxo_library_phase: the alert on unreachable libraries reads it).
      mgr.metrics.setLibraryPhase(req.namespace as string, req.name, plan.status?.phase);
      return result;
    },
  });
  probesAsked?.onRequest((k) => controller.queue.add(k));
}
