// Backup copies of a SnapVault's snapshots into its storage policy's primary copy (policy/snapvault-backup.ts), as the
// run's plan says them: inline with a run and offline on their own schedule, the pods and what they are told, faults,
// spool, placement, promotion.
import { describe, expect, it } from "vitest";
import type { SnapshotEntry, SnapVaultSpec, SnapVaultStatus } from "../../src/api/v1alpha1/index.ts";
import type { AgentOutcome, BackupCopyResult } from "../../src/mediaagent/protocol.ts";
import { repositoryAccess } from "../../src/policy/repository.ts";
import type { BackupTargetFacts } from "../../src/policy/snapvault-ctx.ts";
import { backupClaimName, backupPodName } from "../../src/policy/snapvault-ctx.ts";
import { copyPodName, planSnapVaultRun, type SnapVaultRunFacts } from "../../src/policy/snapvault-run.ts";
import { entry, facts, iso, running, T0, vs } from "./snapvault-facts.ts";

const H = 3600_000;

const target = (copy = "primary", over: Partial<BackupTargetFacts> = {}): BackupTargetFacts => ({
  policy: "gold",
  copy,
  repositoryId: `id-${copy}`,
  access: repositoryAccess({ filesystem: { volume: { persistentVolumeClaim: { claimName: "disk" } } } } as never, `team/gold/${copy}`, {
    secret: "pw",
    key: "password",
  }),
  library: { name: "disk", phase: "Ready", maxStreams: 4 },
  streamsInUse: 0,
  ...over,
});

/** A SnapVault with backup copy on (Inline by default) into the gold policy. */
function bfacts(
  over: Partial<SnapVaultRunFacts> = {},
  status: SnapVaultStatus = { repositoryId: "repo1" },
  backupCopy: NonNullable<SnapVaultSpec["backupCopy"]> = {},
  spec: Partial<SnapVaultSpec> = {},
): SnapVaultRunFacts {
  const f = facts({ backupTarget: target(), ...over }, status);
  f.sv.spec = { ...f.sv.spec, storagePolicy: "gold", backupCopy: { enabled: true, incrementalLimit: 2, ...backupCopy }, ...spec };
  return f;
}

const ok = (data: Partial<BackupCopyResult>): AgentOutcome<BackupCopyResult> => ({ ok: true, message: "", data: { ok: true, ...data } });
const bpod = (name: string, result?: AgentOutcome<BackupCopyResult>) => ({
  name: backupPodName("db", `uid-${name}`, 1),
  phase: result ? (result.ok ? "Succeeded" : "Failed") : "Running",
  ...(result ? { result } : {}),
});
const copied = (name: string) => ({
  name: copyPodName("db", `uid-${name}`, 1),
  phase: "Succeeded",
  result: { ok: true, message: "", data: { snapshotId: `v-${name}`, bytes: 10 } },
});
const st = (snapshots: SnapshotEntry[], over: Partial<SnapVaultStatus> = {}): SnapVaultStatus => ({
  repositoryId: "repo1",
  runs: 1,
  lastRunTime: iso(T0 - 60_000),
  run: running(),
  snapshots,
  backupCopy: { round: 1 },
  ...over,
});
const bc = (name: string, pvc: string, b: NonNullable<SnapshotEntry["backupCopy"]>, over: Partial<SnapshotEntry> = {}) =>
  entry(name, pvc, T0 - 1000, { cutBy: 1, backupCopy: b, ...over });

