// A finished MediaAgent pod's result, as the controllers read it: the agent's JSON termination message (typed by the
// agent protocol), or what the pod says of itself when the agent died before it could write one.
import type { KubeObject } from "../../kube/resources.ts";
import type { AgentOutcome } from "../../mediaagent/protocol.ts";

export type { AgentOutcome } from "../../mediaagent/protocol.ts";

export interface PodObj extends KubeObject {
  status?: {
    phase?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    containerStatuses?: { state?: { terminated?: { exitCode: number; message?: string; finishedAt?: string } } }[];
  };
}

/** A finished agent pod's result, or undefined while it runs. */
export function agentResult<D = Record<string, unknown>>(pod: PodObj): AgentOutcome<D> | undefined {
  const phase = pod.status?.phase;
  if (phase !== "Succeeded" && phase !== "Failed") return undefined;
  const t = pod.status?.containerStatuses?.[0]?.state?.terminated;
  const raw = t?.message ?? "";
  try {
    const r = JSON.parse(raw) as { ok?: unknown; message?: string; kind?: string };
    if (typeof r.ok === "boolean")
      return { ok: r.ok, message: (r.message ?? r.kind ?? "").slice(0, 1000), at: t?.finishedAt, data: r as Partial<D> };
  } catch {
    // not a result: the agent died before writing one
  }
  // Killed (OOM, node loss, SIGKILL) or crashed: no result, so the work is retryable.
  const how = t?.exitCode === 137 ? "was killed (exit code 137)" : `ended without a result (exit code ${t?.exitCode ?? "unknown"})`;
  return { ok: false, message: `agent pod ${pod.metadata.name} ${how}`, at: t?.finishedAt, data: {} };
}

/** The probe pod's verdict, from its termination message (the agent's JSON result), or its last log words. */
export function probeResult(pod: PodObj): { ok: boolean; message: string; at?: string } | undefined {
  const phase = pod.status?.phase;
  if (phase !== "Succeeded" && phase !== "Failed") return undefined;
  const t = pod.status?.containerStatuses?.[0]?.state?.terminated;
  let message = t?.message ?? "";
  let ok = phase === "Succeeded";
  try {
    const r = JSON.parse(message) as { ok: boolean; message?: string; kind?: string };
    ok = r.ok;
    message = r.message ?? r.kind ?? "";
  } catch {
    message = message.trim().split("\n").slice(-3).join(" ") || `probe pod ${phase}`;
  }
  return { ok, message: message.slice(0, 1000), at: t?.finishedAt };
}
