// The SnapVault run rules (policy/snapvault-run.ts, policy/snapretry.ts): starting runs, cutting snapshots, copying in
// order within streams, source faults against the retry budget, destination faults, missing sources, the source's
// retention, hygiene and the bounded status.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { SnapshotEntry, SnapVaultStatus } from "../../src/api/v1alpha1/index.ts";
import { DAY_MS, retryVerdict } from "../../src/policy/snapretry.ts";
import { parseTime as parse } from "../../src/policy/time.ts";
import { boundEntries, claimName, copyPodName, MAX_DESTINATION_FAILURES, planSnapVaultRun } from "../../src/policy/snapvault-run.ts";
import { entry, facts, iso, running, T0, vs } from "./snapvault-facts.ts";

describe("the retry verdict", () => {
  it("retries until the attempts are used up, then RetryCountExhausted", () => {
    const b = { maxAttempts: 3, maxDays: 5 };
    expect(retryVerdict(1, T0, T0, b).state).toBe("Retrying");
    expect(retryVerdict(2, T0, T0, b).state).toBe("Retrying");
    expect(retryVerdict(3, T0, T0, b)).toMatchObject({ state: "Missing", reason: "RetryCountExhausted" });
  });
  it("is Missing once maxDays have passed since the first failure, whatever the count", () => {
    const b = { maxAttempts: 10, maxDays: 5 };
    expect(retryVerdict(1, T0, T0 + 5 * DAY_MS - 1, b).state).toBe("Retrying");
    expect(retryVerdict(1, T0, T0 + 5 * DAY_MS, b)).toMatchObject({ state: "Missing", reason: "RetryTimeLimitExhausted" });
  });
  it("whichever limit comes first ends the retries (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 0, max: 20 * DAY_MS }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 10 }),
        (n, age, max, days) => {
          const v = retryVerdict(n, T0, T0 + age, { maxAttempts: max, maxDays: days });
          expect(v.state === "Missing").toBe(n >= max || age >= days * DAY_MS);
        },
      ),
    );
  });
});

