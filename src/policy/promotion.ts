// Promoting a secondary copy to primary by changing StoragePolicy.spec.primaryCopy (reference §7). The primary in
// force is the one status records (status.primaryCopy): a change of spec is a request, carried out only when its
// preconditions hold. Pure.
import type { StoragePolicyStatus } from "../api/v1alpha1/index.ts";
import type { AgentOutcome } from "../mediaagent/protocol.ts";
import { formatTime, parseTime } from "./time.ts";
import { podName } from "./names.ts";
import type { AgentPodInput } from "../mediaagent/pod.ts";
import type { PlanResult } from "../mediaagent/protocol.ts";
import type { CatalogEntry } from "./catalog.ts";
import type { PlannedEvent } from "./plan.ts";
import { checkTimeZone, type CopyFacts, type PolicyFacts, precedences } from "./references.ts";
import { type CopyRules, planCopy } from "./selection.ts";

/**
 * What the last check pod found (status.promotion.lastCheck): jobs of the current primary that the candidate lacks
 * and that it, or a copy the promotion re-points to it, still needs.
 */
export type PromotionCheck = { ok: true; notCopied: number; sample: string[]; at: string } | { ok: false; message: string; at: string };

/** A copy that takes its data from the candidate after the promotion, as the check pod reads it. */
export interface PromotionDownstream {
  name: string;
  rules: CopyRules;
  /** Its catalog; undefined when it cannot be read: it may need any job. */
  catalog?: readonly CatalogEntry[];
}

const DAY = 86_400_000;

/**
 * The jobs of the current primary that the candidate lacks and someone still needs: the candidate by its own rules
 * (deferral aside), and every copy the promotion re-points to it by its rules, whatever the candidate's `backups`
 * date (reference §7). Those jobs exist only on the old primary after the promotion.
 */
export function promotionShortfall(
  primary: readonly CatalogEntry[],
  candidate: readonly CatalogEntry[],
  rules: CopyRules,
  downstream: readonly PromotionDownstream[],
  now: number,
): { notCopied: number; sample: string[]; neededBy: string[] } {
  const missing = new Map<string, CatalogEntry>();
  for (const e of planCopy([...primary], [...candidate], { ...rules, deferDays: 0 }, { now }).toCopy) missing.set(e.jobId, e);
  const onCandidate = new Set(candidate.map((e) => e.originalId));
  const neededBy: string[] = [];
  for (const d of downstream) {
    // What it takes now and later (deferred jobs, periods still open), as data aging counts its needs.
    const needs = d.catalog
      ? planCopy([...primary], [...d.catalog], { ...d.rules, deferDays: 0 }, { now: now + 400 * DAY }).toCopy
      : primary.filter((e) => e.status === "completed" || e.status === "completedWithErrors");
    let any = false;
    for (const e of needs)
      if (!onCandidate.has(e.originalId)) {
        missing.set(e.jobId, e);
        any = true;
      }
    if (any) neededBy.push(d.name);
  }
  const sorted = [...missing.values()].sort((a, b) => a.startTime.localeCompare(b.startTime) || a.jobId.localeCompare(b.jobId));
  return { notCopied: sorted.length, sample: sorted.slice(0, 10).map((e) => e.jobId), neededBy };
}

export interface PromotionInput {
  policy: string;
  /** spec.primaryCopy */
  requested: string;
  /** status.primaryCopy: the primary in force (undefined for a new policy). */
  current?: string;
  /** The policy's copies, by name. */
  copies: ReadonlyMap<string, CopyFacts & { repositoryReady?: boolean; libraryReady?: boolean }>;
  /** Aux copy jobs of the policy that have not finished. */
  running: string[];
  /** spec.forcePromotionTo: promote to this copy even with jobs not copied to it yet. */
  forceTo?: string;
  check?: PromotionCheck;
  /** The policy's spec.timeZone is unknown (checkTimeZone): its rules cannot be applied, so nothing is promoted. */
  timeZoneProblem?: string;
}

