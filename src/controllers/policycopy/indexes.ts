// The caches and indexes the StoragePolicy and PolicyCopy controllers share: a change maps to the objects it
// concerns through an index, never to every object of the namespace where an index can say which.
import type { Informer } from "../../kube/informer.ts";
import { Pods } from "../../kube/resources.ts";
import { librarySecretRefs } from "../../policy/library.ts";
import { clientSecretName } from "../../policy/storagepolicy.ts";
import type { Manager } from "../../runtime/manager.ts";
import { agentPodsOf } from "../../policy/labels.ts";
import type { PodObj } from "../agent/results.ts";
import type { AcjObj, CopyObj, LibraryObj, PolicyObj } from "../resources.ts";
import { AuxCopyJobs, Libraries, PolicyCopies, StoragePolicies } from "../resources.ts";

export const key = (ns: string | undefined, name: string): string => `${ns}/${name}`;

type Named = { metadata: { namespace?: string; name: string } };
const keys = (objs: Named[]) => objs.map((o) => key(o.metadata.namespace, o.metadata.name));

export interface PolicyCaches {
  policies: Informer<PolicyObj>;
  copies: Informer<CopyObj>;
  libraries: Informer<LibraryObj>;
  jobs: Informer<AcjObj>;
  /** Init, scan and promotion check pods. */
  pods: Informer<PodObj>;
}

export function policyCaches(mgr: Manager): PolicyCaches {
  const c: PolicyCaches = {
    policies: mgr.informer<PolicyObj>(StoragePolicies),
    copies: mgr.informer<CopyObj>(PolicyCopies),
    libraries: mgr.informer<LibraryObj>(Libraries),
    jobs: mgr.informer<AcjObj>(AuxCopyJobs),
    pods: mgr.informer<PodObj>(Pods, { labelSelector: agentPodsOf("init", "scan", "plan") }),
  };
  const ns = (o: Named) => o.metadata.namespace;
  c.copies.addIndexer("policy", (o) => [key(ns(o), o.spec.storagePolicy)]);
  c.copies.addIndexer("library", (o) => [key(ns(o), o.spec.library)]);
  c.copies.addIndexer("secret", (o) => [key(ns(o), o.spec.encryption.passwordSecret.name)]);
  c.copies.addIndexer("source", (o) => (o.spec.sourceCopy ? [key(ns(o), o.spec.sourceCopy)] : []));
  c.copies.addIndexer("namespace", (o) => [ns(o) ?? ""]);
  c.copies.addIndexer("refused", (o) =>
    (o.status?.conditions ?? []).some((x) => x.type === "Ready" && x.status === "False" && x.reason === "RepositoryShared")
      ? ["refused"]
      : [],
  );
  // The same index as the library controller's (an informer keeps one function per index name).
  c.libraries.addIndexer("secret", (l) => librarySecretRefs(l.spec).map((r) => key(ns(l), r.name)));
  // A policy depends on the copy its primaryCopy names (in spec, or in force), whichever policy that copy names.
  c.policies.addIndexer("primary", (p) =>
    [...new Set([p.spec.primaryCopy, p.status?.primaryCopy])].flatMap((n) => (n ? [key(ns(p), n)] : [])),
  );
  c.policies.addIndexer("clientSecret", (p) => [key(ns(p), clientSecretName(p.metadata.name))]);
  // An aux copy run changes the catalogs of the copies it fills and of their sources.
  c.jobs.addIndexer("copy", copiesOfJob);
  return c;
}

/** Keys of the copies an index maps the object to (the object's own namespace/name). */
export const copiesBy =
  (c: PolicyCaches, index: string) =>
  (o: Named): string[] =>
    keys(c.copies.byIndex(index, key(o.metadata.namespace, o.metadata.name)));

/** Keys of the policies of some copies (the copies' storagePolicy). */
export const policiesOfCopies = (copies: CopyObj[]): string[] => [
  ...new Set(copies.map((o) => key(o.metadata.namespace, o.spec.storagePolicy))),
];

/** Keys of the copies an AuxCopyJob fills or reads. */
export const copiesOfJob = (j: AcjObj): string[] =>
  [...new Set((j.status?.copies ?? []).flatMap((p) => [p.name, p.source]))].flatMap((n) => (n ? [key(j.metadata.namespace, n)] : []));

export { keys as keysOf };
