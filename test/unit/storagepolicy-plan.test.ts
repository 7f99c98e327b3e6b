// StoragePolicy plans: the copies list (precedence, last run, backlog), the client Secret decision, and the automatic
// aux copy runs (window, schedule slot, a run still going with its follow-ups, history trimming).
import { describe, expect, it } from "vitest";
import type { CopyFacts, PolicyFacts } from "../../src/policy/references.ts";
import type { Window } from "../../src/policy/windows.ts";
import {
  type AutoJob,
  type AutomaticFacts,
  automaticRuns,
  clientSecretDecision,
  type ClientSecretFacts,
  type CopyView,
  planPolicyStatus,
  policyCopies,
  scheduledRuns,
} from "../../src/policy/storagepolicy.ts";

const T = Date.UTC(2026, 11, 2, 10, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const MIN = 60_000;

const view = (name: string, f: Partial<CopyFacts> = {}, v: Partial<CopyView> = {}): CopyView => ({
  facts: { name, storagePolicy: "gold", copyType: "Synchronous", active: true, createdAt: "2026-01-01T00:00:00Z", ...f },
  ready: true,
  ...v,
});
const pf: PolicyFacts = { name: "gold", primaryCopy: "primary" };

describe("the policy's copies", () => {
  const views = new Map([
    ["primary", view("primary", {}, { newestJob: iso(T - MIN), repository: "s3:http://s3/b/team/gold/primary", jobsAvailable: 5 })],
    ["offsite", view("offsite", { createdAt: "2026-01-03T00:00:00Z" }, { ready: false, lastDataAgingTime: "2026-12-01T12:00:00Z" })],
    ["monthly", view("monthly", { copyType: "Selective", precedence: 2 }, { lastDataAgingTime: "2026-12-02T12:00:00Z" })],
    ["other", view("other", { storagePolicy: "silver" })],
  ]);
  const parts = [
    { name: "offsite", phase: "Completed", completionTime: iso(T - 20 * MIN), jobsSelected: 4, jobsCopied: 4, lagSeconds: 30 },
    { name: "offsite", phase: "Failed", completionTime: iso(T - 5 * MIN), jobsSelected: 6, jobsCopied: 2, jobsRemaining: 3 },
  ];

  it("lists them by precedence with the latest aux copy that reached each", () => {
    const out = policyCopies(pf, views, parts);
    expect(out.list.map((c) => [c.name, c.precedence])).toEqual([
      ["primary", 1],
      ["monthly", 2],
      ["offsite", 3],
    ]);
    expect(out.list[2]).toMatchObject({ ready: false, primary: false, backlog: 7, lagSeconds: 30, lastCopyTime: iso(T - 20 * MIN) });
    expect(out.list[0]).toMatchObject({ primary: true, jobs: 5, backlog: undefined, lastCopyTime: undefined });
    expect(out).toMatchObject({
      hasTargets: true,
      newestSourceJob: T - MIN,
      lastDataAgingTime: "2026-12-02T12:00:00Z",
      primaryRepository: "s3:http://s3/b/team/gold/primary",
    });
  });

  it("has no targets with only inactive secondaries", () => {
    const out = policyCopies(
      pf,
      new Map([
        ["primary", view("primary")],
        ["spare", view("spare", { active: false })],
      ]),
      [],
    );
    expect(out.hasTargets).toBe(false);
    expect(out.newestSourceJob).toBeUndefined();
  });

  it("is Ready when its primary is a copy of its own, and says how many secondaries it has", () => {
    const listed = policyCopies(pf, views, parts);
    const facts = new Map([...views].map(([k, v]) => [k, v.facts]));
    const plan = planPolicyStatus({
      pf,
      copies: facts,
      listed,
      promotion: { fields: {} },
      automatic: { recheckMs: 500 },
      client: { name: "gold-auxo-client" },
    });
    expect(plan.ready?.problems).toEqual([]);
    expect(plan.ready?.ok).toEqual({ reason: "CopiesResolved", message: 'primary copy "primary" and 2 secondary copies' });
    expect(plan.status).toMatchObject({ copyCount: 3, clientSecret: "gold-auxo-client" });
    expect(plan.requeueAfterMs).toBe(1000);
    const wrong = planPolicyStatus({
      pf: { name: "gold", primaryCopy: "other" },
      copies: facts,
      listed,
      promotion: { fields: {} },
      automatic: {},
      client: {},
    });
    expect(wrong.ready?.problems.map((p) => p.reason)).toEqual(["PrimaryCopyInOtherPolicy"]);
    expect(wrong.requeueAfterMs).toBeUndefined();
  });
});

describe("the client Secret", () => {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const primary = {
    name: "primary",
    repositoryPath: "team/gold/primary",
    password: { secret: "pw", key: "password" },
    library: { filesystem: { persistentVolumeClaim: { claimName: "backups" } } },
  };
  const facts = (over: Partial<ClientSecretFacts> = {}): ClientSecretFacts => ({
    policy: "gold",
    primary,
    secretData: (s, k) => (s === "pw" && k === "password" ? b64("secret\n") : undefined),
    ...over,
  });

  it("is written with the primary's repository and password", () => {
    const d = clientSecretDecision(facts());
    expect(d.name).toBe("gold-auxo-client");
    expect(d.write?.primaryCopy).toBe("primary");
    expect(Buffer.from(d.write?.data.RESTIC_PASSWORD ?? "", "base64").toString()).toBe("secret");
    expect(Buffer.from(d.write?.data.RESTIC_REPOSITORY ?? "", "base64").toString()).toBe("/libraries/client/team/gold/primary");
  });

  it("is left alone when it holds that already, or while a Secret is missing", () => {
    const data = clientSecretDecision(facts()).write?.data ?? {};
    expect(clientSecretDecision(facts({ existing: { ours: true, data } }))).toEqual({ name: "gold-auxo-client" });
    expect(clientSecretDecision(facts({ existing: { ours: true, data }, secretData: () => undefined }))).toEqual({
      name: "gold-auxo-client",
    });
    expect(clientSecretDecision(facts({ secretData: () => undefined }))).toEqual({});
    expect(clientSecretDecision(facts({ primary: undefined }))).toEqual({});
  });

  it("never takes over a user's Secret of its name", () => {
    const d = clientSecretDecision(facts({ existing: { ours: false, data: {} } }));
    expect(d.write).toBeUndefined();
    expect(d.name).toBeUndefined();
    expect(d.problem?.reason).toBe("ClientSecretConflict");
  });
});

describe("automatic aux copy runs", () => {
  const job = (name: string, phase: string | undefined, over: Partial<AutoJob> = {}): AutoJob => ({
    name,
    uid: `uid-${name}`,
    createdAt: iso(T - 60 * MIN + name.length * 1000),
    phase,
    scheduled: true,
    owners: ["policy-uid"],
    ...over,
  });
  const facts = (over: Partial<AutomaticFacts> = {}): AutomaticFacts => ({
    policy: "gold",
    policyUid: "policy-uid",
    schedule: { every: "30m" },
    operatorEnabled: true,
    createdAt: T - 2 * 60 * MIN,
    lastAuxCopyTime: iso(T - 30 * MIN),
    hasTargets: true,
    promotionPending: false,
    jobs: [],
    ...over,
  });

  it("creates the slot's job when an interval has passed, and waits for the next slot otherwise", () => {
    expect(automaticRuns(facts(), T)).toEqual({ deleteJobs: [], createSlot: T, lastAuxCopyTime: iso(T), recheckMs: 30 * MIN });
    expect(automaticRuns(facts({ lastAuxCopyTime: iso(T - 10 * MIN) }), T)).toEqual({
      deleteJobs: [],
      lastAuxCopyTime: iso(T - 10 * MIN),
      recheckMs: 20 * MIN,
    });
    expect(automaticRuns(facts({ schedule: { enabled: false } }), T).createSlot).toBeUndefined();
    expect(automaticRuns(facts({ operatorEnabled: false }), T).createSlot).toBeUndefined();
    expect(automaticRuns(facts({ hasTargets: false }), T).createSlot).toBeUndefined();
    expect(automaticRuns(facts({ timeZone: "Mars/Olympus" }), T).createSlot).toBeUndefined();
  });

  it("starts at once on a source job newer than the last run (continuous), unless continuous is off", () => {
    const f = facts({ lastAuxCopyTime: iso(T - 10 * MIN), newestSourceJob: T - MIN });
    expect(automaticRuns(f, T).createSlot).toBe(T - MIN);
    expect(automaticRuns({ ...f, schedule: { continuous: false } }, T).createSlot).toBeUndefined();
  });

  it("skips the slot in a doNotSubmitJob window", () => {
    const windows: Window[] = [{ name: "freeze", operations: ["AuxCopy"], days: [], start: "00:00", end: "23:59", doNotSubmitJob: true }];
    const out = automaticRuns(facts({ windows }), T);
    expect(out).toMatchObject({ skippedBy: "freeze", lastAuxCopyTime: iso(T) });
    expect(out.createSlot).toBeUndefined();
    // Outside the window the slot gets its job.
    expect(automaticRuns(facts({ windows: [{ ...(windows[0] as Window), start: "11:00", end: "12:00" }] }), T).createSlot).toBe(T);
  });

  it("waits while a scheduled run or one of its follow-ups is still going, or a promotion is pending", () => {
    const done = job("gold-1", "Completed");
    const followUp = job("gold-1-more", "Running", { scheduled: true, owners: ["uid-gold-1"] });
    expect(automaticRuns(facts({ jobs: [done] }), T).createSlot).toBe(T);
    expect(automaticRuns(facts({ jobs: [job("gold-1", "Running")] }), T).createSlot).toBeUndefined();
    expect(automaticRuns(facts({ jobs: [done, followUp] }), T).createSlot).toBeUndefined();
    // Transitively: the follow-up of a follow-up.
    const second = job("gold-1-more-more", "Pending", { owners: ["uid-gold-1-more"] });
    expect(automaticRuns(facts({ jobs: [done, { ...followUp, phase: "Completed" }, second] }), T).createSlot).toBeUndefined();
    // A manual run and its follow-ups are not the schedule's.
    const manual = job("manual", "Completed", { scheduled: false, owners: [] });
    expect(automaticRuns(facts({ jobs: [manual, job("manual-more", "Running", { owners: ["uid-manual"] })] }), T).createSlot).toBe(T);
    expect(automaticRuns(facts({ promotionPending: true }), T).createSlot).toBeUndefined();
  });

  it("trims finished runs beyond the history limits with their follow-ups, never a chain still going", () => {
    const runs = [1, 2, 3, 4, 5].map((i) => job(`gold-${i}`, "Completed", { createdAt: iso(T - (10 - i) * MIN) }));
    const followOfOldest = job("gold-1-more", "Completed", { owners: ["uid-gold-1"], createdAt: iso(T - 8 * MIN) });
    const out = automaticRuns(facts({ jobs: [...runs, followOfOldest], schedule: { successfulJobsHistoryLimit: 3 } }), T);
    expect(out.deleteJobs).toEqual(["gold-1-more", "gold-1", "gold-2"]);
    // A chain whose follow-up is still going is not finished: it stays (deleting it would take the follow-up along).
    const going = { ...followOfOldest, phase: "Running" };
    expect(automaticRuns(facts({ jobs: [...runs, going], schedule: { successfulJobsHistoryLimit: 3 } }), T).deleteJobs).toEqual(["gold-2"]);
    // A chain with a failed follow-up counts against the failed history.
    const failed = { ...followOfOldest, phase: "Failed" };
    expect(
      automaticRuns(facts({ jobs: [...runs, failed], schedule: { successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 0 } }), T)
        .deleteJobs,
    ).toEqual(["gold-1-more", "gold-1", "gold-2"]);
    expect(
      automaticRuns(facts({ jobs: [...runs, failed], schedule: { successfulJobsHistoryLimit: 4, failedJobsHistoryLimit: 1 } }), T)
        .deleteJobs,
    ).toEqual([]);
  });

  it("finds each scheduled run's chain by owner references", () => {
    const chains = scheduledRuns(
      [
        job("a", "Completed"),
        job("a-more", "Completed", { owners: ["uid-a"] }),
        job("b", "Running"),
        job("x", "Running", { owners: ["other"] }),
      ],
      "policy-uid",
    );
    expect(chains.map((c) => c.map((j) => j.name))).toEqual([["a", "a-more"], ["b"]]);
  });
});