export type PromotionDecision =
  /** Nothing to do: the requested primary is in force. */
  | { action: "none" }
  /** Take the requested primary as it is: the policy has none yet (new, or its primary never existed). */
  | { action: "adopt" }
  /** Make `to` the primary now. */
  | { action: "promote"; from: string; to: string; forced: boolean; notCopied?: number }
  /** The request cannot be carried out as it stands; the user must change spec. */
  | { action: "refuse"; reason: string; message: string }
  /** Preconditions will hold later (a run ends, a library returns); retry. */
  | { action: "wait"; reason: string; message: string }
  /** Count the jobs of the current primary that the candidate lacks (a check pod), then decide. */
  | { action: "check"; from: string; to: string };

export function decidePromotion(i: PromotionInput): PromotionDecision {
  if (i.current === i.requested) return { action: "none" };
  const from = i.current;
  const to = i.requested;
  // Nothing to promote from: a new policy, or one whose primary was never created (a typo being fixed).
  if (from === undefined || i.copies.get(from)?.storagePolicy !== i.policy) return { action: "adopt" };
  if (i.timeZoneProblem) return { action: "wait", reason: "InvalidTimeZone", message: i.timeZoneProblem };
  const c = i.copies.get(to);
  if (!c || c.storagePolicy !== i.policy)
    return { action: "refuse", reason: "PromotionRefused", message: `"${to}" is not a copy of policy "${i.policy}"` };
  // Only an active synchronous copy holds every job; a selective one would lose the jobs it never took.
  if (c.copyType !== "Synchronous")
    return {
      action: "refuse",
      reason: "PromotionRefused",
      message: `"${to}" is a ${c.copyType} copy; only an active Synchronous copy can become the primary`,
    };
  if (!c.active)
    return {
      action: "refuse",
      reason: "PromotionRefused",
      message: `"${to}" is not active; only an active Synchronous copy can become the primary`,
    };
  if (i.running.length)
    return {
      action: "wait",
      reason: "AuxCopyRunning",
      message: `promotion of "${to}" waits for aux copy job${i.running.length > 1 ? "s" : ""} ${i.running.slice(0, 3).join(", ")} to finish`,
    };
  if (!c.libraryReady || !c.repositoryReady)
    return { action: "wait", reason: "CopyNotReady", message: `promotion of "${to}" waits for its library and repository to be ready` };
  const forced = i.forceTo === to;
  const old = i.copies.get(from);
  // With the current primary's storage down nothing can be counted: that is the case promotion exists for, and it
  // takes an explicit force.
  if (!old?.libraryReady || !old.repositoryReady) {
    if (forced) return { action: "promote", from, to, forced };
    return {
      action: "refuse",
      reason: "PrimaryUnreadable",
      message: `the current primary "${from}" cannot be read (library or repository not ready), so jobs not yet copied to "${to}" cannot be counted; set spec.forcePromotionTo: ${to} to promote anyway`,
    };
  }
  if (!i.check) return { action: "check", from, to };
  if (!i.check.ok) {
    if (forced) return { action: "promote", from, to, forced };
    return {
      action: "refuse",
      reason: "PrimaryUnreadable",
      message: `counting the jobs of "${from}" not yet on "${to}" failed: ${i.check.message}; set spec.forcePromotionTo: ${to} to promote anyway`,
    };
  }
  if (i.check.notCopied > 0 && !forced)
    return {
      action: "refuse",
      reason: "JobsNotCopied",
      message: `${i.check.notCopied} job${i.check.notCopied > 1 ? "s" : ""} of "${from}" ${i.check.notCopied > 1 ? "are" : "is"} not on "${to}" yet (${i.check.sample.join(", ")}${i.check.notCopied > i.check.sample.length ? ", ..." : ""}), and "${to}" or a copy that takes its data from "${to}" after the promotion needs them: copy them to "${to}" first (an aux copy; jobs before its spec.backups date need that date changed), or set spec.forcePromotionTo: ${to} (those jobs then stay restorable only from "${from}", which keeps what those copies need)`,
    };
  return { action: "promote", from, to, forced, notCopied: i.check.notCopied };
}

/** A check older than this, or older than an aux copy that ended since, is counted again. */
export const CHECK_FRESH_MS = 5 * 60_000;
const TERMINAL = new Set(["Completed", "CompletedWithErrors", "Failed", "Killed"]);

/** What the StoragePolicy controller writes for the promotion: its status fields, condition and requeue. */
export interface PromotionStep {
  fields: Pick<StoragePolicyStatus, "primaryCopy" | "promotion" | "lastPromotion">;
  /** The Promotion condition: False while a request is pending, True once the latest one took effect. */
  condition?: { type: string; status: "True" | "False"; reason: string; message: string };
  requeueMs?: number;
}

