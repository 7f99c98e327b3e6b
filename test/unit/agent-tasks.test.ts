// The MediaAgent's task table and the pure steps of its tasks, without restic: what the agent reports for a copy
// that stopped, the lag and run counts the run's status shows, data aging's clock and downstream rules, and the job
// events it writes again after a storage outage.
import { afterEach, describe, expect, it, vi } from "vitest";
import { EngineError } from "../../src/engine/errors.ts";
import type { ResticEngine } from "../../src/engine/restic.ts";
import { agentMain, fitResult, runTask } from "../../src/mediaagent/agent.ts";
import { EventWriter } from "../../src/mediaagent/events.ts";
import type { MetadataStore } from "../../src/mediaagent/metadata.ts";
import type { TaskSpec } from "../../src/mediaagent/protocol.ts";
import { agingReport, clockSkew, downstreamNeeds } from "../../src/mediaagent/tasks/age.ts";
import { copiedSince, lagAfter, stoppedCounts } from "../../src/mediaagent/tasks/copy.ts";
import { summarize } from "../../src/mediaagent/tasks/scan.ts";
import type { CatalogEntry } from "../../src/policy/catalog.ts";
import type { JobVerdict, RetentionDecision } from "../../src/policy/retention.ts";

const job = (jobId: string, startTime: string, over: Partial<CatalogEntry> = {}): CatalogEntry => ({
  jobId,
  snapshotId: `s-${jobId}`,
  originalId: `o-${jobId}`,
  type: "full",
  status: "completed",
  client: "web",
  subclient: "app",
  startTime,
  bytes: 100,
  tagged: true,
  ...over,
});

afterEach(() => vi.restoreAllMocks());

describe("agent task table", () => {
  it("refuses an unknown task (the removed prune too) with exit code 2 and names the tasks it runs", async () => {
    const err = vi.spyOn(process.stderr, "write").mockReturnValue(true);
    expect(await agentMain("prune", { AUXO_TASK: "{}" })).toBe(2);
    expect(String(err.mock.calls[0]?.[0])).toBe(
      'auxo agent: unknown task "prune"; tasks: probe, init, scan, copy, plan, age, verify, snapcopy, backupcopy, list, restore\n',
    );
  });

  it("runs a task by its handler and names the task in the result: init adopts a repository already there", async () => {
    const engine = {
      init: async () => {
        throw new EngineError("RepositoryExists", "init", 1, "config file already exists");
      },
      snapshots: async () => [],
      config: async () => ({ id: "4f1c", version: 2 }),
    } as unknown as ResticEngine;
    const spec: TaskSpec = { task: "init", target: { repository: "/lib/ns/p/c", passwordFile: "/pw", options: {} } };
    expect(await runTask("init", spec, {}, engine)).toEqual({ ok: true, task: "init", created: false, id: "4f1c" });
  });

  it("fails a write to a repository whose ID is not the recorded one, naming the location without credentials", async () => {
    const engine = { config: async () => ({ id: "other", version: 2 }) } as unknown as ResticEngine;
    const spec: TaskSpec = {
      task: "verify",
      target: { repository: "rest:https://u:secret@rest.example/p/c", passwordFile: "/pw", options: {}, repositoryId: "mine" },
      snapshotIds: ["s1"],
    };
    const err = await runTask("verify", spec, {}, engine).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: "RepositoryMismatch", retryable: false });
    expect((err as Error).message).toBe(
      "repository at rest:https://[redacted]@rest.example/p/c has ID other, the copy recorded mine: a different repository is at this location; nothing was written",
    );
  });
});

