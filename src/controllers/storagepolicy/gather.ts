// The facts of a StoragePolicy's reconcile, from the caches: the copies of its namespace as its status shows them,
// its automatic jobs, and what its client Secret would hold.
import type { Informer } from "../../kube/informer.ts";
import type { NamedSecrets } from "../../kube/secrets.ts";
import { librarySecretRefs } from "../../policy/library.ts";
import type { CopyFacts } from "../../policy/references.ts";
import { type AutoJob, type ClientSecretFacts, clientSecretName, type CopyView } from "../../policy/storagepolicy.ts";
import { Label } from "../../policy/labels.ts";
import { copyRepositoryPath } from "../agent/access.ts";
import type { AcjObj, CopyObj, LibraryObj, PolicyObj } from "../resources.ts";

export function copyFacts(c: CopyObj): CopyFacts {
  return {
    name: c.metadata.name,
    storagePolicy: c.spec.storagePolicy,
    copyType: c.spec.copyType ?? "Synchronous",
    sourceCopy: c.spec.sourceCopy,
    precedence: c.spec.precedence,
    active: c.spec.active ?? true,
    createdAt: c.metadata.creationTimestamp ?? "",
  };
}

const isReady = (c: CopyObj) => (c.status?.conditions ?? []).some((x) => x.type === "Ready" && x.status === "True");

/** Every copy of the namespace, as the policy's status shows it. */
export function copyViews(copies: CopyObj[]): Map<string, CopyView> {
  return new Map(
    copies.map((c) => [
      c.metadata.name,
      {
        facts: copyFacts(c),
        ready: isReady(c),
        jobsAvailable: c.status?.jobs?.available,
        newestJob: c.status?.newestJob,
        lastDataAgingTime: c.status?.dataAging?.lastRunTime,
        repository: c.status?.repository,
      },
    ]),
  );
}

export function autoJobs(jobs: AcjObj[]): AutoJob[] {
  return jobs.map((j) => ({
    name: j.metadata.name,
    uid: j.metadata.uid,
    createdAt: j.metadata.creationTimestamp ?? "",
    phase: j.status?.phase,
    scheduled: j.metadata.labels?.[Label.trigger] === "schedule",
    owners: (j.metadata.ownerReferences ?? []).map((o) => o.uid),
  }));
}

/** What the client Secret would hold: only the Secrets it copies from are read (and so cached). */
export async function clientSecretFacts(
  secrets: NamedSecrets,
  libraries: Informer<LibraryObj>,
  policy: PolicyObj,
  primary: CopyObj | undefined,
): Promise<ClientSecretFacts> {
  const ns = policy.metadata.namespace as string;
  const existing = await secrets.get(ns, clientSecretName(policy.metadata.name));
  const facts: ClientSecretFacts = {
    policy: policy.metadata.name,
    existing: existing && {
      ours: existing.metadata.ownerReferences?.some((o) => o.uid === policy.metadata.uid) ?? false,
      data: existing.data ?? {},
    },
    secretData: () => undefined,
  };
  const lib = primary && libraries.get(ns, primary.spec.library);
  // Only a copy of this very policy is its primary (spec.primaryCopy may name another policy's copy: that is refused).
  if (facts.existing?.ours === false || !primary || !lib || primary.spec.storagePolicy !== policy.metadata.name) return facts;
  const pw = primary.spec.encryption.passwordSecret;
  const named = new Map(
    (await secrets.getMany(ns, [pw.name, ...librarySecretRefs(lib.spec).map((r) => r.name)])).map((s) => [s.metadata.name, s]),
  );
  return {
    ...facts,
    primary: {
      name: primary.metadata.name,
      repositoryPath: copyRepositoryPath(primary),
      password: { secret: pw.name, key: pw.key ?? "password" },
      library: lib.spec,
    },
    secretData: (s, k) => named.get(s)?.data?.[k],
  };
}