/** The step, and the pods and events that go with it (the applier carries them out; the policy writes the step). */
export interface PromotionPlan {
  step: PromotionStep;
  pods?: AgentPodInput[];
  deletePods?: string[];
  events?: PlannedEvent[];
}

export interface PromotionFacts {
  now: number;
  policy: PolicyFacts;
  /** spec.primaryCopy */
  requested: string;
  forceTo?: string;
  timeZone?: string;
  status: PromotionStep["fields"];
  /** The policy's copies, by name, with whether their library and repository are ready. */
  copies: ReadonlyMap<string, CopyFacts & { libraryReady: boolean; repositoryReady: boolean }>;
  /** The policy's aux copy jobs. */
  jobs: { name: string; phase?: string; completionTime?: string }[];
  /** The policy's check pods, with their results once ended. */
  checkPods: { name: string; result?: AgentOutcome<PlanResult> }[];
  /** The check pod of the pending request but its name; undefined when a copy's library is missing. */
  checkPod?: Omit<AgentPodInput, "name">;
  /** Pods the API server refused on the first call of this plan. */
  rejected?: { name: string; message: string }[];
}

/** The check pod of a request: its number is in status before it starts, so a stale cache never starts a second. */
export const checkPodName = (policy: string, to: string, n: number): string => podName(policy, "promote", to, String(n));

/** Promotion as a plan: the check pod's count, the decision, and what the policy's status says about it. */
export function planPromotion(f: PromotionFacts): PromotionPlan {
  const st = f.status;
  const pending = st.promotion?.to === f.requested ? st.promotion : undefined;
  const checks = pending?.checks ?? 0;
  const pod = f.checkPods.find((p) => p.name === checkPodName(f.policy.name, f.requested, checks));
  const check = currentCheck(f, pending?.lastCheck as PromotionCheck | undefined, pod?.result);
  const d = decidePromotion({
    policy: f.policy.name,
    requested: f.requested,
    current: st.primaryCopy,
    copies: f.copies,
    running: f.jobs.filter((j) => !TERMINAL.has(j.phase ?? "")).map((j) => j.name),
    forceTo: f.forceTo,
    check,
    timeZoneProblem: checkTimeZone(f.timeZone)[0]?.message,
  });
  const all = f.checkPods.map((p) => p.name);
  switch (d.action) {
    case "none":
    case "adopt":
      return { step: inForce(f), deletePods: all };
    case "promote":
      return { ...promote(f, d), deletePods: all };
    case "check":
      return checking(f, d, checks, check, pod);
    default:
      return { ...pendingRequest(f, d, checks, check), deletePods: pod?.result ? all : [] }; // its count is in lastCheck
  }
}

/** The latest count: a new result, else the one in status; stale once old or once an aux copy ended after it. */
function currentCheck(
  f: PromotionFacts,
  recorded: PromotionCheck | undefined,
  r: AgentOutcome<PlanResult> | undefined,
): PromotionCheck | undefined {
  let check = recorded;
  if (r && check?.at !== r.at) {
    const at = r.at ?? formatTime(f.now);
    check = r.ok ? { ok: true, notCopied: r.data.notCopied ?? 0, sample: r.data.sample ?? [], at } : { ok: false, message: r.message, at };
  }
  // A count goes stale: aux copies fill the candidate, backups fill the primary.
  const checkedAt = parseTime(check?.at);
  const ended = f.jobs.map((j) => parseTime(j.completionTime)).filter((t): t is number => t !== undefined);
  if (check && (checkedAt === undefined || f.now - checkedAt > CHECK_FRESH_MS || ended.some((t) => t > checkedAt))) return undefined;
  return check;
}

/** The requested primary is in force (or taken as it is): no request pending. */
function inForce(f: PromotionFacts): PromotionStep {
  const last = f.status.lastPromotion;
  return {
    fields: { primaryCopy: f.requested, promotion: undefined, lastPromotion: last },
    condition: last && {
      type: "Promotion",
      status: "True",
      reason: "Promoted",
      message: `"${last.to}" became the primary at ${last.time} (was "${last.from}")`,
    },
  };
}