describe("inline backup copy", () => {
  it("marks the snapshots a run cuts, backs each up into the primary copy once ready, and ends the run after them", () => {
    const cut = planSnapVaultRun(bfacts());
    expect(cut.createSnapshots).toHaveLength(2);
    expect(cut.createSnapshots[0]?.metadata.labels).toMatchObject({ "auxo.dev/trigger": "Schedule" });
    expect(cut.status.snapshots?.map((e) => e.backupCopy)).toEqual([
      { state: "Pending", round: 1 },
      { state: "Pending", round: 1 },
    ]);
    expect(cut.status.backupCopy).toMatchObject({ round: 1, primaryCopy: "primary" });

    // Visible and ready: a vault copy and a backup copy pod for each, each with its own restored volume.
    const names = cut.status.snapshots?.map((e) => e.name) as string[];
    const seen = (cut.status.snapshots ?? []).map((e, i) => ({ ...e, uid: `uid-${names[i]}` }));
    const snapshots = names.map((n, i) => vs(n, i ? "b" : "a", T0 - 1000));
    const started = planSnapVaultRun(bfacts({ snapshots }, { ...cut.status, snapshots: seen }));
    expect(started.pods?.map((p) => p.task).sort()).toEqual(["backupcopy", "backupcopy", "snapcopy", "snapcopy"]);
    const pod = started.pods?.find((p) => p.task === "backupcopy" && p.snapshot?.subclient === "a");
    expect(pod?.target.repository).toContain("team/gold/primary");
    expect(pod?.target.repositoryId).toBe("id-primary");
    expect(pod?.backupCopy).toEqual({ fullEveryMs: 168 * H, incrementalLimit: 2 });
    expect(pod?.snapshot).toMatchObject({ client: "team", subclient: "a", path: "/snapshots/a", status: "completed" });
    expect(pod?.labels).toMatchObject({ "auxo.dev/copy": "primary", "auxo.dev/storage-policy": "gold" });
    expect(pod?.claims?.[0]?.claimName).toBe(backupClaimName("db", `uid-${names[0]}`, 1));
    expect(started.createClaims.map((c) => c.metadata.name)).toContain(backupClaimName("db", `uid-${names[0]}`, 1));

    // The vault copies are done, the backup copies not: the run goes on.
    const vaulted = planSnapVaultRun(
      bfacts({ snapshots, pods: [...names.map((n) => copied(n)), ...names.map((n) => bpod(n))] }, started.status),
    );
    expect(vaulted.status.run?.phase).toBe("Running");
    expect(vaulted.status.backupCopy?.counts).toMatchObject({ copying: 2, copied: 0 });

    const done = planSnapVaultRun(
      bfacts(
        {
          snapshots,
          pods: names.map((n) => bpod(n, ok({ snapshotId: `b-${n}`, type: "full", status: "completed", bytes: 10 }))),
          claims: names.map((n) => ({ name: backupClaimName("db", `uid-${n}`, 1), phase: "Bound" })),
        },
        vaulted.status,
      ),
    );
    expect(done.status.run?.phase).toBe("Completed");
    expect(done.status.run?.message).toMatch(/backup copies: 2 to primary \(2 full\)/);
    expect(done.status.snapshots?.map((e) => e.backupCopy)).toEqual([
      expect.objectContaining({ state: "Copied", type: "full", snapshotId: `b-${names[0]}`, copy: "primary", jobId: expect.any(String) }),
      expect.objectContaining({ state: "Copied", type: "full" }),
    ]);
    expect(done.status.backupCopy?.jobs).toEqual({ full: 2, incremental: 0, differential: 0 });
    expect(done.rescan).toBe("primary");
    expect(done.metrics).toContainEqual(
      expect.objectContaining({ metric: "snapVaultBackupCopies", labels: expect.objectContaining({ type: "full" }) }),
    );
    expect(done.deletePods).toEqual(expect.arrayContaining(names.map((n) => backupPodName("db", `uid-${n}`, 1))));
    expect(done.deleteClaims).toEqual(expect.arrayContaining(names.map((n) => backupClaimName("db", `uid-${n}`, 1))));
  });

  it("a source fault costs the backup copy one attempt and waits for the next run; a fault of the primary copy costs nothing", () => {
    const copying = { state: "Copying" as const, round: 1, pods: 1, lastAttemptTime: iso(T0 - 500) };
    const e1 = bc("s1", "a", copying, { state: "Copied" });
    const source = planSnapVaultRun(
      bfacts(
        {
          snapshots: [vs("s1", "a", T0 - 1000)],
          pods: [bpod("s1", { ok: false, message: "its restored volume cannot be read", data: { sourceFault: true } })],
        },
        st([e1]),
      ),
    );
    expect(source.status.snapshots?.[0]?.backupCopy).toMatchObject({ state: "Retrying", attempts: 1, reason: "SourceFault" });
    expect(source.pods?.filter((p) => p.task === "backupcopy")).toEqual([]);
    expect(source.status.run?.phase).toBe("Completed");
    expect(source.events?.some((x) => x.reason === "BackupCopyRetrying")).toBe(true);

    // The next run tries it again (a new pod number).
    const next = planSnapVaultRun(
      bfacts({ snapshots: [vs("s1", "a", T0 - 1000)] }, st(source.status.snapshots ?? [], { run: running(2), backupCopy: { round: 2 } })),
    );
    expect(next.pods?.find((p) => p.task === "backupcopy")?.name).toBe(backupPodName("db", "uid-s1", 2));

    const dest = planSnapVaultRun(
      bfacts(
        {
          snapshots: [vs("s1", "a", T0 - 1000)],
          pods: [bpod("s1", { ok: false, message: "repository is locked (exclusive) by host x", data: { kind: "LockHeld" } })],
        },
        st([e1]),
      ),
    );
    expect(dest.status.snapshots?.[0]?.backupCopy).toMatchObject({ state: "Pending", lastError: expect.stringMatching(/locked/) });
    expect(dest.status.snapshots?.[0]?.backupCopy?.attempts).toBeUndefined();
    expect(dest.status.backupCopy).toMatchObject({ destinationFailures: 1, retryAt: iso(T0 + 1000) });
    expect(dest.status.run?.phase).toBe("Running");
  });

  it("a snapshot of the run in progress that its status lacks (a stale or wiped status) still gets its backup copy", () => {
    const plan = planSnapVaultRun(
      bfacts({ snapshots: [vs("s1", "a", T0 - 1000, { run: 1 }), vs("old", "b", T0 - 5000, { run: 0 })] }, st([])),
    );
    const byName = Object.fromEntries((plan.status.snapshots ?? []).map((e) => [e.name, e]));
    expect(byName.s1).toMatchObject({ cutBy: 1, backupCopy: { state: "Copying", round: 1 } });
    expect(byName.old?.backupCopy).toBeUndefined();
  });

  it("after a promotion, new backup copies go to the new primary copy", () => {
    const plan = planSnapVaultRun(
      bfacts(
        { snapshots: [vs("s1", "a", T0 - 1000)], backupTarget: target("offsite") },
        st([bc("s1", "a", { state: "Pending", round: 1 }, { state: "Copied" })]),
      ),
    );
    const pod = plan.pods?.find((p) => p.task === "backupcopy");
    expect(pod?.target.repository).toContain("team/gold/offsite");
    expect(plan.status.snapshots?.[0]?.backupCopy).toMatchObject({ state: "Copying", copy: "offsite" });
    expect(plan.status.backupCopy?.primaryCopy).toBe("offsite");
  });

  it("waits for a primary copy that is not open, a BackupCopy window, a prune, and the library's streams", () => {
    const s = st([bc("s1", "a", { state: "Pending", round: 1 }, { state: "Copied" })]);
    const snaps = [vs("s1", "a", T0 - 1000)];
    const waits = (over: Partial<SnapVaultRunFacts>) => {
      const p = planSnapVaultRun(bfacts({ snapshots: snaps, ...over }, s));
      expect(p.pods?.filter((x) => x.task === "backupcopy")).toEqual([]);
      return p.status.backupCopy?.waiting;
    };
    expect(waits({ backupTarget: target("primary", { problem: "the repository of primary copy primary is not open yet" }) })).toMatch(
      /not open/,
    );
    expect(waits({ backupTarget: target("primary", { pruning: true }) })).toMatch(/prunes/);
    expect(waits({ backupTarget: target("primary", { streamsInUse: 4 }) })).toMatch(/all 4 streams/);
    expect(
      waits({
        policy: {
          operationWindows: [
            {
              name: "day",
              operations: ["BackupCopy"],
              days: ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
              start: "00:00",
              end: "23:59",
            },
          ],
        },
      }),
    ).toMatch(/window "day"/);
  });
});

