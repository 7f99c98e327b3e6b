// Library probe rounds: configuration problems, the first probe, the verdict recorded before the pod goes, on-demand
// probes, a refused pod, storage the operator does not allow, probes switched off.
import { describe, expect, it } from "vitest";
import { type LibraryFacts, planLibrary } from "../../src/policy/library.ts";

const T = Date.UTC(2026, 11, 2, 10, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
const owner = { apiVersion: "auxo.dev/v1alpha1", kind: "Library", name: "disk", uid: "u1", controller: true, blockOwnerDeletion: true };

const facts = (over: Partial<LibraryFacts> = {}): LibraryFacts => ({
  name: "disk",
  namespace: "team",
  spec: { filesystem: { persistentVolumeClaim: { claimName: "backups" } }, probeInterval: "5m" },
  status: {},
  secrets: new Map(),
  claimExists: true,
  allow: { hostPath: false, nfs: false },
  probes: true,
  probePods: [],
  owner,
  image: "auxo:test",
  probeTimeoutSeconds: 60,
  ...over,
});

describe("library probe rounds", () => {
  it("starts the first probe at once, and waits for it with Ready Unknown", () => {
    const plan = planLibrary(facts(), T);
    expect(plan.pods).toHaveLength(1);
    expect(plan.pods?.[0]).toMatchObject({ task: "probe", name: "disk-probe-0", deadlineSeconds: 90, owner });
    expect(plan.status).toMatchObject({ phase: "Pending", consecutiveFailures: 0 });
    expect(plan.ready?.problems).toEqual([]);
    expect(plan.ready?.unknown?.reason).toBe("ProbePending");
    expect(plan.requeueAfterMs).toBeUndefined();
  });

  it("records a verdict before the pod goes, then removes the pod once status shows it", () => {
    const pod = { name: "disk-probe-0", result: { ok: true, message: "reachable", at: iso(T) } };
    const first = planLibrary(facts({ probePods: [pod] }), T + 5000);
    expect(first.deletePods ?? []).toEqual([]);
    expect(first.pods ?? []).toEqual([]);
    expect(first.status).toEqual({
      phase: "Ready",
      message: "reachable",
      lastProbeTime: iso(T),
      consecutiveFailures: 0,
      nextProbeTime: iso(T + 300_000),
    });
    expect(first.ready).toMatchObject({ problems: [], ok: { reason: "Reachable", message: "reachable" }, unknown: undefined });
    const recorded = planLibrary(facts({ probePods: [pod], status: first.status }), T + 6000);
    expect(recorded.deletePods).toEqual(["disk-probe-0"]);
    expect(recorded.status).toEqual(first.status);
  });

  it("counts failures and backs off: 30 s after the first failure, 60 s after the second", () => {
    const pod = { name: "disk-probe-0", result: { ok: false, message: "connection refused", at: iso(T) } };
    const plan = planLibrary(facts({ probePods: [pod], status: { consecutiveFailures: 1, lastProbeTime: iso(T - 30_000) } }), T);
    expect(plan.status).toMatchObject({ phase: "Unreachable", consecutiveFailures: 2, nextProbeTime: iso(T + 60_000) });
    expect(plan.ready?.problems).toEqual([{ reason: "Unreachable", message: "connection refused" }]);
  });

  it("waits for the next round, and starts it early when a MediaAgent asked since the last probe", () => {
    const status = { phase: "Ready" as const, lastProbeTime: iso(T), consecutiveFailures: 0 };
    const waiting = planLibrary(facts({ status }), T + 60_000);
    expect(waiting.pods ?? []).toEqual([]);
    expect(waiting.requeueAfterMs).toBe(240_000);
    // A request from before the last probe is answered already.
    expect(planLibrary(facts({ status, askedAt: T - 1000 }), T + 60_000).pods ?? []).toEqual([]);
    const asked = planLibrary(facts({ status, askedAt: T + 50_000 }), T + 60_000);
    expect(asked.pods?.map((p) => p.name)).toEqual([`disk-probe-${T}`]);
  });

  it("counts a pod the API server refuses as a failed probe", () => {
    const f = facts();
    const plan = planLibrary(f, T, [{ name: "disk-probe-0", message: "the API server refused MediaAgent pod: quota" }]);
    expect(plan.status).toEqual({
      phase: "Unreachable",
      message: "the API server refused MediaAgent pod: quota",
      lastProbeTime: iso(T),
      consecutiveFailures: 1,
      nextProbeTime: iso(T + 30_000),
    });
    expect(plan.ready?.problems).toEqual([{ reason: "PodRejected", message: "the API server refused MediaAgent pod: quota" }]);
  });

  it("refuses hostPath and NFS unless allowed, even for a library that was Ready", () => {
    const hostPath = facts({ spec: { filesystem: { hostPath: { path: "/data" } } }, status: { phase: "Ready", message: "ok" } });
    const plan = planLibrary(hostPath, T);
    expect(plan.ready?.problems.map((p) => p.reason)).toEqual(["HostPathNotAllowed"]);
    expect(plan.status?.phase).toBe("Pending");
    expect(plan.pods ?? []).toEqual([]);
    expect(
      planLibrary(facts({ spec: { filesystem: { nfs: { server: "nfs", path: "/x" } } } }), T).ready?.problems.map((p) => p.reason),
    ).toEqual(["NFSNotAllowed"]);
    expect(planLibrary({ ...hostPath, allow: { hostPath: true, nfs: false } }, T).pods).toHaveLength(1);
  });

  it("reports missing Secrets, keys and claims, and probes nothing then", () => {
    const s3 = facts({
      spec: { s3: { endpoint: "http://s3", bucket: "b", credentialsSecret: { name: "creds" } } },
      secrets: new Map([["creds", new Set(["AWS_ACCESS_KEY_ID"])]]),
    });
    const plan = planLibrary(s3, T);
    expect(plan.ready?.problems).toEqual([
      { reason: "SecretKeyNotFound", message: 'spec.s3.credentialsSecret: Secret "creds" has no key "AWS_SECRET_ACCESS_KEY"' },
    ]);
    expect(plan.pods ?? []).toEqual([]);
    expect(planLibrary(facts({ claimExists: false }), T).ready?.problems.map((p) => p.reason)).toEqual(["ClaimNotFound"]);
  });

  it("with probes off, a configured library is Ready as far as its configuration goes", () => {
    const plan = planLibrary(facts({ probes: false }), T);
    expect(plan.pods ?? []).toEqual([]);
    expect(plan.ready).toMatchObject({ problems: [], ok: { reason: "Configured" }, unknown: undefined });
  });
});