function promote(f: PromotionFacts, d: Extract<PromotionDecision, { action: "promote" }>): PromotionPlan {
  const before = precedences(f.policy, [...f.copies.values()]);
  const time = formatTime(f.now);
  const promoted = { from: d.from, to: d.to, time, forced: d.forced, notCopied: d.notCopied, fromPrecedence: before.get(d.to) };
  const lost = d.forced ? ` (forced${d.notCopied ? `: ${d.notCopied} jobs of "${d.from}" are not on it` : ""})` : "";
  return {
    step: {
      fields: { primaryCopy: d.to, promotion: undefined, lastPromotion: promoted },
      condition: {
        type: "Promotion",
        status: "True",
        reason: "Promoted",
        message: `"${d.to}" became the primary at ${time} (was "${d.from}")${lost}`,
      },
    },
    events: [
      {
        type: d.forced ? "Warning" : "Normal",
        reason: "Promoted",
        message: `"${d.to}" is the primary copy now; "${d.from}" is a synchronous secondary${lost}`,
      },
    ],
  };
}

/** Counting: a check pod under the next number when there is none yet or the last one is stale, else its result awaited. */
function checking(
  f: PromotionFacts,
  d: Extract<PromotionDecision, { action: "check" }>,
  checks: number,
  check: PromotionCheck | undefined,
  pod: PromotionFacts["checkPods"][number] | undefined,
): PromotionPlan {
  const st = f.status;
  const fresh = !pod || !!pod.result;
  const n = fresh ? checks + 1 : checks;
  const name = checkPodName(f.policy.name, d.to, n);
  const refused = fresh ? f.rejected?.find((r) => r.name === name) : undefined;
  if (refused) return checkRefused(f, d, n, check, refused.message);
  const message = `counting the jobs of "${d.from}" not yet on "${d.to}" (check ${n})`;
  const announce = st.promotion?.phase !== "Checking" || st.promotion.to !== d.to;
  return {
    step: pendingStep(f, { phase: "Checking", to: d.to, checks: n, lastCheck: check, message }, "Checking"),
    ...(fresh ? { deletePods: f.checkPods.map((p) => p.name), pods: f.checkPod ? [{ ...f.checkPod, name }] : [] } : {}),
    events: announce ? [{ type: "Normal", reason: "PromotionRequested", message: `promotion of "${d.to}" requested: ${message}` }] : [],
  };
}

/** The API server refused the check pod: the request waits (the next reconcile tries a new pod), and says why once. */
function checkRefused(
  f: PromotionFacts,
  d: Extract<PromotionDecision, { action: "check" }>,
  n: number,
  check: PromotionCheck | undefined,
  why: string,
): PromotionPlan {
  const message = `promotion of "${d.to}" waits: ${why}`;
  return {
    step: pendingStep(f, { phase: "Waiting", to: d.to, checks: n, lastCheck: check, message }, "PodRejected", 30_000),
    events: f.status.promotion?.message === message ? [] : [{ type: "Warning", reason: "PodRejected", message }],
  };
}

/** Refused or waiting: the current primary stays; say why once per change; count again when the check goes stale. */
function pendingRequest(
  f: PromotionFacts,
  d: Extract<PromotionDecision, { action: "refuse" | "wait" }>,
  checks: number,
  check: PromotionCheck | undefined,
): PromotionPlan {
  const phase = d.action === "refuse" ? "Refused" : "Waiting";
  const recheck = check ? Math.max(1000, (parseTime(check.at) ?? f.now) + CHECK_FRESH_MS - f.now) : 30_000;
  return {
    step: pendingStep(f, { phase, to: f.requested, checks, lastCheck: check, message: d.message }, d.reason, recheck),
    events: f.status.promotion?.message === d.message ? [] : [{ type: "Warning", reason: d.reason, message: d.message }],
  };
}

/** A request not carried out yet: the primary in force stays; status.promotion and the condition say where it stands. */
function pendingStep(
  f: PromotionFacts,
  promotion: NonNullable<PromotionStep["fields"]["promotion"]> & { message: string },
  reason: string,
  requeueMs?: number,
): PromotionStep {
  return {
    fields: { primaryCopy: f.status.primaryCopy, promotion, lastPromotion: f.status.lastPromotion },
    condition: { type: "Promotion", status: "False", reason, message: promotion.message },
    ...(requeueMs !== undefined ? { requeueMs } : {}),
  };
}
