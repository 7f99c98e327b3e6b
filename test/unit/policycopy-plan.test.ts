// PolicyCopy plans: init rounds (first attempt, retry with back-off, a refused or unschedulable pod), scan rounds (due
// by interval, by the user's annotation, by a catalog change; the result's counts), and the repository's identity
// (RepositoryShared, RepositoryChanged, RepositoryPathNotAllowed, RepositoryMoved).
import { describe, expect, it } from "vitest";
import { repositoryAccess } from "../../src/policy/repository.ts";
import {
  catalogChangedAt,
  type CopyFactsForPlan,
  type CopyObject,
  type CopyRepositoryFacts,
  planCopy,
  repositoryStep,
} from "../../src/policy/policycopy.ts";

const T = Date.UTC(2026, 11, 2, 10, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const MIN = 60_000;
const library = { filesystem: { persistentVolumeClaim: { claimName: "backups" } } };
const location = "pvc:team/backups//team/gold/offsite";

const copy = (status: CopyObject["status"] = {}, over: Partial<CopyObject["spec"]> = {}): CopyObject => ({
  metadata: { name: "offsite", namespace: "team", uid: "abcdef1234", creationTimestamp: "2026-01-01T00:00:00Z" },
  spec: { storagePolicy: "gold", library: "disk", encryption: { passwordSecret: { name: "pw" } }, ...over },
  status,
});
const repo = (c: CopyObject, over: Partial<CopyRepositoryFacts> = {}): CopyRepositoryFacts => ({
  copy: c,
  repoPath: "team/gold/offsite",
  library: { spec: library, ready: true },
  access: repositoryAccess(library, "team/gold/offsite", { secret: "pw", key: "password" }),
  claims: [],
  initPods: [],
  scanPods: [],
  owner: { apiVersion: "auxo.dev/v1alpha1", kind: "PolicyCopy", name: "offsite", uid: "abcdef1234" },
  image: "auxo:test",
  probes: true,
  allowPathsOutsideNamespace: false,
  scanIntervalMs: 10 * MIN,
  ...over,
});
const ready = { repositoryReady: true, repositoryId: "id-1", repositoryLocation: location };

describe("init rounds", () => {
  it("starts the first init once the library is Ready, and nothing before", () => {
    const step = repositoryStep(repo(copy()), undefined, T);
    expect(step.pods?.map((p) => [p.task, p.name, p.labels])).toEqual([["init", "offsite-init-abcdef12-1", { "auxo.dev/attempt": "1" }]]);
    expect(step.problems).toEqual([]);
    expect(repositoryStep(repo(copy(), { library: { spec: library, ready: false } }), undefined, T).pods ?? []).toEqual([]);
    expect(repositoryStep(repo(copy(), { probes: false }), undefined, T).pods ?? []).toEqual([]);
  });

  it("records the repository's identity and location from a successful init", () => {
    const pod = {
      name: "offsite-init-abcdef12-1",
      attempt: 1,
      result: { ok: true, message: "", at: iso(T), data: { id: "id-1", created: true } },
    };
    const step = repositoryStep(repo(copy(), { initPods: [pod] }), undefined, T);
    expect(step.fields).toMatchObject({
      repositoryReady: true,
      repositoryId: "id-1",
      repositoryLocation: location,
      initFailure: undefined,
    });
    expect(step.deletePods ?? []).toEqual([]);
    // Once status shows it, the init pod goes and the first scan starts.
    const next = repositoryStep(repo(copy(ready), { initPods: [pod] }), undefined, T + 1000);
    expect(next.deletePods).toEqual(["offsite-init-abcdef12-1"]);
    expect(next.pods?.map((p) => p.name)).toEqual(["offsite-scan-0"]);
  });

  it("records a failed attempt first, then retries after the back-off", () => {
    const failed = {
      name: "offsite-init-abcdef12-1",
      attempt: 1,
      result: { ok: false, message: "wrong password", at: iso(T), data: { kind: "WrongPassword" } },
    };
    const step = repositoryStep(repo(copy(), { initPods: [failed] }), undefined, T + 1000);
    expect(step.fields.initFailure).toEqual({
      attempts: 1,
      reason: "WrongPassword",
      message: `repository init failed (attempt 1): wrong password; next attempt at ${iso(T + 30_000)}`,
      lastAttemptTime: iso(T),
    });
    expect(step.problems.map((p) => p.reason)).toEqual(["WrongPassword"]);
    expect(step.pods ?? []).toEqual([]);
    const recorded = copy({ initFailure: step.fields.initFailure as NonNullable<CopyObject["status"]>["initFailure"] });
    const waiting = repositoryStep(repo(recorded, { initPods: [failed] }), undefined, T + 10_000);
    expect(waiting).toMatchObject({ deletePods: ["offsite-init-abcdef12-1"], requeueMs: 20_000 });
    expect(waiting.pods ?? []).toEqual([]);
    const retry = repositoryStep(repo(recorded), undefined, T + 30_000);
    expect(retry.pods?.map((p) => p.name)).toEqual(["offsite-init-abcdef12-2"]);
    expect(retry.problems.map((p) => p.reason)).toEqual(["WrongPassword"]);
  });

  it("counts a refused pod and a pod that never starts as failed attempts", () => {
    const refused = repositoryStep(repo(copy()), undefined, T, [{ name: "offsite-init-abcdef12-1", message: "quota exceeded" }]);
    expect(refused.problems).toEqual([{ reason: "PodRejected", message: "quota exceeded" }]);
    expect(refused.fields.initFailure).toMatchObject({ attempts: 1, reason: "PodRejected", lastAttemptTime: iso(T) });
    const pending = { name: "offsite-init-abcdef12-1", attempt: 1, givenUp: true, stuck: "Pending for 660 s (Unschedulable)" };
    const gaveUp = repositoryStep(repo(copy(), { initPods: [pending] }), undefined, T);
    expect(gaveUp.deletePods).toEqual(["offsite-init-abcdef12-1"]);
    expect(gaveUp.fields.initFailure).toMatchObject({ attempts: 1, reason: "PodNotScheduled" });
    const young = repositoryStep(repo(copy(), { initPods: [{ ...pending, givenUp: false }] }), undefined, T);
    expect(young.problems).toEqual([{ reason: "PodNotScheduled", message: pending.stuck }]);
    expect(young.deletePods ?? []).toEqual([]);
  });

  it("waits for a deduplicating copy's source repository before its init", () => {
    const f = repo(copy({}, { deduplication: { enabled: true } }), { dedupSource: { ready: false } });
    expect(repositoryStep(f, undefined, T).pods ?? []).toEqual([]);
    const src = repositoryAccess(library, "team/gold/primary", { secret: "pw", key: "password" }, "source");
    const go = repositoryStep({ ...f, dedupSource: { ready: true, access: src } }, undefined, T);
    expect(go.pods?.[0]?.source?.repository).toBe(src.repository);
  });
});

describe("scan rounds", () => {
  const scanned = { ...ready, lastScanTime: iso(T - 5 * MIN) };
  it("is due an interval after the last scan", () => {
    expect(repositoryStep(repo(copy(scanned)), undefined, T)).toMatchObject({ requeueMs: 5 * MIN });
    const due = repositoryStep(repo(copy(scanned)), undefined, T + 5 * MIN);
    expect(due.pods?.map((p) => p.name)).toEqual([`offsite-scan-${T - 5 * MIN}`]);
  });

  it("is due now when the user asked after the last scan", () => {
    expect(repositoryStep(repo(copy(scanned)), T - 6 * MIN, T).pods ?? []).toEqual([]);
    expect(repositoryStep(repo(copy(scanned)), T - MIN, T).pods).toHaveLength(1);
  });

  it("is due now when an aux copy or a data aging run changed the catalog after the last scan", () => {
    expect(repositoryStep(repo(copy(scanned), { catalogChangedAt: T - 6 * MIN }), undefined, T).pods ?? []).toEqual([]);
    expect(repositoryStep(repo(copy(scanned), { catalogChangedAt: T - MIN }), undefined, T).pods).toHaveLength(1);
    // In the second of the last scan: it may have come after the scan read the catalog.
    expect(repositoryStep(repo(copy(scanned), { catalogChangedAt: T - 5 * MIN }), undefined, T).pods).toHaveLength(1);
  });

  it("records the scan's counts, and removes the pod once status shows them", () => {
    const data = {
      repositoryId: "id-1",
      jobs: 4,
      byType: {},
      byStatus: { completed: 2, completedWithErrors: 1, failed: 1 },
      bytes: 1234,
      oldestJob: "2026-11-01T00:00:00Z",
      newestJob: "2026-12-01T00:00:00Z",
      verification: { verified: 3, failed: 1, failedJobs: ["j4"], lastVerification: "2026-12-01T01:00:00Z" },
      copyRetries: 2,
    };
    const pod = { name: "offsite-scan-1", result: { ok: true, message: "", at: iso(T), data } };
    const step = repositoryStep(repo(copy(scanned), { scanPods: [pod] }), undefined, T + 1000);
    expect(step.fields).toMatchObject({
      lastScanTime: iso(T),
      // j4 failed verification: Bad on the copy, not Available
      jobs: { available: 2, bad: 1 },
      bytes: 1234,
      oldestJob: data.oldestJob,
      newestJob: data.newestJob,
      verification: { verified: 3, failed: 1, failedJobs: ["j4"], lastVerificationTime: "2026-12-01T01:00:00Z" },
      copyRetries: 2,
      metadataMessage: undefined,
    });
    expect(step.problems).toEqual([]);
    const shown = repositoryStep(repo(copy({ ...scanned, lastScanTime: iso(T) }), { scanPods: [pod] }), undefined, T + 2000);
    expect(shown).toMatchObject({ deletePods: ["offsite-scan-1"], requeueMs: 10 * MIN });
    const failed = repositoryStep(
      repo(copy(scanned), { scanPods: [{ ...pod, result: { ...pod.result, ok: false, message: "timeout" } }] }),
      undefined,
      T,
    );
    expect(failed.problems).toEqual([{ reason: "ScanFailed", message: "timeout" }]);
  });

  it("waits an interval after a refused scan pod", () => {
    const step = repositoryStep(repo(copy(scanned)), undefined, T + 5 * MIN, [{ name: `offsite-scan-${T - 5 * MIN}`, message: "refused" }]);
    expect(step).toMatchObject({ problems: [{ reason: "PodRejected", message: "refused" }], requeueMs: 10 * MIN });
    expect(step.fields.lastScanTime).toBe(iso(T + 5 * MIN));
  });
});

describe("the catalog changed", () => {
  const job = (history: { jobId: string; copy: string; result: "Copied" | "Skipped" | "Failed"; time: string }[]) => ({
    status: {
      copies: [
        { name: "offsite", source: "primary" },
        { name: "monthly", source: "offsite" },
      ],
      history,
    },
  });
  it("when an aux copy copied jobs to the copy or from it", () => {
    const jobs = [
      job([{ jobId: "j1", copy: "offsite", result: "Copied", time: iso(T - 3 * MIN) }]),
      job([{ jobId: "j2", copy: "monthly", result: "Copied", time: iso(T - MIN) }]),
    ];
    expect(catalogChangedAt("offsite", jobs, undefined)).toBe(T - MIN);
    expect(catalogChangedAt("primary", jobs, undefined)).toBe(T - 3 * MIN);
    expect(catalogChangedAt("monthly", jobs, undefined)).toBe(T - MIN);
    expect(
      catalogChangedAt("offsite", [job([{ jobId: "j1", copy: "offsite", result: "Failed", time: iso(T) }])], undefined),
    ).toBeUndefined();
  });
  it("when a part ended having copied jobs (a killed pod names none)", () => {
    const part = { name: "offsite", source: "primary", settledJobsCopied: 2, completionTime: iso(T) };
    expect(catalogChangedAt("offsite", [{ status: { copies: [part] } }], undefined)).toBe(T);
    expect(catalogChangedAt("primary", [{ status: { copies: [part] } }], undefined)).toBe(T);
    expect(catalogChangedAt("offsite", [{ status: { copies: [{ ...part, settledJobsCopied: 0 }] } }], undefined)).toBeUndefined();
    expect(catalogChangedAt("offsite", [{ status: { copies: [{ ...part, completionTime: undefined }] } }], undefined)).toBeUndefined();
  });
  it("when a data aging run aged jobs", () => {
    expect(catalogChangedAt("offsite", [], { lastRunTime: iso(T), lastAgedJobs: 2 })).toBe(T);
    expect(catalogChangedAt("offsite", [], { lastRunTime: iso(T), lastAgedJobs: 0 })).toBeUndefined();
  });
});

describe("repository identity", () => {
  it("refuses a repository another copy has", () => {
    const claims = [
      { key: "team/offsite", location, established: false, createdAt: "2026-01-02T00:00:00Z" },
      { key: "other/copy", location, id: "id-9", established: true, createdAt: "2026-01-01T00:00:00Z" },
    ];
    const step = repositoryStep(repo(copy(), { claims }), undefined, T);
    expect(step.problems.map((p) => p.reason)).toEqual(["RepositoryShared"]);
    expect(step.fields.repositoryReady).toBe(false);
    expect(step.pods ?? []).toEqual([]);
  });

  it("refuses a path outside the namespace's prefix unless allowed", () => {
    const c = copy({}, { repositoryPath: "elsewhere/repo" });
    expect(repositoryStep(repo(c, { repoPath: "elsewhere/repo" }), undefined, T).problems.map((p) => p.reason)).toEqual([
      "RepositoryPathNotAllowed",
    ]);
    expect(repositoryStep(repo(c, { repoPath: "elsewhere/repo", allowPathsOutsideNamespace: true }), undefined, T).pods).toHaveLength(1);
  });

  it("notices a repository that another took the place of, on a scan and after", () => {
    const pod = { name: "s", result: { ok: true, message: "", at: iso(T), data: { repositoryId: "id-2" } } };
    const step = repositoryStep(repo(copy({ ...ready, lastScanTime: iso(T - MIN) }), { scanPods: [pod] }), undefined, T);
    expect(step.fields.repositoryIdFound).toBe("id-2");
    expect(step.problems.map((p) => p.reason)).toEqual(["RepositoryChanged"]);
    expect(step.events?.map((e) => [e.type, e.reason])).toEqual([["Warning", "RepositoryChanged"]]);
    const after = repositoryStep(repo(copy({ ...ready, repositoryIdFound: "id-2" })), undefined, T);
    expect(after.problems[0]?.message).toContain("has ID id-2, not the recorded id-1");
    expect(after.pods ?? []).toEqual([]);
  });

  it("checks a moved repository again before use", () => {
    const step = repositoryStep(repo(copy({ ...ready, repositoryLocation: "pvc:team/old/team/gold/offsite" })), undefined, T);
    expect(step.fields).toMatchObject({ repositoryReady: false, repositoryId: undefined, repositoryLocation: undefined });
    expect(step).toMatchObject({ requeueMs: 1000, problems: [{ reason: "RepositoryMoved" }] });
    expect(step.events?.[0]).toMatchObject({ type: "Normal", reason: "RepositoryMoved" });
  });
});

describe("the copy's plan", () => {
  const f = (over: Partial<CopyFactsForPlan> = {}): CopyFactsForPlan => {
    const c = copy(ready);
    return {
      copy: c,
      facts: { name: "offsite", storagePolicy: "gold", copyType: "Synchronous", active: true, createdAt: "" },
      policy: { name: "gold", primaryCopy: "primary" },
      copies: new Map([
        ["primary", { name: "primary", storagePolicy: "gold", copyType: "Synchronous", active: true, createdAt: "" }],
        ["offsite", { name: "offsite", storagePolicy: "gold", copyType: "Synchronous", active: true, createdAt: "" }],
      ]),
      libraryExists: true,
      secrets: new Map([["pw", new Set(["password"])]]),
      precedence: 2,
      repository: repo(c),
      ...over,
    };
  };
  it("is Ready with its references resolved, and starts its repository's work", () => {
    const plan = planCopy(f(), T);
    expect(plan.ready).toMatchObject({
      problems: [],
      ok: { reason: "ReferencesResolved", message: "library, policy, source copy and password Secret resolve" },
    });
    expect(plan.status).toMatchObject({ primary: false, precedence: 2, repositoryReady: true });
    expect(plan.pods?.map((p) => p.task)).toEqual(["scan"]);
  });
  it("touches no repository while a reference is missing", () => {
    const plan = planCopy(f({ libraryExists: false, secrets: new Map() }), T);
    expect(plan.ready?.problems.map((p) => p.reason)).toEqual(["LibraryNotFound", "SecretNotFound"]);
    expect(plan.status).toEqual({ primary: false, precedence: 2 });
    expect(plan.pods).toBeUndefined();
    expect(planCopy(f({ policy: undefined, precedence: undefined }), T).ready?.problems.map((p) => p.reason)).toEqual([
      "StoragePolicyNotFound",
    ]);
  });
  it("says when a Recopy is dated ahead", () => {
    const c = copy(ready, { jobOverrides: [{ jobId: "j1", action: "Recopy", at: iso(T + 5 * MIN) }] });
    const plan = planCopy(f({ copy: c, repository: repo(c) }), T);
    expect(plan.ready?.problems.map((p) => p.reason)).toEqual(["RecopyInFuture"]);
  });
});
