// A copy's selection rules as the MediaAgent's copy and aging tasks read them (policy/selection.ts decides with them).
import type { PolicyCopySpec, StoragePolicySpec } from "../api/v1alpha1/index.ts";
import type { CopyRules } from "./selection.ts";

/** The copy's rules for the pod's selection, with the policy's time zone. */
export function rulesOf(copy: { spec: PolicyCopySpec }, policy: { spec: StoragePolicySpec }, now: number): CopyRules {
  const s = copy.spec;
  return {
    copyType: s.copyType,
    backups: s.backups,
    deferDays: s.deferDays,
    selection: s.selection as CopyRules["selection"],
    // A Recopy dated in the future is refused (the copy's Ready says so): no copy event could ever be newer than it,
    // so it would recopy the job on every run.
    jobOverrides: s.jobOverrides
      ?.filter((o) => !recopyInFuture(o, now))
      .map((o) => ({ jobId: o.jobId, action: o.action, ...(o.at ? { at: o.at } : {}) })),
    timeZone: policy.spec.timeZone ?? "UTC",
  };
}

/** A Recopy override whose request time lies ahead of now (beyond a minute of clock difference). */
export const recopyInFuture = (o: { action: string; at?: string }, now: number): boolean =>
  o.action === "Recopy" && (o.at ? Date.parse(o.at) : NaN) > now + 60_000;