describe("copy task steps", () => {
  it("a stopped copy reports the jobs it finished (the latest 20), those it did not (the first 20) and its bytes", () => {
    const todo = Array.from({ length: 50 }, (_, i) => job(`j${i}`, `2026-11-01T00:${String(i).padStart(2, "0")}:00Z`));
    const copied = new Set(todo.slice(0, 30).map((e) => e.snapshotId));
    const r = stoppedCounts({ todo, copied, bytesDone: 3000 });
    expect(r.copied).toBe(30);
    expect(r.copiedJobs).toEqual(todo.slice(10, 30).map((e) => e.jobId));
    expect(r.failedJobs).toEqual(todo.slice(30, 50).map((e) => e.jobId));
    expect(r.bytes).toBe(3000);
  });

  it("lag is the newest valid source job against the newest job the target holds after this pod", () => {
    const source = [
      job("a", "2026-11-01T00:00:00Z"),
      job("b", "2026-11-01T06:00:00Z"),
      job("c", "2026-11-01T09:00:00Z", { status: "failed" }),
    ];
    const target = [job("a", "2026-11-01T00:00:00Z")];
    expect(lagAfter(source, target, [])).toEqual({ lagSeconds: 6 * 3600 });
    expect(lagAfter(source, target, [source[1] as CatalogEntry])).toEqual({ lagSeconds: 0 });
    // No valid source job: no lag to report.
    expect(lagAfter([source[2] as CatalogEntry], [], [])).toEqual({});
  });

  it("the run's count is the jobs copied since it started, each once; failed attempts and earlier copies do not count", () => {
    const events = [
      { jobId: "a", kind: "copy" as const, result: "ok" as const, at: "2026-11-01T10:00:00.000Z" },
      { jobId: "b", kind: "copy" as const, result: "ok" as const, at: "2026-11-01T12:00:00.000Z" },
      { jobId: "b", kind: "copy" as const, result: "ok" as const, at: "2026-11-01T12:30:00.000Z" },
      { jobId: "c", kind: "copy" as const, result: "failed" as const, at: "2026-11-01T12:10:00.000Z" },
      { jobId: "d", kind: "verify" as const, result: "ok" as const, at: "2026-11-01T12:20:00.000Z" },
      { jobId: "e", kind: "copy" as const, result: "ok" as const, at: "2026-11-01T11:00:00.000Z" },
    ];
    expect(copiedSince(events, "2026-11-01T11:00:00.000Z")).toBe(2);
  });

  it("a copy result too large for the termination message keeps its counts and halves its job lists", () => {
    const names = Array.from({ length: 400 }, (_, i) => `web-app-2026-11-01-incremental-${i}`);
    const text = fitResult({
      ok: false,
      task: "copy",
      kind: "Unreachable",
      retryable: true,
      message: "cut",
      copied: 400,
      bytes: 9e9,
      copiedJobs: names,
    });
    const r = JSON.parse(text);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(4000);
    expect(r).toMatchObject({
      ok: false,
      task: "copy",
      kind: "Unreachable",
      retryable: true,
      copied: 400,
      bytes: 9e9,
      truncated: ["copiedJobs"],
    });
    expect(r.copiedJobs).toEqual(names.slice(0, r.copiedJobs.length));
    expect(r.copiedJobs.length).toBeGreaterThan(0);
  });
});