describe("starting a run", () => {
  it("runs at once when it never ran, cuts one VolumeSnapshot per PVC, owned and labelled, and says when the next run is", () => {
    const plan = planSnapVaultRun(facts());
    expect(plan.status.run).toMatchObject({ number: 1, trigger: "Schedule", phase: "Running" });
    expect(plan.status.lastRunTime).toBe(iso(T0));
    expect(plan.status.nextRunTime).toBe(iso(T0 + 3600_000));
    expect(plan.createSnapshots.map((s) => s.metadata.name)).toEqual(["db-a-20261201-090000", "db-b-20261201-090000"]);
    const s = plan.createSnapshots[0] as { metadata: Record<string, unknown>; spec: unknown };
    expect(s.spec).toEqual({ source: { persistentVolumeClaimName: "a" } });
    expect(s.metadata.labels).toMatchObject({ "auxo.dev/snapvault": "db", "auxo.dev/pvc": "a", "app.kubernetes.io/managed-by": "auxo" });
    expect(s.metadata.ownerReferences).toEqual([expect.objectContaining({ uid: "sv-uid", controller: true })]);
    expect(plan.status.snapshots?.map((e) => [e.name, e.state])).toEqual([
      ["db-a-20261201-090000", "Pending"],
      ["db-b-20261201-090000", "Pending"],
    ]);
    expect(plan.events?.map((e) => e.reason)).toEqual(["RunStarted", "SnapshotsCut"]);
  });

  it("names the same snapshots when it decides again on a cache without its last status write", () => {
    const a = planSnapVaultRun(facts({ now: T0 }));
    const b = planSnapVaultRun(facts({ now: T0 + 5000 }));
    expect(b.createSnapshots.map((s) => s.metadata.name)).toEqual(a.createSnapshots.map((s) => s.metadata.name));
  });

  it("decided again on a stale status while the cache already shows its snapshots: one entry per snapshot, none Missing", () => {
    // The first decision cut the snapshots; the next one reads a SnapVault whose status write the cache has not seen.
    const first = planSnapVaultRun(facts({ now: T0 }));
    const cut = first.createSnapshots.map((s, i) => vs(s.metadata.name as string, ["a", "b"][i] as string, T0));
    const again = planSnapVaultRun(facts({ now: T0 + 2000, snapshots: cut }));
    expect(again.status.snapshots?.map((e) => [e.name, e.uid, e.state])).toEqual(cut.map((v) => [v.name, v.uid, "Copying"]));
    expect(again.createSnapshots).toEqual([]);
    // That write lands after all, beside a decision that recorded them too: still one entry each, and never Missing.
    const merged = { ...again.status, snapshots: [...(again.status.snapshots ?? []), ...(first.status.snapshots ?? [])] };
    const later = planSnapVaultRun(facts({ now: T0 + 120_000, snapshots: cut }, merged));
    expect(later.status.snapshots?.map((e) => [e.name, e.state])).toEqual(cut.map((v) => [v.name, "Copying"]));
    expect(later.events?.some((e) => e.reason === "SnapshotMissing")).toBe(false);
    // (The first copy pods do not show after two minutes: one new pod per snapshot, not two.)
    expect(later.pods?.map((p) => p.name)).toEqual(cut.map((v) => copyPodName("db", v.uid, 2)));
  });

  it("waits for the schedule, and starts on a new request token once", () => {
    const done: SnapVaultStatus = {
      repositoryId: "r",
      runs: 1,
      lastRunTime: iso(T0 - 60_000),
      run: { ...running(1), phase: "Completed", aging: "0 copies aged by the vault's retention" },
    };
    const idle = planSnapVaultRun(facts({}, done));
    expect(idle.createSnapshots).toEqual([]);
    expect(idle.requeueAfterMs).toBe(3600_000 - 60_000);
    const f = facts({}, done);
    f.sv.runRequested = "tok-1";
    const asked = planSnapVaultRun(f);
    expect(asked.status).toMatchObject({ lastRequest: "tok-1", run: { number: 2, trigger: "Request" } });
    const again = facts({}, asked.status);
    again.sv.runRequested = "tok-1";
    again.snapshots = [];
    expect(
      planSnapVaultRun({ ...again, sv: { ...again.sv, status: { ...asked.status, run: { ...asked.status.run!, phase: "Completed" } } } })
        .status.run?.number,
    ).toBe(2);
  });

  it("does not start inside an operation window of its storage policy", () => {
    const plan = planSnapVaultRun(
      facts({
        policy: {
          timeZone: "UTC",
          operationWindows: [{ name: "business", operations: ["SnapCopy"], days: [], start: "08:00", end: "18:00" }],
        },
      }),
    );
    expect(plan.status.run).toBeUndefined();
    expect(plan.events?.[0]).toMatchObject({ reason: "RunQueued" });
    expect(plan.requeueAfterMs).toBe(8 * 3600_000);
  });

  it("marks a listed PVC that does not exist Missing (SourceVolumeDeleted) at once, with no attempts", () => {
    const plan = planSnapVaultRun(facts({ pvcs: [{ name: "a", bound: true }] }));
    const b = plan.status.snapshots?.find((e) => e.persistentVolumeClaim === "b");
    expect(b).toMatchObject({ state: "Missing", reason: "SourceVolumeDeleted", attempts: 0, run: 1 });
    expect(plan.createSnapshots.map((s) => s.metadata.name)).toEqual(["db-a-20261201-090000"]);
  });

  it("turns Retrying snapshots past maxDays Missing (RetryTimeLimitExhausted) before trying them again", () => {
    const old = entry("old", "a", T0 - 10 * DAY_MS, { state: "Retrying", attempts: 1, firstAttemptTime: iso(T0 - 6 * DAY_MS), run: 1 });
    const plan = planSnapVaultRun(
      facts(
        { snapshots: [vs("old", "a", T0 - 10 * DAY_MS)] },
        { repositoryId: "r", runs: 1, lastRunTime: iso(T0 - 2 * 3600_000), snapshots: [old] },
      ),
    );
    expect(plan.status.snapshots?.find((e) => e.name === "old")).toMatchObject({
      state: "Missing",
      reason: "RetryTimeLimitExhausted",
      attempts: 1,
    });
    expect(plan.pods?.some((p) => p.name.includes("uid-old"))).toBe(false);
  });
});