describe("access nodes", () => {
  it("a selector that matches no node starts no pod and says so in a condition", () => {
    const plan = planSnapVaultRun(
      bfacts(
        { snapshots: [vs("s1", "a", T0 - 1000)], nodes: [{ name: "n1", labels: { zone: "a" } }] },
        st([bc("s1", "a", { state: "Pending", round: 1 }, { state: "Copied" })]),
        { accessNodes: { matchLabels: { role: "backup" } } },
      ),
    );
    expect(plan.pods?.filter((p) => p.task === "backupcopy")).toEqual([]);
    expect(plan.ready.others).toContainEqual(
      expect.objectContaining({
        type: "AccessNodes",
        status: "False",
        reason: "NoAccessNode",
        message: expect.stringMatching(/"role":"backup"/),
      }),
    );
    expect(plan.status.backupCopy?.waiting).toMatch(/match no node/);
  });

  it("a PVC's annotation names its access nodes: the pod requires them", () => {
    const plan = planSnapVaultRun(
      bfacts(
        {
          snapshots: [vs("s1", "a", T0 - 1000)],
          nodes: [{ name: "n1" }, { name: "n2" }],
          pvcs: [{ name: "a", bound: true, accessNodes: ["n2"] }],
        },
        st([bc("s1", "a", { state: "Pending", round: 1 }, { state: "Copied" })]),
      ),
    );
    const pod = plan.pods?.find((p) => p.task === "backupcopy");
    expect(pod?.placement?.affinity).toMatchObject({
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ values: ["n2"] }] }] } },
    });
    expect(plan.ready.others).toContainEqual(expect.objectContaining({ type: "AccessNodes", status: "True" }));
  });
});