describe("data aging task steps", () => {
  const decidedAt = Date.parse("2026-11-01T02:00:00Z");

  it("ages only when this node's clock is within 5 minutes of the operator's decision time", () => {
    expect(clockSkew("2026-11-01T02:00:00Z", decidedAt + 5 * 60_000)).toBeUndefined();
    expect(clockSkew(undefined, decidedAt)).toBeUndefined();
    const e = clockSkew("2026-11-01T02:00:00Z", decidedAt + 5 * 60_000 + 1000);
    expect(e).toMatchObject({ kind: "ClockSkew", retryable: true });
    expect(e?.message).toBe(
      "this node's clock reads 2026-11-01T02:05:01.000Z, the operator decided at 2026-11-01T02:00:00Z (301 s apart, more than 300 s): nothing was forgotten",
    );
    expect(clockSkew("yesterday", decidedAt)).toMatchObject({ kind: "ClockSkew" });
  });

  it("a next copy that cannot be read needs every job; one that can needs what it would still copy", () => {
    const catalog = [job("a", "2026-10-01T00:00:00Z"), job("b", "2026-10-02T00:00:00Z"), job("c", "2026-10-03T00:00:00Z")];
    const d = { name: "offsite", access: { repository: "/lib/o", options: {} }, rules: { copyType: "Synchronous" as const }, active: true };
    const unread = downstreamNeeds(catalog, d, undefined, decidedAt);
    expect([...unread.needs].sort()).toEqual(["a", "b", "c"]);
    expect(unread.has.size).toBe(0);
    // It holds a (copied: its snapshot keeps a's original ID), and will take b and c.
    const theirs = [job("a2", "2026-10-01T00:00:00Z", { snapshotId: "x", originalId: "o-a", jobId: "a" })];
    const read = downstreamNeeds(catalog, d, theirs, decidedAt);
    expect([...read.has]).toEqual(["a"]);
    expect([...read.needs].sort()).toEqual(["b", "c"]);
    expect(read).toMatchObject({ name: "offsite", active: true, copyType: "Synchronous" });
  });

  it("reports the decision bounded: 20 aged jobs named, the share to one decimal, 5 unread copies", () => {
    const verdict = (i: number, action: "age" | "keep"): JobVerdict =>
      ({
        jobId: `j${i}`,
        snapshotId: `s${i}`,
        client: "web",
        subclient: "app",
        startTime: "",
        bytes: 10,
        message: "",
        action,
        reason: action === "age" ? "RetentionMet" : "DaysNotExceeded",
      }) as JobVerdict;
    const verdicts = Array.from({ length: 90 }, (_, i) => verdict(i, i < 30 ? "age" : "keep"));
    const decision = {
      verdicts,
      aged: verdicts.slice(0, 30).map((v) => v.jobId),
      summary: {
        jobs: 90,
        bytes: 900,
        agedJobs: 30,
        agedBytes: 300,
        keptJobs: 60,
        keptBytes: 600,
        byReason: { RetentionMet: 30, DaysNotExceeded: 60 },
      },
    } as unknown as RetentionDecision;
    const unread = Array.from({ length: 7 }, (_, i) => `c${i}: unreachable`);
    const r = agingReport(90, decision, 50, unread);
    expect(r).toMatchObject({ jobs: 90, aged: 30, agedBytes: 300, byReason: { RetentionMet: 30, DaysNotExceeded: 60 } });
    expect(r.agedJobs).toEqual(verdicts.slice(0, 20).map((v) => v.jobId));
    expect(r.breaker).toMatchObject({ stop: false, share: 33.3 });
    expect(r.downstreamUnread).toEqual(unread.slice(0, 5));
    expect(agingReport(90, decision, 25, []).breaker).toMatchObject({ stop: true, share: 33.3 });
    expect(agingReport(90, decision, 25, []).breaker.message).toMatch(/^this run would age 30 of 90 jobs \(33\.3%\)/);
  });
});

describe("job events and scan summary", () => {
  it("events that fail during a storage outage are written again at the end; those still failing are named in the result", async () => {
    const written: string[] = [];
    let down = 2; // the first two writes fail
    const store: MetadataStore = {
      add: async (e) => {
        if (down-- > 0) throw new Error("connection refused");
        written.push(e.jobId);
      },
      list: async () => [],
    };
    const waits: number[] = [];
    const w = new EventWriter(store, "copy-1", async (ms) => {
      waits.push(ms);
    });
    w.add({ jobId: "a", snapshotId: "sa", kind: "copy", result: "ok" });
    w.add({ jobId: "b", snapshotId: "sb", kind: "copy", result: "ok" });
    w.add({ jobId: "c", snapshotId: "sc", kind: "copy", result: "ok" });
    await w.flush();
    expect(written.sort()).toEqual(["a", "b", "c"]);
    expect(waits).toEqual([1000]);
    expect(w.problem()).toEqual({});

    const never = new EventWriter(
      { add: async () => Promise.reject(new Error("bucket gone")), list: async () => [] },
      "copy-2",
      async (ms) => {
        waits.push(ms);
      },
    );
    never.add({ jobId: "a", snapshotId: "sa", kind: "copy", result: "ok" });
    await never.flush();
    expect(waits.slice(1)).toEqual([1000, 2000, 4000]);
    expect(never.problem()).toEqual({ metadataError: "1 job events not written: bucket gone" });
  });

  it("a scan summarises the catalog by type and status, with its bytes and oldest and newest job", () => {
    const catalog = [
      job("a", "2026-10-01T00:00:00Z"),
      job("b", "2026-10-02T00:00:00Z", { type: "incremental", status: "failed", bytes: undefined }),
      job("c", "2026-10-03T00:00:00Z", { type: "incremental" }),
    ];
    expect(summarize(catalog)).toEqual({
      jobs: 3,
      byType: { full: 1, incremental: 2 },
      byStatus: { completed: 2, failed: 1 },
      bytes: 200,
      oldestJob: "2026-10-01T00:00:00Z",
      newestJob: "2026-10-03T00:00:00Z",
    });
  });
});

