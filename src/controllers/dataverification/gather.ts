// Data verification's facts, read from the caches into plain objects for the plan (policy/verification.ts).
import type { Informer } from "../../kube/informer.ts";
import type { PodPlacement } from "../../mediaagent/pod.ts";
import type { VerifyResult } from "../../mediaagent/protocol.ts";
import type { Condition } from "../../policy/conditions.ts";
import { Annotation } from "../../policy/labels.ts";
import { copiedToAt, earlierVerifyPods, type VerificationFacts, type VerificationStatus } from "../../policy/verification.ts";
import type { Window } from "../../policy/windows.ts";
import { controllerRef } from "../../runtime/objects.ts";
import { copyAccess } from "../agent/access.ts";
import { podActive, podsOnRepository, prunes, repositoryRefusal, taskOf } from "../agent/busy.ts";
import { endedAgentHosts } from "../agent/pods.ts";
import { agentResult, type PodObj } from "../agent/results.ts";
import { type AcjObj, type CopyObj, type LibraryObj, PolicyCopies, type PolicyObj } from "../resources.ts";
import { streamsOn } from "../snapvault/gather.ts";

export interface VerificationCaches {
  copies: Informer<CopyObj>;
  policies: Informer<PolicyObj>;
  libraries: Informer<LibraryObj>;
  jobs: Informer<AcjObj>;
  pods: Informer<PodObj>;
}

/** The facts of a copy's data verification at `now` (without the running pod's progress); undefined when it is gone. */
export function gatherVerification(
  c: VerificationCaches,
  image: string,
  ns: string,
  name: string,
  now: number,
): { facts: VerificationFacts; copy: CopyObj; library?: LibraryObj } | undefined {
  const copy = c.copies.get(ns, name);
  if (!copy) return undefined;
  const policy = c.policies.get(ns, copy.spec.storagePolicy);
  const lib = c.libraries.get(ns, copy.spec.library);
  const nsPods = c.pods.list(ns);
  const status: VerificationStatus = { ...(copy.status?.dataVerification ?? {}) };
  const facts: VerificationFacts = {
    now,
    copy: {
      name: copy.metadata.name,
      namespace: ns,
      generation: copy.metadata.generation,
      createdAt: copy.metadata.creationTimestamp,
      spec: copy.spec.dataVerification,
      status,
      conditions: copy.status?.conditions as Condition[] | undefined,
      repositoryReady: !!copy.status?.repositoryReady,
      repositoryId: copy.status?.repositoryId,
      newestJob: copy.status?.newestJob,
      lastScanTime: copy.status?.lastScanTime,
      requestedAt: copy.metadata.annotations?.[Annotation.verificationRequested],
      recovered: copy.status?.recovered?.dataVerification,
    },
    policy: policy && {
      name: policy.metadata.name,
      timeZone: policy.spec.timeZone,
      operationWindows: policy.spec.operationWindows as Window[] | undefined,
    },
    refusal: repositoryRefusal(copy),
    library: lib && {
      name: lib.metadata.name,
      ready: lib.status?.phase === "Ready",
      maxStreams: lib.spec.maxStreams ?? 10,
      streamsInUse: streamsOn(nsPods, lib.metadata.name),
    },
    pods: nsPods
      .filter(
        (p) => p.metadata.ownerReferences?.some((o) => o.kind === "PolicyCopy" && o.uid === copy.metadata.uid) && taskOf(p) === "verify",
      )
      .map((p) => {
        const result = agentResult<VerifyResult>(p);
        return { name: p.metadata.name, task: taskOf(p), active: podActive(p), ...(result ? { result } : {}) };
      }),
    pruning: podsOnRepository(nsPods, { name: copy.metadata.name, uid: copy.metadata.uid }).find(prunes)?.metadata.name,
    copiedAt: copiedToAt(copy.metadata.name, c.jobs.list(ns)),
    pod: lib && {
      namespace: ns,
      owner: controllerRef(copy, PolicyCopies),
      image,
      target: copyAccess(copy, lib, "target"),
      placement: copy.spec.mediaAgent as PodPlacement | undefined,
    },
    deadHosts: endedAgentHosts(nsPods, earlierVerifyPods(copy.metadata.name, status.runs ?? 0)),
  };
  return { facts, copy, library: lib };
}