describe("copying", () => {
  const st = (snapshots: SnapshotEntry[], run = running()): SnapVaultStatus => ({
    repositoryId: "repo1",
    runs: run?.number,
    lastRunTime: run?.startTime,
    run,
    snapshots,
  });

  it("restores a volume from each ready snapshot and starts a copy pod that mounts it read-only, oldest first, within the streams", () => {
    const plan = planSnapVaultRun(
      facts(
        {
          library: { name: "vault", phase: "Ready", maxStreams: 3 },
          streamsInUse: 1,
          snapshots: [vs("s3", "a", T0 - 1000), vs("s1", "a", T0 - 3000), vs("s2", "b", T0 - 2000, { restoreSize: "2Gi" })],
        },
        st([entry("s3", "a", T0 - 1000), entry("s1", "a", T0 - 3000), entry("s2", "b", T0 - 2000)]),
      ),
    );
    // Two free streams: the two oldest.
    expect(plan.pods?.map((p) => p.name)).toEqual([copyPodName("db", "uid-s1", 1), copyPodName("db", "uid-s2", 1)]);
    const claim = plan.createClaims[1] as { metadata: { name: string }; spec: Record<string, unknown> };
    expect(claim.metadata.name).toBe(claimName("db", "uid-s2", 1));
    expect(claim.spec).toMatchObject({
      storageClassName: "csi",
      resources: { requests: { storage: "2Gi" } },
      dataSource: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: "s2" },
    });
    const pod = plan.pods?.[0];
    expect(pod?.claims).toEqual([{ name: "snapshot", claimName: claimName("db", "uid-s1", 1), mountPath: "/snapshots/a" }]);
    expect(pod?.snapshot).toMatchObject({
      path: "/snapshots/a",
      client: "team",
      subclient: "a",
      status: "completed",
      volumeSnapshot: { name: "s1", uid: "uid-s1", creationTime: iso(T0 - 3000) },
    });
    expect(pod?.target.repositoryId).toBe("repo1");
    expect(plan.status.snapshots?.filter((e) => e.state === "Copying").map((e) => e.name)).toEqual(["s1", "s2"]);
    expect(plan.status.run?.waiting).toBe("all 3 streams of library vault are in use");
  });

  it("waits for a snapshot that is not ready, and counts an attempt once stagingTimeout passes", () => {
    const f = (now: number) =>
      facts({ now, snapshots: [vs("s1", "a", T0 - 1000, { readyToUse: false })] }, st([entry("s1", "a", T0 - 1000)]));
    const early = planSnapVaultRun(f(T0));
    expect(early.pods).toEqual([]);
    expect(early.status.snapshots?.[0]?.state).toBe("Pending");
    expect(early.status.run?.phase).toBe("Running");
    const late = planSnapVaultRun(f(T0 + 5 * 60_000));
    expect(late.status.snapshots?.[0]).toMatchObject({
      state: "Retrying",
      attempts: 1,
      lastError: "VolumeSnapshot s1 is not ready after 5m",
    });
    expect(late.status.run?.phase).toBe("Completed");
  });

  it("records a finished copy, deletes its pod and restored volume, and ends the run Completed", () => {
    const e = entry("s1", "a", T0 - 1000, { state: "Copying", pods: 1, lastAttemptTime: iso(T0 - 500) });
    const pod = copyPodName("db", "uid-s1", 1);
    const plan = planSnapVaultRun(
      facts(
        {
          snapshots: [vs("s1", "a", T0 - 1000)],
          claims: [{ name: claimName("db", "uid-s1", 1), phase: "Bound" }],
          pods: [
            { name: pod, phase: "Succeeded", result: { ok: true, message: "", data: { snapshotId: "abc123", bytes: 4096, added: 100 } } },
          ],
        },
        st([e]),
      ),
    );
    expect(plan.status.snapshots?.[0]).toMatchObject({ state: "Copied", copiedAs: "abc123", bytes: 4096, run: 1 });
    expect(plan.status.run).toMatchObject({ phase: "Completed", copied: 1, bytes: 4096 });
    expect(plan.status.phase).toBe("Completed");
    expect(plan.deletePods).toContain(pod);
    expect(plan.deleteClaims).toEqual([claimName("db", "uid-s1", 1)]);
    expect(plan.metrics).toContainEqual(
      expect.objectContaining({ metric: "snapVaultRuns", labels: expect.objectContaining({ phase: "Completed" }) }),
    );
  });

  it("counts a source fault as one attempt: offline volume (ProvisioningFailed Unavailable) → Retrying, the run still completes", () => {
    const e = entry("s1", "a", T0 - 1000, { state: "Copying", pods: 1, lastAttemptTime: iso(T0 - 500) });
    const plan = planSnapVaultRun(
      facts(
        {
          snapshots: [vs("s1", "a", T0 - 1000)],
          claims: [
            { name: claimName("db", "uid-s1", 1), phase: "Pending", failure: "rpc error: code = Unavailable desc = volume offline" },
          ],
        },
        st([e]),
      ),
    );
    expect(plan.status.snapshots?.[0]).toMatchObject({ state: "Retrying", attempts: 1, firstAttemptTime: iso(T0), run: 1 });
    expect(plan.status.run?.phase).toBe("Completed");
    expect(plan.deleteClaims).toEqual([claimName("db", "uid-s1", 1)]);
    expect(plan.events?.some((x) => x.reason === "SnapshotRetrying" && x.type === "Warning")).toBe(true);
  });

  it("uses up the budget: the last attempt makes it Missing (RetryCountExhausted) and the run AvailableWithMissingSnaps", () => {
    const e = entry("s1", "a", T0 - 1000, {
      state: "Copying",
      pods: 3,
      attempts: 2,
      firstAttemptTime: iso(T0 - 7200_000),
      lastAttemptTime: iso(T0 - 500),
    });
    const plan = planSnapVaultRun(
      facts(
        {
          snapshots: [vs("s1", "a", T0 - 1000)],
          pods: [
            {
              name: copyPodName("db", "uid-s1", 3),
              phase: "Pending",
              failedMount: "MountVolume.SetUp failed: rpc error: code = Unavailable",
            },
          ],
        },
        st([e], running(3)),
      ),
    );
    expect(plan.status.snapshots?.[0]).toMatchObject({ state: "Missing", reason: "RetryCountExhausted", attempts: 3 });
    expect(plan.status.run).toMatchObject({ phase: "AvailableWithMissingSnaps" });
    expect(plan.status.phase).toBe("AvailableWithMissingSnaps");
    expect(plan.events?.find((x) => x.reason === "SnapshotMissing")?.message).toContain("RetryCountExhausted");
  });

  it("a copy pod that fails on the destination costs no attempt: the snapshot waits, the run backs off, then Failed after the limit", () => {
    const e = entry("s1", "a", T0 - 1000, { state: "Copying", pods: 1, lastAttemptTime: iso(T0 - 500) });
    const failed = { ok: false, message: "repository unreachable", data: { kind: "Unreachable" } };
    const plan = planSnapVaultRun(
      facts(
        { snapshots: [vs("s1", "a", T0 - 1000)], pods: [{ name: copyPodName("db", "uid-s1", 1), phase: "Failed", result: failed }] },
        st([e]),
      ),
    );
    expect(plan.status.snapshots?.[0]).toMatchObject({ state: "Pending" });
    expect(plan.status.snapshots?.[0]?.attempts).toBeUndefined();
    expect(plan.status.run).toMatchObject({ phase: "Running", destinationFailures: 1, retryAt: iso(T0 + 1000) });
    expect(plan.probe).toContain("repository unreachable");
    expect(plan.pods).toEqual([]);
    const last = planSnapVaultRun(
      facts(
        { snapshots: [vs("s1", "a", T0 - 1000)], pods: [{ name: copyPodName("db", "uid-s1", 1), phase: "Failed", result: failed }] },
        st([e], running(1, { destinationFailures: MAX_DESTINATION_FAILURES - 1 })),
      ),
    );
    expect(last.status.run?.phase).toBe("Failed");
    expect(last.status.snapshots?.[0]?.attempts).toBeUndefined();
  });

  it("starts no copy while the destination library is down, and costs nothing", () => {
    const plan = planSnapVaultRun(
      facts(
        { library: { name: "vault", phase: "Unreachable", message: "dial tcp: refused", maxStreams: 10 }, snapshots: [vs("s1", "a", T0)] },
        st([entry("s1", "a", T0)]),
      ),
    );
    expect(plan.pods).toEqual([]);
    expect(plan.status.run).toMatchObject({ phase: "Running", waiting: "destination library vault is Unreachable: dial tcp: refused" });
    expect(plan.status.snapshots?.[0]).toMatchObject({ state: "Pending" });
  });

  it("a VolumeSnapshot deleted before its copy is Missing (SourceSnapshotDeleted) with 0 attempts; the storage's NotFound too", () => {
    const gone = planSnapVaultRun(facts({ snapshots: [] }, st([entry("s1", "a", T0 - 120_000)])));
    expect(gone.status.snapshots?.[0]).toMatchObject({ state: "Missing", reason: "SourceSnapshotDeleted" });
    expect(gone.status.snapshots?.[0]?.attempts).toBeUndefined();
    const e = entry("s2", "a", T0 - 1000, { state: "Copying", pods: 1, lastAttemptTime: iso(T0 - 500) });
    const notFound = planSnapVaultRun(
      facts(
        {
          snapshots: [vs("s2", "a", T0 - 1000)],
          claims: [{ name: claimName("db", "uid-s2", 1), phase: "Pending", failure: "rpc error: code = NotFound desc = snapshot gone" }],
        },
        st([e]),
      ),
    );
    expect(notFound.status.snapshots?.[0]).toMatchObject({ state: "Missing", reason: "SourceSnapshotDeleted" });
  });

  it("waits out a mount that found no restored claim yet (the kubelet lags), and counts a storage mount failure", () => {
    const e = entry("s1", "a", T0 - 60_000, { state: "Copying", pods: 1, lastAttemptTime: iso(T0 - 10_000) });
    const pod = (failedMount: string) => ({ name: copyPodName("db", "uid-s1", 1), phase: "Pending", failedMount });
    const claim = { name: claimName("db", "uid-s1", 1), phase: "Bound" };
    const run = { number: 1, trigger: "Request" as const, startTime: iso(T0 - 60_000), phase: "Running" as const };
    const lag = planSnapVaultRun(
      facts(
        { snapshots: [vs("s1", "a", T0 - 60_000)], pods: [pod('persistentvolumeclaim "db-restore-uid-s1-1" not found')], claims: [claim] },
        { repositoryId: "repo1", runs: 1, run, snapshots: [e] },
      ),
    );
    expect(lag.status.snapshots?.[0]).toMatchObject({ state: "Copying" });
    expect(lag.status.snapshots?.[0]?.attempts).toBeUndefined();
    const refused = planSnapVaultRun(
      facts(
        { snapshots: [vs("s1", "a", T0 - 60_000)], pods: [pod("rpc error: code = Unavailable desc = volume offline")], claims: [claim] },
        { repositoryId: "repo1", runs: 1, run, snapshots: [e] },
      ),
    );
    expect(refused.status.snapshots?.[0]).toMatchObject({ state: "Retrying", attempts: 1 });
  });

  it("does not start a second copy pod while the caches do not show the first one yet", () => {
    const e = entry("s1", "a", T0 - 1000, { state: "Copying", pods: 1, lastAttemptTime: iso(T0 - 2000) });
    const young = planSnapVaultRun(facts({ snapshots: [vs("s1", "a", T0 - 1000)] }, st([e])));
    expect(young.pods).toEqual([]);
    expect(young.status.snapshots?.[0]).toMatchObject({ state: "Copying", pods: 1 });
    // Long gone (deleted by hand): the copy starts again, with a new pod.
    const old = planSnapVaultRun(facts({ now: T0 + 120_000, snapshots: [vs("s1", "a", T0 - 1000)] }, st([e])));
    expect(old.pods?.map((p) => p.name)).toEqual([copyPodName("db", "uid-s1", 2)]);
  });

  it("a VolumeSnapshot being deleted (its finalizers waiting on an offline array) is Missing at once", () => {
    const plan = planSnapVaultRun(facts({ snapshots: [vs("s1", "a", T0, { deleting: true })] }, st([entry("s1", "a", T0)])));
    expect(plan.status.snapshots?.[0]).toMatchObject({ state: "Missing", reason: "SourceSnapshotDeleted" });
    expect(plan.pods?.filter((p) => p.task === "snapcopy")).toEqual([]);
    expect(plan.status.run?.phase).toBe("AvailableWithMissingSnaps");
  });

  it("does not call a snapshot it just cut deleted while the cache has not caught up", () => {
    const cut = { ...entry("s1", "a", T0 - 5000), uid: undefined };
    const plan = planSnapVaultRun(facts({ snapshots: [] }, st([cut])));
    expect(plan.status.snapshots?.[0]?.state).toBe("Pending");
  });

  it("copies a snapshot whose PVC is gone (the snapshot is still readable)", () => {
    const plan = planSnapVaultRun(facts({ pvcs: [], listed: [], snapshots: [vs("s1", "a", T0)] }, st([entry("s1", "a", T0)])));
    expect(plan.pods?.map((p) => p.name)).toEqual([copyPodName("db", "uid-s1", 1)]);
  });

  it("marks copies of a snap job with missing snaps completedWithErrors", () => {
    const plan = planSnapVaultRun(
      facts(
        { snapshots: [vs("s1", "a", T0), vs("s0", "a", T0 - 3600_000)] },
        st([
          entry("s1", "a", T0, { cutBy: 1 }),
          {
            name: "db-b-x",
            persistentVolumeClaim: "b",
            origin: "Taken",
            state: "Missing",
            reason: "SourceVolumeDeleted",
            run: 1,
            cutBy: 1,
          },
          entry("s0", "a", T0 - 3600_000, { cutBy: 0 }),
        ]),
      ),
    );
    expect(plan.pods?.find((p) => p.snapshot?.volumeSnapshot.name === "s1")?.snapshot?.status).toBe("completedWithErrors");
    expect(plan.pods?.find((p) => p.snapshot?.volumeSnapshot.name === "s0")?.snapshot?.status).toBe("completed");
  });
});