describe("spool and the source's retention", () => {
  const done = (name: string, at: number, b: NonNullable<SnapshotEntry["backupCopy"]>["state"] = "Copied") =>
    entry(name, "a", at, { state: "Copied", cutBy: 1, backupCopy: { state: b, round: 1 } });
  const ended = { run: { ...running(), phase: "Completed" as const, endTime: iso(T0), aging: "done" } };

  it("a spool deletes each snapshot once its copy and its backup copy are done; a Missing backup copy keeps it", () => {
    const plan = planSnapVaultRun(
      bfacts(
        {
          snapshots: [
            vs("s1", "a", T0 - 3 * H, { trigger: "Schedule" }),
            vs("s2", "a", T0 - 2 * H, { trigger: "Schedule" }),
            vs("s3", "a", T0 - H, { trigger: "Request" }),
            vs("s4", "a", T0 - 30 * 60_000),
          ],
        },
        st([done("s1", T0 - 3 * H), done("s2", T0 - 2 * H, "Missing"), done("s3", T0 - H), done("s4", T0 - 30 * 60_000, "Pending")], ended),
        {},
        { source: { persistentVolumeClaims: ["a"], retention: { spool: true } }, schedule: { every: "1h", suspend: true } },
      ),
    );
    expect(plan.deleteSnapshots.sort()).toEqual(["s1", "s3"]);
    expect(plan.events?.find((e) => e.reason === "SnapshotDeleted")?.message).toMatch(/spool.*backup copy job/);
  });

  it("keepNewest Scheduled keeps the newest snapshot a scheduled run cut; a requested run's is a true spool", () => {
    const plan = planSnapVaultRun(
      bfacts(
        {
          snapshots: [
            vs("s1", "a", T0 - 3 * H, { trigger: "Schedule" }),
            vs("s2", "a", T0 - 2 * H, { trigger: "Schedule" }),
            vs("s3", "a", T0 - H, { trigger: "Request" }),
          ],
        },
        st([done("s1", T0 - 3 * H), done("s2", T0 - 2 * H), done("s3", T0 - H)], ended),
        {},
        {
          source: { persistentVolumeClaims: ["a"], retention: { spool: true, keepNewest: "Scheduled" } },
          schedule: { every: "1h", suspend: true },
        },
      ),
    );
    expect(plan.deleteSnapshots.sort()).toEqual(["s1", "s3"]);
  });

  it("the source's days delete nothing before its backup copy, however short", () => {
    const plan = planSnapVaultRun(
      bfacts(
        { snapshots: [vs("s1", "a", T0 - 10 * 86_400_000), vs("s2", "a", T0 - 9 * 86_400_000)] },
        st([done("s1", T0 - 10 * 86_400_000, "Retrying"), done("s2", T0 - 9 * 86_400_000)], ended),
        {},
        { source: { persistentVolumeClaims: ["a"], retention: { days: 1 } }, schedule: { every: "1h", suspend: true } },
      ),
    );
    expect(plan.deleteSnapshots).toEqual(["s2"]);
  });
});

