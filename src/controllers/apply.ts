// The shared applier: carries out a plan that a pure rule of src/policy returned. Order matters for safety: pods go
// first (a status that says "attempt 2 started" must not be written when its pod could not be created), then status,
// then events and metrics (they describe what status now shows). A pod the API server refuses is a fact the rule
// decides on: `replan` is called with the refusals and its plan's status is what gets written.
import type { Logger } from "pino";
import type { KubeObject, ResourceType } from "../kube/resources.ts";
import { buildAgentPod, type AgentPodInput } from "../mediaagent/pod.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { MetricDelta, Plan } from "../policy/plan.ts";
import type { Manager } from "../runtime/manager.ts";
import { currentReconcileLog } from "../runtime/controller.ts";
import { done, requeueAfter, type Result } from "../runtime/result.ts";
import { Pods } from "../kube/resources.ts";
import { createAgentPod } from "./agent/pods.ts";
import { writeFields, writeStatus } from "./status.ts";

export interface RejectedPod {
  name: string;
  /** The API server's words. */
  message: string;
}

type Obj = KubeObject & { status?: Record<string, unknown> };

const counters = new Set<MetricDelta["metric"]>([
  "copiedJobs",
  "copiedBytes",
  "agedJobs",
  "reclaimedBytes",
  "agingRuns",
  "verificationRuns",
  "verifiedJobs",
  "snapVaultBytes",
  "snapVaultRuns",
  "snapVaultBackupCopies",
]);
const gauges = new Set<MetricDelta["metric"]>(["copyBacklog", "copyLag", "snapVaultSnapshots"]);

/** A bounded memory of keys already announced or counted by this process. */
class Once {
  private readonly seen = new Set<string>();
  first(key: string): boolean {
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    if (this.seen.size > 10_000) this.seen.delete(this.seen.values().next().value as string);
    return true;
  }
}

export class Applier {
  private readonly once = new Once();
  private readonly mgr: Manager;
  private readonly type: ResourceType;
  private readonly now: () => number;
  private readonly manager?: string;

  /** `manager`: the field manager of status fields written without conditions (default the operator's). */
  constructor(mgr: Manager, type: ResourceType, now: () => number, manager?: string) {
    this.mgr = mgr;
    this.type = type;
    this.now = now;
    this.manager = manager;
  }

  /** Carries out `plan` for `obj`; returns the reconcile result (its requeue). Decisions are logged at debug on `log` (by default the reconcile's own logger). */
  async apply(
    obj: Obj,
    plan: Plan<object, AgentPodInput>,
    replan?: (rejected: RejectedPod[]) => Plan<object, AgentPodInput>,
    log: Logger = currentReconcileLog() ?? this.mgr.log,
  ): Promise<Result> {
    const ns = obj.metadata.namespace;
    for (const name of plan.deletePods ?? []) await this.mgr.client.deleteIfExists(Pods, ns, name);
    const rejected: RejectedPod[] = [];
    for (const input of plan.pods ?? []) {
      const out = await createAgentPod(this.mgr, buildAgentPod(input));
      if (!out.created) rejected.push({ name: input.name, message: out.message });
    }
    const final = rejected.length && replan ? replan(rejected) : plan;
    log.debug(
      {
        pods: plan.pods?.map((p) => p.name),
        deleted: plan.deletePods,
        rejected: rejected.length ? rejected.map((r) => r.name) : undefined,
        phase: (final.status as { phase?: string } | undefined)?.phase,
        events: final.events?.map((e) => e.reason),
        requeueAfterMs: final.requeueAfterMs,
      },
      "plan",
    );
    await this.writeStatus(obj, final);
    for (const e of final.events ?? [])
      if (!e.once || this.once.first(`event/${e.once}`)) this.mgr.events.event(obj, e.type, e.reason, e.message);
    for (const m of final.metrics ?? []) if (!m.once || this.once.first(`metric/${m.metric}/${m.once}`)) record(this.mgr.metrics, m);
    return final.requeueAfterMs !== undefined ? requeueAfter(Math.max(final.requeueAfterMs, 1)) : done();
  }

  private async writeStatus(obj: Obj, plan: Plan<object, AgentPodInput>): Promise<void> {
    const fields = (plan.status ?? {}) as Record<string, unknown>;
    if (plan.ready) await writeStatus(this.mgr, this.type, obj, plan.ready, fields, this.now());
    else if (plan.status) await writeFields(this.mgr, this.type, obj, fields, this.manager);
  }
}

function record(metrics: Metrics, m: MetricDelta): void {
  if (counters.has(m.metric)) (metrics[m.metric] as Metrics["copiedJobs"]).inc(m.labels, m.value);
  else if (gauges.has(m.metric)) (metrics[m.metric] as Metrics["copyBacklog"]).set(m.labels, m.value);
  else (metrics[m.metric] as Metrics["auxCopyRuns"]).observe(m.labels, m.value);
}
