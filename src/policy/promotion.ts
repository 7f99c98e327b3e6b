// Promoting a secondary copy to primary by changing StoragePolicy.spec.primaryCopy (reference §7). The primary in
// force is the one status records (status.primaryCopy): a change of spec is a request, carried out only when its
// preconditions hold. Pure.
import type { CatalogEntry } from "./catalog.ts";
import type { CopyFacts } from "./references.ts";
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
