// kubectl auxo's MediaAgent pods: started in the user's namespace with the user's own rights, from the same builder
// as the operator's (the copy's Secrets mounted, never read by the plugin), owned by the copy they read so that the
// operator's prunes wait for them, and deleted when done, also on Ctrl-C.
import { randomBytes } from "node:crypto";
import { type AgentOutcome, agentResult, type PodObj } from "../controllers/agent/results.ts";
import { type AgentProgress, lastProgress } from "../controllers/agent/progress.ts";
import { copyAccess } from "../controllers/agent/access.ts";
import type { CopyObj, LibraryObj } from "../controllers/resources.ts";
import { PolicyCopies } from "../controllers/resources.ts";
import type { KubeClient } from "../kube/client.ts";
import { isNotFound } from "../kube/errors.ts";
import { Pods } from "../kube/resources.ts";
import { type AgentPodInput, buildAgentPod, podName } from "../mediaagent/pod.ts";
import { apiVersionOf } from "../kube/resources.ts";
import { Label } from "../policy/labels.ts";
import { labelValue } from "../policy/names.ts";

/** The label on every object the plugin creates (its pods, its AuxCopyJobs). */
export const STARTED_BY = "auxo.dev/started-by";

const live = new Set<string>();
let client: KubeClient | undefined;

/** Deletes the pods still running (Ctrl-C, or an error on the way). */
export async function deleteLivePods(): Promise<void> {
  const c = client;
  if (!c) return;
  await Promise.all(
    [...live].map(async (k) => {
      const [ns, name] = k.split("/") as [string, string];
      await c.deleteIfExists(Pods, ns, name, {}).catch(() => undefined);
      live.delete(k);
    }),
  );
}

/** The pod input for a task on a copy: the copy's repository as target, its MediaAgent placement, a fresh name. */
export function cliPodInput(
  task: "list" | "restore",
  copy: CopyObj,
  library: LibraryObj,
  image: string,
  extra: Partial<AgentPodInput> = {},
): AgentPodInput {
  const ns = copy.metadata.namespace as string;
  return {
    task,
    namespace: ns,
    name: podName("auxo-cli", task, copy.metadata.name, randomBytes(3).toString("hex")),
    // Not a controller reference: the copy's controller does not manage these pods, but prunes see them and wait.
    owner: { apiVersion: apiVersionOf(PolicyCopies), kind: "PolicyCopy", name: copy.metadata.name, uid: copy.metadata.uid as string },
    image,
    target: copyAccess(copy, library, "target"),
    deadlineSeconds: 6 * 3600,
    placement: copy.spec.mediaAgent,
    labels: { [Label.copy]: labelValue(copy.metadata.name), [STARTED_BY]: "kubectl-auxo" },
    ...extra,
  };
}

export interface PodRun {
  outcome: AgentOutcome;
  /** The whole log, when asked for. */
  log?: string;
}

/**
 * Creates the pod, waits for it to end (reporting its progress lines), reads its log if asked, and deletes it. A pod
 * that cannot be scheduled for `pendingMs` fails with the scheduler's message.
 */
export async function runPod(
  kube: KubeClient,
  input: AgentPodInput,
  opts: { wantLog?: boolean; onProgress?: (p: AgentProgress) => void; pendingMs?: number; pollMs?: number } = {},
): Promise<PodRun> {
  client = kube;
  const pod = buildAgentPod(input);
  const key = `${input.namespace}/${input.name}`;
  await kube.create(Pods, pod);
  live.add(key);
  const started = Date.now();
  try {
    for (;;) {
      let p: PodObj;
      try {
        p = await kube.get<PodObj>(Pods, input.namespace, input.name);
      } catch (err) {
        if (isNotFound(err)) throw new Error(`pod ${input.name} was deleted before it ended`, { cause: err });
        throw err;
      }
      const outcome = agentResult(p);
      if (outcome) {
        const log = opts.wantLog ? await kube.podLogAll(input.namespace, input.name) : undefined;
        return { outcome, log };
      }
      const unschedulable = p.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
      if (unschedulable && Date.now() - started > (opts.pendingMs ?? 120_000))
        throw new Error(`pod ${input.name} could not be scheduled: ${unschedulable.message ?? unschedulable.reason ?? "unschedulable"}`);
      if (opts.onProgress && p.status?.phase === "Running") {
        const log = await kube.podLog(input.namespace, input.name, 20).catch(() => "");
        const pr = lastProgress(log);
        if (pr) opts.onProgress(pr);
      }
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
    }
  } finally {
    await kube.deleteIfExists(Pods, input.namespace, input.name, {}).catch(() => undefined);
    live.delete(key);
  }
}
