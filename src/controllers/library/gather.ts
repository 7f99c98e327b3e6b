// The facts of a library's reconcile, from the caches: the Secrets it names, its claim, its probe pods and the
// latest probe a MediaAgent asked for.
import type { Informer } from "../../kube/informer.ts";
import type { KubeObject } from "../../kube/resources.ts";
import type { NamedSecrets } from "../../kube/secrets.ts";
import { type LibraryFacts, librarySecretRefs } from "../../policy/library.ts";
import { secretKeys } from "../../policy/references.ts";
import { controllerRef } from "../../runtime/objects.ts";
import type { ProbeRequests } from "../agent/probes.ts";
import { type PodObj, probeResult } from "../agent/results.ts";
import { Libraries, type LibraryObj } from "../resources.ts";
import type { ControllerSettings } from "../settings.ts";

export interface LibraryCaches {
  secrets: NamedSecrets;
  claims: Informer<KubeObject>;
  probes: Informer<PodObj>;
  asked?: ProbeRequests;
}

export async function gatherLibrary(c: LibraryCaches, settings: ControllerSettings, lib: LibraryObj): Promise<LibraryFacts> {
  const ns = lib.metadata.namespace as string;
  const name = lib.metadata.name;
  const claim = lib.spec.filesystem?.persistentVolumeClaim?.claimName;
  const named = await c.secrets.getMany(ns, new Set(librarySecretRefs(lib.spec).map((r) => r.name)));
  const probePods = c.probes
    .list(ns)
    .filter((p) => p.metadata.ownerReferences?.some((r) => r.kind === "Library" && r.name === name && r.controller))
    .map((p) => ({ name: p.metadata.name, result: probeResult(p) }));
  return {
    name,
    namespace: ns,
    spec: lib.spec,
    status: lib.status ?? {},
    secrets: secretKeys(named),
    claimExists: !claim || c.claims.get(ns, claim) !== undefined,
    allow: { hostPath: settings.allowHostPathLibraries === true, nfs: settings.allowNfsLibraries === true },
    probes: settings.probeLibraries !== false,
    probePods,
    askedAt: c.asked?.latest(ns, name)?.at,
    owner: controllerRef(lib, Libraries),
    image: settings.agentImage,
    probeTimeoutSeconds: settings.probeTimeoutSeconds ?? 60,
  };
}
