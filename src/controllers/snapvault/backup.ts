// The facts backup copies add to a SnapVault reconcile: the storage policy's primary copy in force (its access,
// repository ID, library, MediaAgent placement, streams and a prune on it) and, for access nodes, the cluster's
// nodes (listed at most every 30 s).
import { type KubeObject, Nodes } from "../../kube/resources.ts";
import type { PodPlacement } from "../../mediaagent/pod.ts";
import type { BackupTargetFacts } from "../../policy/snapvault-ctx.ts";
import { copyAccess } from "../agent/access.ts";
import { podsOnRepository, prunes, repositoryRefusal } from "../agent/busy.ts";
import { type PolicyObj, policyFacts, type SnapVaultObj } from "../resources.ts";
import { type Caches, sourcePvcs, streamsOn } from "./gather.ts";

/** The policy's primary copy in force, as backup copies need it. */
export function backupTarget(c: Caches, policy: PolicyObj): BackupTargetFacts {
  const ns = policy.metadata.namespace as string;
  const name = policyFacts(policy).primaryCopy;
  const base = { policy: policy.metadata.name, copy: name, streamsInUse: 0 };
  const copy = name ? c.copies.get(ns, name) : undefined;
  if (!copy || copy.spec.storagePolicy !== policy.metadata.name)
    return { ...base, problem: `storage policy ${policy.metadata.name} has no primary copy ${name ?? ""}`.trim() };
  const lib = c.libraries.get(ns, copy.spec.library);
  const refusal = repositoryRefusal(copy);
  const pods = c.agentPods.list(ns);
  return {
    ...base,
    problem: refusal
      ? `primary copy ${name}: ${refusal.message}`
      : copy.status?.repositoryReady !== true || !copy.status?.repositoryId
        ? `the repository of primary copy ${name} is not open yet`
        : !lib
          ? `library ${copy.spec.library} of primary copy ${name} does not exist`
          : undefined,
    repositoryId: copy.status?.repositoryId,
    access: lib && copyAccess(copy, lib, "target", true),
    library: lib && {
      name: lib.metadata.name,
      phase: lib.status?.phase,
      message: lib.status?.conditions?.find((x) => x.type === "Ready")?.message,
      maxStreams: lib.spec.maxStreams ?? 10,
    },
    placement: copy.spec.mediaAgent as PodPlacement | undefined,
    streamsInUse: lib ? streamsOn(pods, lib.metadata.name) : 0,
    pruning: podsOnRepository(pods, { name: copy.metadata.name, uid: copy.metadata.uid }).some(prunes),
  };
}

export const needsNodes = (c: Caches, sv: SnapVaultObj) =>
  sv.spec.backupCopy?.accessNodes !== undefined || sourcePvcs(c, sv).some((p) => p.accessNodes?.length);

/** The nodes, listed at most every 30 s; undefined when the operator may not list them (access nodes then go unchecked). */
export async function nodesOf(c: Caches, now: number): Promise<{ name: string; labels?: Record<string, string> }[] | undefined> {
  if (c.nodes && now - c.nodes.at < 30_000) return c.nodes.list;
  try {
    const { items } = await c.mgr.client.list<KubeObject>(Nodes);
    c.nodes = { at: now, list: items.map((n) => ({ name: n.metadata.name, labels: n.metadata.labels })) };
  } catch (err) {
    c.mgr.log.debug({ err }, "nodes not listable: access nodes are not checked");
    c.nodes = { at: now, list: undefined };
  }
  return c.nodes.list;
}
