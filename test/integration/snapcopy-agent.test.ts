// The MediaAgent's snapcopy task (`auxo agent snapcopy`) in process, with real restic running as the MediaAgents'
// user, against a filesystem repository and a folder standing for the PVC restored from a VolumeSnapshot (mounted at
// a stable path per PVC). A copy is one restic snapshot with the copy's tags and the VolumeSnapshot's creation time;
// it is never written twice; the next VolumeSnapshot of the PVC uses it as parent; an unreadable source fails as the
// source's fault and leaves nothing; a wrong repository is never written; plain restic restores the copy. The
// backupcopy task (`auxo agent backupcopy`) the same way into a policy's primary copy: job types from the PVC's
// history there, restic's parent by type, unreadable files kept as a job completed with errors.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Repo, ResticEngine } from "../../src/engine/restic.ts";
import { type AgentResult, runTask } from "../../src/mediaagent/agent.ts";
import { metadataStore } from "../../src/mediaagent/metadata.ts";
import type { SnapCopyTask, TaskSpec } from "../../src/mediaagent/protocol.ts";
import { parseEventKey } from "../../src/policy/jobevents.ts";
import { snapCopyOf, snapJobId } from "../../src/policy/snaptags.ts";
import { hashTree, engineFailure } from "../harness/checks.ts";
import { tools } from "../harness/tools.ts";

const AGENT_UID = 65532;
const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-snapcopy-"));
const passwordFile = path.join(dir, "password");
const vault: Repo = { repository: path.join(dir, "vault"), passwordFile };
const metadataDir = `${vault.repository}.auxo`;
// The stable mount path of the PVC's restored volume: each VolumeSnapshot's volume appears here in turn.
const mount = path.join(dir, "snapshots", "data-pg-0");
const asAgent = path.join(dir, "restic-as-agent");
let engine: ResticEngine;
let repositoryId = "";

const restic = (...args: string[]) =>
  execFileSync(tools().restic, ["-r", vault.repository, "--password-file", passwordFile, "--no-cache", ...args], { encoding: "utf8" });
const snapshotsOn = (): { id: string; time: string; hostname: string; paths: string[]; tags: string[]; parent?: string }[] =>
  JSON.parse(restic("snapshots", "--json"));

const vs = (n: number, over: Partial<SnapCopyTask> = {}): SnapCopyTask => {
  const uid = `${String(n).repeat(8)}-0b7d-4c1e-9a55-3d2e8f0c1b42`;
  return {
    path: mount,
    jobId: snapJobId("team-a", `pg-${n}`, uid),
    status: "completed",
    client: "team-a",
    subclient: "data-pg-0",
    snapVault: "pg-vault",
    volumeSnapshot: { name: `pg-${n}`, uid, handle: `snap-${n}`, creationTime: `2026-11-2${n}T01:00:00Z` },
    ...over,
  };
};
const spec = (snapshot: SnapCopyTask, over: Partial<TaskSpec> = {}): TaskSpec => ({
  task: "snapcopy",
  target: { repository: vault.repository, passwordFile, options: {}, repositoryId, metadata: { path: metadataDir } },
  snapshot,
  locks: { deadHosts: [] },
  timeoutSeconds: 300,
  ...over,
});
const snapcopy = (s: TaskSpec): Promise<AgentResult> => runTask("snapcopy", s, { TMPDIR: dir, AUXO_POD_NAME: "pg-vault-copy-1" }, engine);
const events = (job: string) =>
  existsSync(path.join(metadataDir, "jobs", encodeURIComponent(job)))
    ? readdirSync(path.join(metadataDir, "jobs", encodeURIComponent(job))).map((f) => parseEventKey(`jobs/${encodeURIComponent(job)}/${f}`))
    : [];

/** A VolumeSnapshot's restored volume at the mount path: a database's files. */
function restoredVolume(files: Record<string, Buffer | string>): void {
  rmSync(mount, { recursive: true, force: true });
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(mount, name)), { recursive: true });
    writeFileSync(path.join(mount, name), content);
  }
}

const base = { "base/16384/1259": randomBytes(4 << 20), "base/16384/2619": randomBytes(1 << 20), PG_VERSION: "17\n" };