describe("kubectl auxo's tasks", () => {
  const snap = (id: string, job: string, paths: string[], extra: string[] = []) => ({
    id,
    time: "2026-11-01T00:00:00Z",
    hostname: "db",
    paths,
    tags: [`auxo.dev/job=${job}`, "auxo.dev/type=full", "auxo.dev/status=completedWithErrors", ...extra],
  });
  const target = { repository: "/lib/ns/p/c", passwordFile: "/pw", options: {} };

  it("list prints one line per job (snapshot copies marked) and counts them in its result", async () => {
    const out = vi.spyOn(process.stdout, "write").mockReturnValue(true);
    const engine = {
      snapshots: async () => [snap("s1", "j1", ["/data"]), snap("s2", "j2", ["/snapshots/pg"], ["auxo.dev/volumesnapshot-uid=u1"])],
      config: async () => ({ id: "r1", version: 2 }),
    } as unknown as ResticEngine;
    const r = await runTask("list", { task: "list", target }, {}, engine);
    const lines = out.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>);
    expect(r).toMatchObject({ ok: true, jobs: 2, events: 0, runs: 0, repositoryId: "r1" });
    expect(lines).toEqual([
      expect.objectContaining({ msg: "job", jobId: "j1", snapshotId: "s1", status: "completedWithErrors", subclient: "/data" }),
      expect.objectContaining({ msg: "job", jobId: "j2", snap: true }),
    ]);
    expect(lines[0]).not.toHaveProperty("snap");
  });

  it("restore finds the job by its id, restores a one-folder job into the folder asked, and refuses what it cannot do", async () => {
    const calls: unknown[][] = [];
    const engine = {
      snapshots: async () => [snap("s1", "j1", ["/data/pg"]), snap("s2", "j2", ["/a", "/b"])],
      restore: async (...a: unknown[]) => {
        calls.push(a.slice(1));
        return { files: 3, bytes: 10, seconds: 1 };
      },
    } as unknown as ResticEngine;
    const spec = (jobId: string, p: string): TaskSpec => ({ task: "restore", target, restore: { jobId, mountPath: "/restore", path: p } });
    expect(await runTask("restore", spec("j1", "restored/pg"), {}, engine)).toMatchObject({ ok: true, snapshotId: "s1", files: 3 });
    await runTask("restore", spec("j2", ""), {}, engine);
    expect(calls).toEqual([
      ["s1", "/restore/restored/pg", { subfolder: "/data/pg", timeoutMs: 3_600_000 }],
      ["s2", "/restore", { subfolder: undefined, timeoutMs: 3_600_000 }],
    ]);
    await expect(runTask("restore", spec("j9", ""), {}, engine)).rejects.toMatchObject({ kind: "JobNotFound", retryable: false });
    await expect(runTask("restore", spec("j1", "../../etc"), {}, engine)).rejects.toThrow(/leaves the claim/);
    expect(calls).toHaveLength(2);
  });
});
