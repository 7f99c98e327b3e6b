// Live progress of a running MediaAgent: the agent prints progress lines as JSON on its log, and the operator
// reads the last one through the API server (pods/log). The agent holds no API credentials at all, so nothing a
// compromised data pod does can touch the cluster; the operator, which already owns the pod, is the only writer
// of status.
import type { Manager } from "../../runtime/manager.ts";

export interface AgentProgress {
  jobsDone?: number;
  jobsTotal?: number;
  bytesDone?: number;
  bytesTotal?: number;
  percent?: number;
  /** The job being copied. */
  job?: string;
  /** restic is retrying its storage (newer than any job progress): the library may be down. */
  backendError?: string;
}

/**
 * The newest progress line among a log's last lines; with `backendError` when the agent's newest line says restic is
 * retrying its storage and no job progress came after it.
 */
export function lastProgress(log: string): AgentProgress | undefined {
  const lines = log.split("\n");
  let backendError: string | undefined;
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = (lines[i] as string).trim();
    if (!l.startsWith("{") || !l.includes('"progress"')) continue;
    try {
      const m = JSON.parse(l) as Record<string, unknown>;
      if (m.msg !== "progress") continue;
      if (typeof m.backendError === "string") {
        backendError ??= m.backendError.slice(0, 300);
        continue;
      }
      const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
      return {
        backendError,
        jobsDone: num(m.jobsDone),
        jobsTotal: num(m.jobsTotal),
        bytesDone: num(m.bytesDone),
        bytesTotal: num(m.bytesTotal),
        percent: num(m.percent),
        job: typeof m.job === "string" ? m.job.slice(0, 128) : undefined,
      };
    } catch {
      // a line that only looks like JSON
    }
  }
  return backendError ? { backendError } : undefined;
}

/** The running pod's progress, or undefined when its log cannot be read now (it is only a view; the result counts). */
export async function podProgress(mgr: Manager, namespace: string, pod: string): Promise<AgentProgress | undefined> {
  try {
    return lastProgress(await mgr.client.podLog(namespace, pod, 20));
  } catch (err) {
    mgr.log.debug({ err, pod: `${namespace}/${pod}` }, "progress not readable");
    return undefined;
  }
}
