// The facts of a PolicyCopy's reconcile, from the caches: its policy and the other copies, its library, the
// password Secret, every copy's claim on a repository, its init and scan pods, and the aux copy runs that changed
// its catalog.
import type { NamedSecrets } from "../../kube/secrets.ts";
import { parseTime } from "../../kube/resources.ts";
import type { InitResult, ScanResult } from "../../mediaagent/protocol.ts";
import { type AgentPodFact, catalogChangedAt, type CopyFactsForPlan } from "../../policy/policycopy.ts";
import { effectiveSource, precedences, secretKeys } from "../../policy/references.ts";
import { type RepositoryClaim, repositoryLocation } from "../../policy/repository.ts";
import { controllerRef } from "../../runtime/objects.ts";
import { copyAccess, copyRepositoryPath } from "../agent/access.ts";
import { Annotation, Label } from "../../policy/labels.ts";
import { PENDING_GIVE_UP_MS, stuckPending } from "../agent/pods.ts";
import { agentResult, type PodObj } from "../agent/results.ts";
import { type CopyObj, PolicyCopies, policyFacts } from "../resources.ts";
import type { ControllerSettings } from "../settings.ts";
import { copyFacts } from "../storagepolicy/gather.ts";
import { key, type PolicyCaches } from "./indexes.ts";

/** What each copy claims (cluster-wide): where its repository is now, and what its status recorded there. */
function repositoryClaims(c: PolicyCaches): RepositoryClaim[] {
  const out: RepositoryClaim[] = [];
  for (const copy of c.copies.list()) {
    const ns = copy.metadata.namespace as string;
    const lib = c.libraries.get(ns, copy.spec.library);
    if (!lib) continue;
    let location: string;
    try {
      location = repositoryLocation(lib.spec, ns, copyRepositoryPath(copy));
    } catch {
      continue;
    }
    out.push({
      key: key(ns, copy.metadata.name),
      location,
      id: copy.status?.repositoryId,
      established: !!copy.status?.repositoryReady && copy.status.repositoryLocation === location,
      createdAt: copy.metadata.creationTimestamp ?? "",
    });
  }
  return out;
}

/** The copy's pods of a task, with their results (typed by the agent protocol) and why they wait. */
function podsOf<R>(c: PolicyCaches, copy: CopyObj, task: "init" | "scan", now: number): AgentPodFact<R>[] {
  return c.pods
    .list(copy.metadata.namespace)
    .filter(
      (p) =>
        p.metadata.labels?.[Label.task] === task &&
        (p.metadata.ownerReferences?.some((r) => r.kind === "PolicyCopy" && r.name === copy.metadata.name && r.controller) ?? false),
    )
    .map((p: PodObj) => ({
      name: p.metadata.name,
      attempt: Number(p.metadata.labels?.[Label.attempt] ?? "1"),
      result: agentResult<R>(p),
      stuck: stuckPending(p, now),
      givenUp: now - (parseTime(p.metadata.creationTimestamp) ?? now) > PENDING_GIVE_UP_MS,
    }));
}

export async function gatherCopy(
  c: PolicyCaches,
  secrets: NamedSecrets,
  settings: ControllerSettings,
  copy: CopyObj,
  now: number,
): Promise<CopyFactsForPlan> {
  const ns = copy.metadata.namespace as string;
  const policyObj = c.policies.get(ns, copy.spec.storagePolicy);
  const policy = policyObj && policyFacts(policyObj);
  const all = new Map(c.copies.byIndex("namespace", ns).map((o) => [o.metadata.name, copyFacts(o)]));
  const facts = copyFacts(copy);
  const lib = c.libraries.get(ns, copy.spec.library);
  const sourceName = policy && effectiveSource(facts, policy);
  const source = sourceName ? c.copies.get(ns, sourceName) : undefined;
  const sourceLib = source && c.libraries.get(ns, source.spec.library);
  const pw = copy.spec.encryption.passwordSecret;
  return {
    copy,
    facts,
    policy,
    copies: all,
    libraryExists: lib !== undefined,
    secrets: secretKeys(await secrets.getMany(ns, [pw.name])),
    precedence: policy ? precedences(policy, [...all.values()]).get(copy.metadata.name) : undefined,
    sourceStatus: source?.status,
    rescanRequested: parseTime(copy.metadata.annotations?.[Annotation.rescanRequested]),
    repository: {
      copy,
      repoPath: copyRepositoryPath(copy),
      library: lib && { spec: lib.spec, ready: lib.status?.phase === "Ready" },
      access: lib && copyAccess(copy, lib, "target"),
      dedupSource:
        copy.spec.deduplication?.enabled && source
          ? { ready: !!source.status?.repositoryReady, access: sourceLib && copyAccess(source, sourceLib, "source") }
          : undefined,
      claims: repositoryClaims(c),
      initPods: podsOf<InitResult>(c, copy, "init", now),
      scanPods: podsOf<ScanResult>(c, copy, "scan", now),
      catalogChangedAt: catalogChangedAt(
        copy.metadata.name,
        c.jobs.byIndex("copy", key(ns, copy.metadata.name)),
        copy.status?.dataAging,
        copy.status?.dataVerification,
      ),
      owner: controllerRef(copy, PolicyCopies),
      image: settings.agentImage,
      probes: settings.probeLibraries !== false,
      allowPathsOutsideNamespace: settings.allowRepositoryPathsOutsideNamespace === true,
      retryBaseMs: settings.retryBaseMs,
      scanIntervalMs: (settings.scanIntervalSeconds ?? 600) * 1000,
    },
  };
}