describe("offline backup copy", () => {
  const copiedVault = (name: string, at: number) => entry(name, "a", at, { state: "Copied", cutBy: 1 });
  const offline = (over: Partial<SnapVaultRunFacts>, status: SnapVaultStatus, b: NonNullable<SnapVaultSpec["backupCopy"]> = {}) =>
    bfacts(
      over,
      { ...status, run: { ...running(), phase: "Completed", endTime: iso(T0 - 1000), aging: "done" } },
      {
        mode: "Offline",
        schedule: { every: "24h" },
        ...b,
      },
    );

  it("starts nothing until its schedule fires, then picks every snapshot not backed up yet; a request starts one at once", () => {
    const snaps = [vs("s1", "a", T0 - 5 * H), vs("s2", "a", T0 - 4 * H)];
    const entries = [copiedVault("s1", T0 - 5 * H), copiedVault("s2", T0 - 4 * H)];
    const f = offline({ snapshots: snaps }, st(entries, { backupCopy: { lastRunTime: iso(T0 - 2 * H), runs: 1, round: 1 } }));
    const quiet = planSnapVaultRun(f);
    expect(quiet.pods?.filter((p) => p.task === "backupcopy")).toEqual([]);
    expect(quiet.status.backupCopy?.nextRunTime).toBe(iso(T0 + 22 * H));
    expect(quiet.status.snapshots?.map((e) => e.backupCopy)).toEqual([undefined, undefined]);

    const due = planSnapVaultRun({ ...f, now: T0 + 22 * H });
    expect(due.status.backupCopy).toMatchObject({ runs: 2, round: 2 });
    expect(due.pods?.filter((p) => p.task === "backupcopy")).toHaveLength(2);
    expect(due.events?.find((e) => e.reason === "BackupCopyStarted")?.message).toMatch(/offline backup copy 2 \(scheduled\): 2 snapshot/);

    f.sv.backupCopyRequested = "now";
    const asked = planSnapVaultRun(f);
    expect(asked.status.backupCopy).toMatchObject({ runs: 2, lastRequest: "now" });
    expect(asked.pods?.filter((p) => p.task === "backupcopy")).toHaveLength(2);
  });

  it("keeps the snapshots no offline backup copy picked yet in the bounded status, ahead of settled ones", () => {
    const done = Array.from({ length: 100 }, (_, i) =>
      entry(`d${i}`, "a", T0 - 10 * H + i * 60_000, { state: "Copied", backupCopy: { state: "Copied", round: 1 } }),
    );
    const waiting = Array.from({ length: 5 }, (_, i) => copiedVault(`w${i}`, T0 - 20 * H + i * 60_000));
    const f = offline({ snapshots: [] }, st([...done, ...waiting], { backupCopy: { lastRunTime: iso(T0 - H), runs: 1, round: 1 } }));
    const listed = planSnapVaultRun(f).status;
    expect(listed.snapshots).toHaveLength(100);
    expect(listed.snapshots?.filter((e) => e.name.startsWith("w"))).toHaveLength(5);
    // What was dropped is settled and newer than none of the waiting ones.
    expect(Date.parse(listed.settledThrough as string)).toBeLessThan(T0 - 9 * H);
  });

  it("First per day takes a day's first snapshot and skips the others; Last waits for the day to end", () => {
    const day = Date.parse("2026-11-30T00:00:00Z");
    const snaps = [vs("y1", "a", day + 2 * H), vs("y2", "a", day + 5 * H), vs("t1", "a", T0 - 2 * H), vs("t2", "a", T0 - H)];
    const entries = snaps.map((s) => copiedVault(s.name, Date.parse(s.creationTime as string)));
    const pick = (take: "First" | "Last") => {
      const f = offline({ snapshots: snaps }, st(entries, { backupCopy: {} }), { select: { take, period: "Daily" } });
      f.sv.backupCopyRequested = take;
      return Object.fromEntries((planSnapVaultRun(f).status.snapshots ?? []).map((e) => [e.name, e.backupCopy?.state]));
    };
    expect(pick("First")).toEqual({ y1: "Copying", y2: "Skipped", t1: "Copying", t2: "Skipped" });
    expect(pick("Last")).toEqual({ y1: "Skipped", y2: "Copying", t1: undefined, t2: undefined });
  });
});
