// What every controller that runs MediaAgent pods needs alike: creating a pod without retrying a rejected one in a
// loop, seeing a pod that never starts, and which Auxo pods have ended (their restic locks are
// provably dead: a pod's hostname is its name, and Auxo's pod names are deterministic).
import { isConflict, isRejected, type ApiError } from "../../kube/errors.ts";
import { type KubeObject, parseTime, Pods } from "../../kube/resources.ts";
import type { Manager } from "../../runtime/manager.ts";
import type { PodObj } from "./results.ts";

export { Label } from "../../policy/labels.ts";
export { podActive } from "./busy.ts";

/** How long a pod may stay Pending before its owner says so, and before the attempt counts as failed. */
export const PENDING_REPORT_MS = 60_000;
export const PENDING_GIVE_UP_MS = 10 * 60_000;

export const podEnded = (p: PodObj): boolean => p.status?.phase === "Succeeded" || p.status?.phase === "Failed";

export type CreateOutcome = { created: true } | { created: false; message: string };

/**
 * Creates a MediaAgent pod; an existing one of the same name is fine (deterministic names). A pod the API server
 * refuses as such (invalid resources, Pod Security admission, a quota, an unknown priority class) comes back as the
 * server's message, for the owner's condition and event; other errors throw and are retried with back-off.
 */
export async function createAgentPod(mgr: Manager, pod: KubeObject): Promise<CreateOutcome> {
  try {
    await mgr.client.create(Pods, pod);
    return { created: true };
  } catch (err) {
    if (isConflict(err)) return { created: true };
    if (isRejected(err)) return { created: false, message: `the API server refused MediaAgent pod: ${(err as ApiError).apiMessage}` };
    throw err;
  }
}

/**
 * Why a pod has not started, once it has been Pending for `afterMs`: the scheduler's word when there is one
 * (PodScheduled=False), else how long it waits. Undefined while it is young or running.
 */
export function stuckPending(
  pod: PodObj & { status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] } },
  now: number,
  afterMs = PENDING_REPORT_MS,
): string | undefined {
  if (pod.status?.phase && pod.status.phase !== "Pending") return undefined;
  const created = parseTime(pod.metadata.creationTimestamp);
  if (created === undefined || now - created < afterMs) return undefined;
  const sched = (pod.status?.conditions ?? []).find((c) => c.type === "PodScheduled" && c.status === "False");
  const why = sched ? `${sched.reason ?? "Unschedulable"}: ${sched.message ?? ""}`.trim() : "not scheduled or started";
  return `MediaAgent pod ${pod.metadata.name} has been Pending for ${Math.round((now - created) / 1000)} s (${why})`;
}

/**
 * Host names of Auxo's pods that have ended: locks held by them are dead, and only such locks Auxo may remove.
 * `earlier` names pods of earlier attempts of the same work (deterministic names): gone from the cache means ended,
 * since a pod object goes only once its containers stopped; one still there must have ended too.
 */
export function endedAgentHosts(pods: PodObj[], earlier: string[] = []): string[] {
  const live = new Set(pods.filter((p) => !podEnded(p)).map((p) => p.metadata.name));
  return [...new Set([...pods.filter(podEnded).map((p) => p.metadata.name), ...earlier.filter((n) => !live.has(n))])].slice(0, 200);
}