describe("the source's retention and hygiene", () => {
  it("deletes snapshots it cut beyond the retention only once their copy is settled; never adopted ones", () => {
    const day = DAY_MS;
    const snapshots = [
      vs("old-copied", "a", T0 - 8 * day),
      vs("old-retrying", "a", T0 - 9 * day),
      vs("old-adopted", "a", T0 - 9 * day, { origin: "Adopted" }),
      vs("new", "a", T0 - day),
    ];
    const plan = planSnapVaultRun(
      facts(
        { snapshots },
        {
          repositoryId: "r",
          runs: 1,
          lastRunTime: iso(T0 - 600_000),
          run: { ...running(), phase: "Completed" },
          snapshots: [
            entry("old-copied", "a", T0 - 8 * day, { state: "Copied" }),
            entry("old-retrying", "a", T0 - 9 * day, { state: "Retrying", attempts: 1, firstAttemptTime: iso(T0 - day) }),
            entry("old-adopted", "a", T0 - 9 * day, { state: "Copied", origin: "Adopted" }),
            entry("new", "a", T0 - day, { state: "Copied" }),
          ],
        },
      ),
    );
    expect(plan.deleteSnapshots).toEqual(["old-copied"]);
  });

  it("removes restored volumes and pods that no copy in flight needs", () => {
    const plan = planSnapVaultRun(
      facts(
        { claims: [{ name: "db-restore-leftover-1" }], pods: [{ name: "db-copy-leftover-1", phase: "Running" }] },
        { repositoryId: "r", runs: 1, lastRunTime: iso(T0 - 60_000), run: { ...running(), phase: "Completed" } },
      ),
    );
    expect(plan.deleteClaims).toEqual(["db-restore-leftover-1"]);
    expect(plan.deletePods).toEqual(["db-copy-leftover-1"]);
  });

  it("opens the destination repository first: an init pod, then its ID in status", () => {
    const first = planSnapVaultRun(facts({}, {}));
    expect(first.pods?.map((p) => p.task)).toEqual(["init"]);
    expect(first.status.run).toBeUndefined();
    expect(first.ready.unknown?.reason).toBe("RepositoryPending");
    const done = planSnapVaultRun(
      facts({ pods: [{ name: "db-init", phase: "Succeeded", result: { ok: true, message: "", data: { id: "abc", created: true } } }] }, {}),
    );
    expect(done.status.repositoryId).toBe("abc");
    expect(done.deletePods).toContain("db-init");
  });
});

