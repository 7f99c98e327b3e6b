// Promotion of a secondary copy to primary (reference §7): the StoragePolicy controller's step that turns a change
// of spec.primaryCopy into the primary in force (status.primaryCopy) once the preconditions hold. The count of jobs
// the candidate lacks comes from a MediaAgent `plan` pod that reads both catalogs; its name carries the check's
// number, so a reconcile on a stale cache never starts a second one.
import type { Informer } from "../kube/informer.ts";
import { isConflict, isNotFound } from "../kube/errors.ts";
import { formatTime, parseTime, Pods } from "../kube/resources.ts";
import { buildAgentPod, podName } from "../mediaagent/pod.ts";
import { decidePromotion, type PromotionCheck } from "../policy/promotion.ts";
import { checkTimeZone, type CopyFacts, precedences, promotionDownstream } from "../policy/references.ts";
import { defaultRepositoryPath, repositoryAccess } from "../policy/repository.ts";
import type { Manager } from "../runtime/manager.ts";
import { controllerRef } from "../runtime/objects.ts";
import type { StoragePolicyStatus } from "../api/v1alpha1/index.ts";
import { rulesOf } from "../policy/copyrules.ts";
import type { AcjObj } from "./resources.ts";
import { agentResult, type PodObj } from "./agent/results.ts";
import { type ControllerSettings } from "./settings.ts";
import { type CopyObj, type LibraryObj, policyFacts, type PolicyObj, StoragePolicies } from "./resources.ts";

/** A check older than this, or older than an aux copy that ended since, is counted again. */
const CHECK_FRESH_MS = 5 * 60_000;
const Terminal = new Set(["Completed", "CompletedWithErrors", "Failed", "Killed"]);

export interface PromotionStep {
  fields: Pick<StoragePolicyStatus, "primaryCopy" | "promotion" | "lastPromotion">;
  /** The Promotion condition: False while a request is pending, True once the latest one took effect. */
  condition?: { type: string; status: "True" | "False"; reason: string; message: string };
  requeueMs?: number;
}