beforeAll(async () => {
  chmodSync(dir, 0o755);
  writeFileSync(passwordFile, `pw-${randomBytes(8).toString("hex")}`, { mode: 0o644 });
  // restic as the MediaAgents' user, as in the pod (root would read every file, so no source could be unreadable).
  const bin = path.join(dir, "restic");
  copyFileSync(tools().restic, bin);
  chmodSync(bin, 0o755);
  writeFileSync(asAgent, `#!/bin/sh\nexec setpriv --reuid=${AGENT_UID} --regid=${AGENT_UID} --clear-groups -- ${bin} "$@"\n`, {
    mode: 0o755,
  });
  engine = new ResticEngine({ binary: asAgent });
  mkdirSync(vault.repository);
  execFileSync("chown", [`${AGENT_UID}:${AGENT_UID}`, vault.repository]);
  repositoryId = await engine.init(vault);
  expect(repositoryId).toMatch(/^[0-9a-f]{64}$/);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("snapcopy task", () => {
  let first = "";
  it("copies a VolumeSnapshot's volume as one restic snapshot with the copy's tags, host and time", async () => {
    restoredVolume(base);
    const r = await snapcopy(spec(vs(1)));
    expect(r).toMatchObject({ ok: true, task: "snapcopy", bytes: (5 << 20) + 3 });
    expect(r.already).toBeUndefined();
    expect(r.parent).toBeUndefined();
    expect(r.added as number).toBeGreaterThan(5 << 20);
    expect(typeof r.seconds).toBe("number");
    first = r.snapshotId as string;
    const [s, ...more] = snapshotsOn();
    expect(more).toEqual([]);
    expect(s).toMatchObject({ id: first, hostname: "team-a", paths: [mount] });
    expect(Date.parse(s?.time as string)).toBe(Date.parse("2026-11-21T01:00:00Z"));
    expect(s?.tags).toEqual([
      `auxo.dev/job=${vs(1).jobId}`,
      "auxo.dev/type=full",
      "auxo.dev/status=completed",
      "auxo.dev/client=team-a",
      "auxo.dev/subclient=data-pg-0",
      "auxo.dev/snapvault=pg-vault",
      "auxo.dev/volumesnapshot=pg-1",
      `auxo.dev/volumesnapshot-uid=${vs(1).volumeSnapshot.uid}`,
      "auxo.dev/snapshot-handle=snap-1",
    ]);
    // Its job event beside the repository, signed with the pod's name.
    expect(events(vs(1).jobId)).toEqual([expect.objectContaining({ kind: "copy", result: "ok" })]);
  });

  it("finds the copy on the destination the second time and writes nothing", async () => {
    const r = await snapcopy(spec(vs(1)));
    expect(r).toMatchObject({ ok: true, already: true, snapshotId: first, bytes: (5 << 20) + 3 });
    expect(snapshotsOn()).toHaveLength(1);
    expect(events(vs(1).jobId)).toHaveLength(1);
  });

  let second = "";
  it("copies the PVC's next VolumeSnapshot with the previous copy as restic's parent", async () => {
    restoredVolume({ ...base, "base/16384/2619": randomBytes(1 << 20), "pg_wal/000000010000000000000002": randomBytes(256 << 10) });
    const r = await snapcopy(spec(vs(2, { status: "completedWithErrors" })));
    expect(r).toMatchObject({ ok: true, parent: first });
    second = r.snapshotId as string;
    const s = snapshotsOn().find((x) => x.id === second);
    expect(s?.parent).toBe(first);
    expect(s?.tags).toContain("auxo.dev/status=completedWithErrors");
    expect(snapCopyOf(s?.tags)).toMatchObject({ uid: vs(2).volumeSnapshot.uid, volumeSnapshot: "pg-2" });
    expect(snapshotsOn()).toHaveLength(2);
  });

  it("restores with plain restic into a folder, byte for byte (restic restore <id>:<path> --target)", () => {
    const want = hashTree(mount);
    const target = path.join(dir, "restored");
    restic("restore", `${second}:${mount}`, "--target", target);
    expect(hashTree(target)).toEqual(want);
    expect(Object.keys(want)).toHaveLength(4);
  });

  it("fails as the source's fault when the restored volume is missing or not a folder, and writes nothing", async () => {
    rmSync(mount, { recursive: true, force: true });
    const r = await snapcopy(spec(vs(3)));
    expect(r).toMatchObject({ ok: false, kind: "SourceUnreadable", retryable: true, sourceFault: true });
    expect(r.message).toContain(`VolumeSnapshot team-a/pg-3: its restored volume at ${mount} cannot be read: it does not exist`);
    writeFileSync(mount, "not a folder");
    expect(await snapcopy(spec(vs(3)))).toMatchObject({
      ok: false,
      sourceFault: true,
      message: expect.stringContaining("not a directory"),
    });
    rmSync(mount);
    expect(snapshotsOn()).toHaveLength(2);
    expect(events(vs(3).jobId).map((e) => e?.result)).toEqual(["failed", "failed"]);
  });

  it("forgets the incomplete snapshot when restic cannot read some files, and fails as the source's fault", async () => {
    restoredVolume({ ...base, "global/pg_control": "control" });
    chmodSync(path.join(mount, "global", "pg_control"), 0o600); // root's: the agent's user cannot read it
    const r = await snapcopy(spec(vs(3)));
    expect(r).toMatchObject({
      ok: false,
      kind: "SourceUnreadable",
      sourceFault: true,
      unreadable: [path.join(mount, "global", "pg_control")],
    });
    expect(r.message).toMatch(/1 file\(s\) under .* could not be read .*the incomplete snapshot [0-9a-f]{8} was forgotten/);
    expect(snapshotsOn().map((s) => s.id)).toEqual([first, second]);
    expect(events(vs(3).jobId).map((e) => e?.result)).toEqual(["failed", "failed", "failed"]);
  });

  it("forgets an incomplete copy that a later failed attempt disowns, then copies the VolumeSnapshot", async () => {
    // A pod wrote an incomplete copy and could not forget it (the repository stayed locked): it stays with the uid
    // tag, and that attempt's failed event comes after it.
    restoredVolume({ PG_VERSION: "17\n" });
    const left = await engine.backup(vault, [mount], { host: "team-a", tags: [`auxo.dev/volumesnapshot-uid=${vs(4).volumeSnapshot.uid}`] });
    await metadataStore({ path: metadataDir }, {})?.add({
      jobId: vs(4).jobId,
      kind: "copy",
      result: "failed",
      at: new Date(Date.now() + 1000).toISOString(),
      message: "could not be forgotten",
    });
    restoredVolume(base);
    const r = await snapcopy(spec(vs(4)));
    expect(r).toMatchObject({ ok: true });
    expect(r.already).toBeUndefined();
    const ids = snapshotsOn().map((s) => s.id);
    expect(ids).not.toContain(left.snapshotId);
    expect(ids).toContain(r.snapshotId);
    expect(ids).toHaveLength(3);
    // Copied now (its ok event is the newest): the next run finds it.
    expect(await snapcopy(spec(vs(4)))).toMatchObject({ ok: true, already: true, snapshotId: r.snapshotId });
  });

  it("never writes to a repository that is not the recorded one: the destination's fault, not the source's", async () => {
    restoredVolume(base);
    const err = await engineFailure(snapcopy(spec(vs(5), { target: { ...spec(vs(5)).target, repositoryId: "0".repeat(64) } })));
    expect(err.kind).toBe("RepositoryMismatch");
    expect(err.message).toContain("nothing was written");
    expect(err.details?.sourceFault).toBeUndefined();
    expect(snapshotsOn()).toHaveLength(3);
    expect(events(vs(5).jobId)).toEqual([]);
  });

  it("fails without a source fault when the destination cannot be opened", async () => {
    const err = await engineFailure(
      snapcopy(
        spec(vs(5), {
          target: { repository: path.join(dir, "no-vault"), passwordFile, options: {}, metadata: { path: `${dir}/no-vault.auxo` } },
        }),
      ),
    );
    expect(err.kind).toBe("RepositoryNotFound");
    expect(err.details?.sourceFault).toBeUndefined();
  });
});

describe("backupcopy task", () => {
  // The policy's primary copy: a repository of its own.
  const primary: Repo = { repository: path.join(dir, "primary"), passwordFile };
  let primaryId = "";
  const onPrimary = (): { id: string; time: string; tags: string[]; parent?: string; original?: string }[] =>
    JSON.parse(
      execFileSync(tools().restic, ["-r", primary.repository, "--password-file", passwordFile, "--no-cache", "snapshots", "--json"], {
        encoding: "utf8",
      }),
    ).sort((a: { time: string }, b: { time: string }) => Date.parse(a.time) - Date.parse(b.time));
  const tag = (tags: string[], k: string) => tags.find((t) => t.startsWith(`auxo.dev/${k}=`))?.split("=")[1];
  const backup = (n: number): Promise<AgentResult> =>
    runTask(
      "backupcopy",
      {
        ...spec(vs(n)),
        task: "backupcopy",
        target: {
          repository: primary.repository,
          passwordFile,
          options: {},
          repositoryId: primaryId,
          metadata: { path: `${primary.repository}.auxo` },
        },
        backupCopy: { fullEveryMs: 30 * 86_400_000, incrementalLimit: 2 },
      },
      { TMPDIR: dir, AUXO_POD_NAME: `pg-vault-bcopy-${n}` },
      engine,
    );

  beforeAll(async () => {
    mkdirSync(primary.repository);
    execFileSync("chown", [`${AGENT_UID}:${AGENT_UID}`, primary.repository]);
    primaryId = await engine.init(primary);
  });

  it("types the PVC's backup copies from its history on the primary (limit 2: F, I, I, D), with restic's parent by type", async () => {
    const results: AgentResult[] = [];
    for (const n of [1, 2, 3, 4]) {
      restoredVolume({ ...base, [`wal/${n}`]: randomBytes(1 << 16) });
      results.push(await backup(n));
    }
    expect(results.map((r) => [r.ok, r.type, r.status])).toEqual([
      [true, "full", "completed"],
      [true, "incremental", "completed"],
      [true, "incremental", "completed"],
      [true, "differential", "completed"],
    ]);
    const [f, i1, i2, d] = onPrimary();
    expect([f, i1, i2, d].map((s) => tag(s?.tags ?? [], "type"))).toEqual(["full", "incremental", "incremental", "differential"]);
    expect(f?.parent).toBeUndefined();
    expect(i1?.parent).toBe(f?.id);
    expect(i2?.parent).toBe(i1?.id);
    expect(d?.parent).toBe(f?.id);
    expect(results[3]?.parentJob).toBe(vs(1).jobId);
    // The same VolumeSnapshot again: found by its uid tag, nothing written, its type read back.
    const again = await backup(4);
    expect(again).toMatchObject({ ok: true, already: true, snapshotId: d?.id, type: "differential" });
    expect(onPrimary()).toHaveLength(4);
  });

  it("keeps a backup copy whose files restic could not all read, as a job that completed with errors", async () => {
    restoredVolume({ ...base, "global/pg_control": "control" });
    chmodSync(path.join(mount, "global", "pg_control"), 0o600); // root's: the agent's user cannot read it
    const r = await backup(5);
    expect(r).toMatchObject({
      ok: true,
      type: "incremental",
      status: "completedWithErrors",
      unreadable: [path.join(mount, "global", "pg_control")],
    });
    expect(r.message).toMatch(/1 file\(s\) under .* could not be read: the job completed with errors/);
    const last = onPrimary().at(-1);
    expect(last?.id).toBe(r.snapshotId);
    expect(tag(last?.tags ?? [], "status")).toBe("completedWithErrors");
    expect(last?.tags.filter((t) => t.startsWith("auxo.dev/status="))).toHaveLength(1);
    // restic tag rewrote it: the first id is its original, and the first snapshot is gone.
    expect(last?.original).toMatch(/^[0-9a-f]{64}$/);
    expect(last?.original).not.toBe(r.snapshotId);
    expect(onPrimary()).toHaveLength(5);
  });
});