describe("the bounded status", () => {
  it("lists at most 100: those still to copy first (oldest first), then the newest others", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.constantFrom("Pending", "Retrying", "Copied", "Missing") as fc.Arbitrary<SnapshotEntry["state"]>,
            fc.integer({ min: 0, max: 1e6 }),
          ),
          { maxLength: 250 },
        ),
        (xs) => {
          const entries = xs.map(([state, t], i) => entry(`s${i}`, "a", T0 + t * 1000, { state }));
          const out = boundEntries(entries);
          expect(out.length).toBe(Math.min(100, entries.length));
          const active = out.findIndex((e) => e.state === "Copied" || e.state === "Missing");
          if (active >= 0) expect(out.slice(active).every((e) => e.state === "Copied" || e.state === "Missing")).toBe(true);
          const activeCount = entries.filter((e) => e.state === "Pending" || e.state === "Retrying").length;
          expect(out.filter((e) => e.state === "Pending" || e.state === "Retrying").length).toBe(Math.min(100, activeCount));
        },
      ),
    );
  });
});

describe("aging the destination after a run", () => {
  const ended = (over: Partial<NonNullable<SnapVaultStatus["run"]>> = {}) => ({
    ...running(),
    phase: "Completed" as const,
    endTime: iso(T0),
    ...over,
  });

  it("a Vault runs data aging once with its retention (recovery points as cycles), and the next run waits for it", () => {
    const f = facts({}, { repositoryId: "r", runs: 1, lastRunTime: iso(T0 - 7200_000), run: ended() });
    f.sv.spec = { ...f.sv.spec, retention: { days: 14, recoveryPoints: 3 } };
    f.sv.runRequested = "now";
    const plan = planSnapVaultRun(f);
    expect(plan.pods?.map((p) => [p.task, p.name])).toEqual([["age", "db-age-1"]]);
    expect(plan.pods?.[0]?.aging).toMatchObject({ retention: { days: 14, cycles: 2 }, maxSharePercent: 50 });
    expect(plan.status.run?.number).toBe(1);
    const done = planSnapVaultRun({
      ...f,
      pods: [{ name: "db-age-1", phase: "Succeeded", result: { ok: true, message: "", data: { aged: 2, agedJobs: ["j1", "j2"] } } }],
    });
    expect(done.status.run).toMatchObject({ number: 2, trigger: "Request" });
    expect(done.deletePods).toContain("db-age-1");
  });

  it("a Mirror forgets the copies of snapshots deleted while their PVC exists and a newer copy is there; nothing to do, no pod", () => {
    const copied = (name: string, at: number, pvcName = "a") => entry(name, pvcName, at, { state: "Copied", copiedAs: `id-${name}` });
    const f = facts(
      { snapshots: [vs("new", "a", T0 - 1000), vs("b-only", "b", T0 - 5000)] },
      {
        repositoryId: "r",
        runs: 1,
        lastRunTime: iso(T0 - 600_000),
        run: ended(),
        snapshots: [
          copied("old", T0 - 9000),
          copied("new", T0 - 1000),
          copied("b-gone", T0 - 8000, "b"),
          copied("b-only", T0 - 5000, "b"),
          copied("c-gone", T0 - 8000, "c"),
        ],
      },
    );
    f.sv.spec = { ...f.sv.spec, mode: "Mirror" };
    const plan = planSnapVaultRun(f);
    // old (a newer copy of a exists), b-gone (b-only is newer); c's PVC is gone: it keeps all.
    expect(plan.pods?.[0]?.aging?.forgetJobs).toEqual(["team-old-uidold", "team-b-gone-uidbgone"]);
    expect(plan.ready.others?.[0]).toMatchObject({ type: "SourceVolumesGone", status: "True" });
    const none = facts(
      {},
      { repositoryId: "r", runs: 1, lastRunTime: iso(T0 - 600_000), run: ended(), snapshots: [copied("x", T0 - 1000)] },
    );
    none.sv.spec = { ...none.sv.spec, mode: "Mirror" };
    none.snapshots = [vs("x", "a", T0 - 1000)];
    const idle = planSnapVaultRun(none);
    expect(idle.pods).toEqual([]);
    expect(idle.status.run?.aging).toBe("nothing to forget");
  });
});