export async function promotionStep(
  mgr: Manager,
  settings: ControllerSettings,
  policy: PolicyObj,
  ctx: {
    copies: CopyObj[];
    facts: ReadonlyMap<string, CopyFacts>;
    libraries: Informer<LibraryObj>;
    jobs: AcjObj[];
    pods: Informer<PodObj>;
  },
): Promise<PromotionStep> {
  const now = (settings.now ?? Date.now)();
  const ns = policy.metadata.namespace as string;
  const st = policy.status ?? {};
  const requested = policy.spec.primaryCopy;
  const last = st.lastPromotion;
  const lastCondition = last && {
    type: "Promotion",
    status: "True" as const,
    reason: "Promoted",
    message: `"${last.to}" became the primary at ${last.time} (was "${last.from}")`,
  };
  const checkPods = ctx.pods
    .list(ns)
    .filter(
      (p) =>
        p.metadata.labels?.["auxo.dev/task"] === "plan" &&
        p.metadata.ownerReferences?.some((o) => o.kind === "StoragePolicy" && o.uid === policy.metadata.uid),
    );
  const removePods = async (keep?: string) => {
    for (const p of checkPods)
      if (p.metadata.name !== keep)
        await mgr.client.delete(Pods, ns, p.metadata.name).catch((err) => {
          if (!isNotFound(err)) throw err;
        });
  };
  const mine = ctx.copies.filter((c) => c.spec.storagePolicy === policy.metadata.name);
  const byName = new Map(mine.map((c) => [c.metadata.name, c]));
  const libReady = (c: CopyObj) => ctx.libraries.get(ns, c.spec.library)?.status?.phase === "Ready";
  const facts = new Map(
    mine.map((c) => [
      c.metadata.name,
      { ...(ctx.facts.get(c.metadata.name) as CopyFacts), libraryReady: libReady(c), repositoryReady: c.status?.repositoryReady ?? false },
    ]),
  );
  const pending = st.promotion?.to === requested ? st.promotion : undefined;
  const checks = pending?.checks ?? 0;
  const podNameOf = (n: number) => podName(policy.metadata.name, "promote", requested, String(n));
  const pod = checkPods.find((p) => p.metadata.name === podNameOf(checks));
  const r = pod && agentResult(pod);
  let check: PromotionCheck | undefined = pending?.lastCheck as PromotionCheck | undefined;
  if (r && check?.at !== r.at) {
    const d = r.data as { notCopied?: number; sample?: string[] };
    const at = r.at ?? formatTime(now);
    check = r.ok ? { ok: true, notCopied: d.notCopied ?? 0, sample: d.sample ?? [], at } : { ok: false, message: r.message, at };
  }
  // A count goes stale: aux copies fill the candidate, backups fill the primary.
  const ended = ctx.jobs
    .filter((j) => j.spec.storagePolicy === policy.metadata.name)
    .map((j) => j.status?.completionTime)
    .filter((t): t is string => !!t);
  const checkedAt = parseTime(check?.at);
  if (check && (checkedAt === undefined || now - checkedAt > CHECK_FRESH_MS || ended.some((t) => (parseTime(t) ?? 0) > checkedAt)))
    check = undefined;
  const running = ctx.jobs
    .filter((j) => j.spec.storagePolicy === policy.metadata.name && !Terminal.has(j.status?.phase ?? ""))
    .map((j) => j.metadata.name);

  const d = decidePromotion({
    policy: policy.metadata.name,
    requested,
    current: st.primaryCopy,
    copies: facts,
    running,
    forceTo: policy.spec.forcePromotionTo,
    check,
    timeZoneProblem: checkTimeZone(policy.spec.timeZone)[0]?.message,
  });
  switch (d.action) {
    case "none":
      await removePods();
      return { fields: { primaryCopy: requested, promotion: undefined, lastPromotion: last }, condition: lastCondition };
    case "adopt":
      await removePods();
      return { fields: { primaryCopy: requested, promotion: undefined, lastPromotion: last }, condition: lastCondition };
    case "promote": {
      await removePods();
      const before = precedences(policyFacts(policy), [...facts.values()]);
      const promoted = {
        from: d.from,
        to: d.to,
        time: formatTime(now),
        forced: d.forced,
        notCopied: d.notCopied,
        fromPrecedence: before.get(d.to),
      };
      const lost = d.forced ? ` (forced${d.notCopied ? `: ${d.notCopied} jobs of "${d.from}" are not on it` : ""})` : "";
      mgr.events.event(
        policy,
        d.forced ? "Warning" : "Normal",
        "Promoted",
        `"${d.to}" is the primary copy now; "${d.from}" is a synchronous secondary${lost}`,
      );
      return {
        fields: { primaryCopy: d.to, promotion: undefined, lastPromotion: promoted },
        condition: {
          type: "Promotion",
          status: "True",
          reason: "Promoted",
          message: `"${d.to}" became the primary at ${promoted.time} (was "${d.from}")${lost}`,
        },
      };
    }
    case "check": {
      let n = checks;
      if (!pod || r) {
        // No check yet, or the last one is stale: a new pod, under the next number.
        await removePods();
        n = checks + 1;
        const access = (c: CopyObj, role: string) => {
          const lib = ctx.libraries.get(ns, c.spec.library) as LibraryObj;
          const pw = c.spec.encryption.passwordSecret;
          return repositoryAccess(
            lib.spec,
            c.spec.repositoryPath ?? defaultRepositoryPath(ns, policy.metadata.name, c.metadata.name),
            { secret: pw.name, key: pw.key ?? "password" },
            role,
          );
        };
        const to = byName.get(d.to) as CopyObj;
        // The copies this promotion re-points to the candidate: what they still need must be on it. One that
        // cannot be read (library or repository not ready, sources never reaching the primary) may need any job.
        const downstream = promotionDownstream(d.from, d.to, policyFacts(policy), ctx.facts).map((x, i) => {
          const c = byName.get(x.name) as CopyObj;
          const lib = ctx.libraries.get(ns, c.spec.library);
          const readable = !x.unreadable && !!lib && libReady(c) && !!c.status?.repositoryReady;
          return {
            name: x.name,
            access: access(readable ? c : to, `down${i}`),
            rules: rulesOf(c, policy, now),
            active: c.spec.active ?? true,
            ...(readable ? {} : { unreachable: true }),
          };
        });
        const pv = buildAgentPod({
          task: "plan",
          namespace: ns,
          name: podNameOf(n),
          owner: controllerRef(policy, StoragePolicies),
          image: settings.agentImage,
          source: access(byName.get(d.from) as CopyObj, "source"),
          target: access(to, "target"),
          downstream,
          // The candidate's own rules, deferral aside: a deferred job is still to be copied.
          plan: { rules: { ...rulesOf(to, policy, now), copyType: "Synchronous", deferDays: 0 } },
          deadlineSeconds: 1800,
          placement: to.spec.mediaAgent as never,
          labels: { "auxo.dev/promote-to": d.to },
        });
        await mgr.client.create(Pods, pv as never).catch((err) => {
          if (!isConflict(err)) throw err;
        });
      }
      const message = `counting the jobs of "${d.from}" not yet on "${d.to}" (check ${n})`;
      if (st.promotion?.phase !== "Checking" || st.promotion.to !== d.to)
        mgr.events.event(policy, "Normal", "PromotionRequested", `promotion of "${d.to}" requested: ${message}`);
      return {
        fields: {
          primaryCopy: st.primaryCopy,
          promotion: { phase: "Checking", to: d.to, checks: n, lastCheck: check, message },
          lastPromotion: last,
        },
        condition: { type: "Promotion", status: "False", reason: "Checking", message },
      };
    }
    default: {
      // Refused or waiting: keep the current primary; say why once per change.
      const phase = d.action === "refuse" ? "Refused" : "Waiting";
      if (st.promotion?.message !== d.message) mgr.events.event(policy, "Warning", d.reason, d.message);
      if (pod && r) await removePods(); // its count is in lastCheck
      const recheck = check ? Math.max(1000, (parseTime(check.at) ?? now) + CHECK_FRESH_MS - now) : 30_000;
      return {
        fields: {
          primaryCopy: st.primaryCopy,
          promotion: { phase, to: requested, checks, lastCheck: check, message: d.message },
          lastPromotion: last,
        },
        condition: { type: "Promotion", status: "False", reason: d.reason, message: d.message },
        requeueMs: recheck,
      };
    }
  }
}
