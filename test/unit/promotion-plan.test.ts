// Promotion's plan (policy/promotion.ts planPromotion; docs/operations.md, "Promoting a copy to primary"): a change of
// spec.primaryCopy starts a check pod, its count decides, and the policy's status and events say what happened.
// Plain facts and a fixed clock.
import { describe, expect, it } from "vitest";
import type { CopyFacts } from "../../src/policy/references.ts";
import { checkPodName, type PromotionFacts, planPromotion } from "../../src/policy/promotion.ts";

const NOW = Date.parse("2026-06-10T08:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.000Z$/, "Z");
const access = (role: string) => ({ repository: `/libraries/${role}/repo`, options: {}, volumes: [], env: [] });

const copy = (name: string, extra: Partial<CopyFacts & { libraryReady: boolean; repositoryReady: boolean }> = {}) => ({
  name,
  storagePolicy: "gold",
  copyType: "Synchronous" as const,
  active: true,
  createdAt: "",
  libraryReady: true,
  repositoryReady: true,
  ...extra,
});

/** Policy gold asks to promote "offsite" over the primary "primary". */
function facts(over: Partial<PromotionFacts> = {}): PromotionFacts {
  return {
    now: NOW,
    policy: { name: "gold", primaryCopy: "primary" },
    requested: "offsite",
    status: { primaryCopy: "primary" },
    copies: new Map([
      ["primary", copy("primary")],
      ["offsite", copy("offsite", { sourceCopy: "primary" })],
    ]),
    jobs: [],
    checkPods: [],
    checkPod: {
      task: "plan",
      namespace: "team",
      owner: { apiVersion: "auxo.dev/v1alpha1", kind: "StoragePolicy", name: "gold", uid: "p1" },
      image: "auxo:test",
      source: access("source"),
      target: access("target"),
      downstream: [],
      deadlineSeconds: 1800,
      labels: { "auxo.dev/promote-to": "offsite" },
    },
    ...over,
  };
}

const checking = (n: number, lastCheck?: NonNullable<NonNullable<PromotionFacts["status"]["promotion"]>["lastCheck"]>) => ({
  primaryCopy: "primary",
  promotion: {
    phase: "Checking" as const,
    to: "offsite",
    checks: n,
    message: `counting the jobs of "primary" not yet on "offsite" (check ${n})`,
    lastCheck,
  },
});
const endedCheck = (n: number, data: { notCopied?: number; sample?: string[] }, ok = true, at = iso(NOW - 1000)) => ({
  name: checkPodName("gold", "offsite", n),
  result: { ok, message: ok ? "" : "repository unreachable", at, data },
});

describe("promotion: the request", () => {
  it("starts a check pod under the next number and announces the request once", () => {
    const plan = planPromotion(facts());
    const message = 'counting the jobs of "primary" not yet on "offsite" (check 1)';
    expect(plan.pods).toMatchObject([{ task: "plan", name: "gold-promote-offsite-1", labels: { "auxo.dev/promote-to": "offsite" } }]);
    expect(plan.step).toEqual({
      fields: {
        primaryCopy: "primary",
        promotion: { phase: "Checking", to: "offsite", checks: 1, lastCheck: undefined, message },
        lastPromotion: undefined,
      },
      condition: { type: "Promotion", status: "False", reason: "Checking", message },
    });
    expect(plan.events).toEqual([
      { type: "Normal", reason: "PromotionRequested", message: `promotion of "offsite" requested: ${message}` },
    ]);
  });

  it("waits for its running check pod without starting another or announcing again", () => {
    const plan = planPromotion(facts({ status: checking(1), checkPods: [{ name: "gold-promote-offsite-1" }] }));
    expect(plan.pods).toBeUndefined();
    expect(plan.deletePods).toBeUndefined();
    expect(plan.step.fields.promotion).toMatchObject({ phase: "Checking", checks: 1 });
    expect(plan.events).toEqual([]);
  });

  it("reports a check pod the API server refuses in the Promotion condition, once", () => {
    const refused = "the API server refused MediaAgent pod: exceeded quota";
    const plan = planPromotion({ ...facts(), rejected: [{ name: "gold-promote-offsite-1", message: refused }] });
    const message = `promotion of "offsite" waits: ${refused}`;
    expect(plan.step.condition).toEqual({ type: "Promotion", status: "False", reason: "PodRejected", message });
    expect(plan.step.fields.promotion).toMatchObject({ phase: "Waiting", checks: 1, message });
    expect(plan.step.requeueMs).toBe(30_000);
    expect(plan.events).toEqual([{ type: "Warning", reason: "PodRejected", message }]);
    // The retry, refused again for the same reason, tries check 2 and says nothing new.
    const again = planPromotion({
      ...facts({ status: { primaryCopy: "primary", promotion: { phase: "Waiting", to: "offsite", checks: 1, message } } }),
      rejected: [{ name: "gold-promote-offsite-2", message: refused }],
    });
    expect(again.step.fields.promotion).toMatchObject({ checks: 2, message });
    expect(again.events).toEqual([]);
  });
});

describe("promotion: the count decides", () => {
  it("promotes when no job is missing, and the check pod goes", () => {
    const plan = planPromotion(facts({ status: checking(1), checkPods: [endedCheck(1, { notCopied: 0, sample: [] })] }));
    expect(plan.step.fields).toEqual({
      primaryCopy: "offsite",
      promotion: undefined,
      lastPromotion: { from: "primary", to: "offsite", time: iso(NOW), forced: false, notCopied: 0, fromPrecedence: 2 },
    });
    expect(plan.step.condition).toEqual({
      type: "Promotion",
      status: "True",
      reason: "Promoted",
      message: `"offsite" became the primary at ${iso(NOW)} (was "primary")`,
    });
    expect(plan.events).toEqual([
      { type: "Normal", reason: "Promoted", message: '"offsite" is the primary copy now; "primary" is a synchronous secondary' },
    ]);
    expect(plan.deletePods).toEqual(["gold-promote-offsite-1"]);
  });

  it("refuses while jobs that the candidate or a copy re-pointed to it needs are missing, saying so once", () => {
    const plan = planPromotion(facts({ status: checking(1), checkPods: [endedCheck(1, { notCopied: 2, sample: ["j1", "j2"] })] }));
    expect(plan.step.condition).toMatchObject({ status: "False", reason: "JobsNotCopied" });
    expect(plan.step.condition?.message).toContain('2 jobs of "primary" are not on "offsite" yet (j1, j2)');
    expect(plan.step.condition?.message).toContain('or a copy that takes its data from "offsite" after the promotion needs them');
    expect(plan.step.fields).toMatchObject({
      primaryCopy: "primary",
      promotion: { phase: "Refused", checks: 1, lastCheck: { ok: true, notCopied: 2, sample: ["j1", "j2"], at: iso(NOW - 1000) } },
    });
    expect(plan.events).toMatchObject([{ type: "Warning", reason: "JobsNotCopied" }]);
    expect(plan.deletePods).toEqual(["gold-promote-offsite-1"]); // its count is in lastCheck
    // Counted again when the count goes stale (5 minutes after it).
    expect(plan.step.requeueMs).toBe(5 * 60_000 - 1000);
    const said = { ...plan.step.fields, primaryCopy: "primary" };
    expect(planPromotion(facts({ status: said, checkPods: [] })).events).toEqual([]);
  });

  it("promotes with force despite missing jobs, and says how many", () => {
    const plan = planPromotion(
      facts({ forceTo: "offsite", status: checking(1), checkPods: [endedCheck(1, { notCopied: 3, sample: [] })] }),
    );
    expect(plan.step.fields.lastPromotion).toMatchObject({ forced: true, notCopied: 3 });
    expect(plan.events).toEqual([
      {
        type: "Warning",
        reason: "Promoted",
        message: '"offsite" is the primary copy now; "primary" is a synchronous secondary (forced: 3 jobs of "primary" are not on it)',
      },
    ]);
  });

  it("counts again once the count is stale: older than 5 minutes, or older than an aux copy that ended since", () => {
    const old = { ok: true as const, notCopied: 2, sample: ["j1"], at: iso(NOW - 6 * 60_000) };
    const stale = planPromotion(facts({ status: checking(1, old), checkPods: [endedCheck(1, { notCopied: 2 }, true, old.at)] }));
    expect(stale.pods?.[0]?.name).toBe("gold-promote-offsite-2");
    expect(stale.deletePods).toEqual(["gold-promote-offsite-1"]);
    expect(stale.step.fields.promotion).toMatchObject({ phase: "Checking", checks: 2, lastCheck: undefined });

    const recent = { ...old, at: iso(NOW - 60_000) };
    const jobs = [{ name: "gold-aux-7", phase: "Completed", completionTime: iso(NOW - 30_000) }];
    const afterAuxCopy = planPromotion(
      facts({ jobs, status: checking(1, recent), checkPods: [endedCheck(1, { notCopied: 2 }, true, recent.at)] }),
    );
    expect(afterAuxCopy.pods?.[0]?.name).toBe("gold-promote-offsite-2");
  });

  it("refuses when the count failed, unless forced", () => {
    const plan = planPromotion(facts({ status: checking(1), checkPods: [endedCheck(1, {}, false)] }));
    expect(plan.step.condition).toMatchObject({ reason: "PrimaryUnreadable" });
    expect(plan.step.condition?.message).toContain("failed: repository unreachable");
  });

  it("waits while an aux copy of the policy runs", () => {
    const plan = planPromotion(facts({ jobs: [{ name: "gold-aux-8", phase: "Running" }] }));
    expect(plan.pods).toBeUndefined();
    expect(plan.step).toMatchObject({
      fields: { primaryCopy: "primary", promotion: { phase: "Waiting" } },
      condition: { reason: "AuxCopyRunning", message: 'promotion of "offsite" waits for aux copy job gold-aux-8 to finish' },
      requeueMs: 30_000,
    });
  });
});

describe("promotion: nothing pending", () => {
  it("keeps the latest promotion's condition and removes leftover check pods", () => {
    const last = { from: "primary", to: "offsite", time: "2026-06-01T00:00:00Z", forced: false };
    const plan = planPromotion(
      facts({ status: { primaryCopy: "offsite", lastPromotion: last }, checkPods: [{ name: "gold-promote-offsite-3" }] }),
    );
    expect(plan.step).toEqual({
      fields: { primaryCopy: "offsite", promotion: undefined, lastPromotion: last },
      condition: {
        type: "Promotion",
        status: "True",
        reason: "Promoted",
        message: '"offsite" became the primary at 2026-06-01T00:00:00Z (was "primary")',
      },
    });
    expect(plan.deletePods).toEqual(["gold-promote-offsite-3"]);
    expect(plan.events).toBeUndefined();
  });

  it("takes the first primary of a new policy as it is, without a condition", () => {
    const plan = planPromotion(facts({ status: {} }));
    expect(plan.step).toEqual({ fields: { primaryCopy: "offsite", promotion: undefined, lastPromotion: undefined }, condition: undefined });
  });
});