describe("the safety rails", () => {
  it("does not take up again a settled snapshot the bounded status dropped (more than 100 VolumeSnapshots)", () => {
    const snaps = Array.from({ length: 101 }, (_, i) => vs(`s${String(i).padStart(3, "0")}`, "a", T0 - (200 - i) * 60_000));
    const entries = snaps.map((x) => entry(x.name, "a", parse(x.creationTime) as number, { state: "Copied" }));
    const status: SnapVaultStatus = {
      repositoryId: "r",
      runs: 1,
      lastRunTime: iso(T0 - 600_000),
      run: { ...running(), phase: "Completed", aging: "x" },
      snapshots: entries,
    };
    const first = planSnapVaultRun(facts({ snapshots: snaps }, status));
    expect(first.status.snapshots).toHaveLength(100);
    expect(first.status.settledThrough).toBe(snaps[0]?.creationTime);
    // The next reconcile sees s000 in the caches but not in status: it stays settled.
    const again = planSnapVaultRun(facts({ snapshots: snaps }, first.status));
    expect(again.status.snapshots?.some((e) => e.name === "s000")).toBe(false);
    expect(again.status.counts).toMatchObject({ pending: 0, copied: 100 });
    // A newer snapshot the status never listed is taken up.
    const fresh = planSnapVaultRun(facts({ snapshots: [...snaps, vs("new", "a", T0)] }, first.status));
    expect(fresh.status.snapshots?.find((e) => e.name === "new")?.state).toBe("Pending");
  });

  it("retries a failed repository init with back-off, keeping the failed pod until then", () => {
    const failed = { name: "db-init", phase: "Failed", result: { ok: false, message: "wrong password", at: iso(T0), data: {} } };
    const wait = planSnapVaultRun(facts({ pods: [failed] }, {}));
    expect(wait.deletePods).not.toContain("db-init");
    expect(wait.ready.problems[0]).toMatchObject({ reason: "RepositoryInitFailed" });
    expect(wait.requeueAfterMs).toBe(1000);
    const later = planSnapVaultRun(facts({ pods: [failed], now: T0 + 1000 }, {}));
    expect(later.deletePods).toContain("db-init");
    expect(later.status.initFailures).toBe(1);
    const second = planSnapVaultRun(facts({ pods: [failed], now: T0 + 1000 }, { initFailures: 1 }));
    expect(second.deletePods).not.toContain("db-init");
  });

  it("a copy pod the API server refuses costs no attempt: the run waits with the server's words", () => {
    const st: SnapVaultStatus = {
      repositoryId: "r",
      runs: 1,
      lastRunTime: iso(T0 - 60_000),
      run: running(),
      snapshots: [entry("s1", "a", T0)],
    };
    const rejected = [{ name: copyPodName("db", "uid-s1", 1), message: "the API server refused MediaAgent pod: exceeded quota: pods" }];
    const plan = planSnapVaultRun(facts({ snapshots: [vs("s1", "a", T0)], rejected }, st));
    expect(plan.status.snapshots?.[0]).toMatchObject({ state: "Pending" });
    expect(plan.status.snapshots?.[0]?.attempts).toBeUndefined();
    expect(plan.status.run).toMatchObject({ waiting: rejected[0]?.message, destinationFailures: 1 });
    expect(plan.events?.some((e) => e.reason === "PodRejected")).toBe(true);
  });

  it("a re-pick request re-arms Missing snapshots whose VolumeSnapshot exists, between runs too", () => {
    const st: SnapVaultStatus = {
      repositoryId: "r",
      runs: 1,
      lastRunTime: iso(T0 - 60_000),
      run: { ...running(), phase: "AvailableWithMissingSnaps", aging: "x" },
      snapshots: [
        entry("s1", "a", T0, { state: "Missing", reason: "RetryCountExhausted", attempts: 3, firstAttemptTime: iso(T0) }),
        entry("gone", "a", T0, { state: "Missing", reason: "SourceSnapshotDeleted" }),
      ],
    };
    const f = facts({ snapshots: [vs("s1", "a", T0)] }, st);
    f.sv.repickRequested = "r1";
    const plan = planSnapVaultRun(f);
    expect(plan.status.lastRepick).toBe("r1");
    expect(plan.status.snapshots?.find((e) => e.name === "s1")).toMatchObject({ state: "Pending" });
    expect(plan.status.snapshots?.find((e) => e.name === "s1")?.attempts).toBeUndefined();
    expect(plan.status.snapshots?.find((e) => e.name === "gone")?.state).toBe("Missing");
  });
});
