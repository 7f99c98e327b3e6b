// The engine's backup (restic backup --json) with real restic on a filesystem repository: host, tags, --time (in
// UTC, whatever the machine's zone), an explicit parent, the summary, progress lines, and restic's exit 3 (files it
// could not read: the snapshot is written without them) as a partial result with the snapshot's id.
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Repo, ResticEngine, resticTime } from "../../src/engine/restic.ts";
import { tools } from "../harness/tools.ts";

const AGENT_UID = 65532;
const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-engine-backup-"));
const passwordFile = path.join(dir, "password");
const repo: Repo = { repository: path.join(dir, "repo"), passwordFile };
const data = path.join(dir, "data");
// restic as a wrapper that defaults TZ to a zone far from UTC (the engine must pin restic's zone for --time), notes
// the zone and progress rate the engine set, then asks for status lines often (a small backup ends within a second).
const wrapper = path.join(dir, "restic-far-zone");
const envLog = path.join(dir, "env.log");
const asAgent = path.join(dir, "restic-as-agent");
const progress: Record<string, unknown>[] = [];
const engine = new ResticEngine({ binary: wrapper, onProgress: (m) => progress.push(m) });
const restic = (...args: string[]) =>
  execFileSync(tools().restic, ["-r", repo.repository, "--password-file", passwordFile, "--no-cache", ...args], { encoding: "utf8" });

beforeAll(async () => {
  chmodSync(dir, 0o755);
  writeFileSync(passwordFile, `pw-${randomBytes(8).toString("hex")}`, { mode: 0o644 });
  writeFileSync(
    wrapper,
    `#!/bin/sh\nexport TZ="\${TZ:-Pacific/Auckland}"\necho "$1 TZ=$TZ FPS=$RESTIC_PROGRESS_FPS" >> ${envLog}\nexport RESTIC_PROGRESS_FPS=50\nexec ${tools().restic} "$@"\n`,
    { mode: 0o755 },
  );
  // restic as the MediaAgents' user (root reads every file, so only a non-root restic meets an unreadable one).
  const bin = path.join(dir, "restic");
  copyFileSync(tools().restic, bin);
  chmodSync(bin, 0o755);
  writeFileSync(asAgent, `#!/bin/sh\nexec setpriv --reuid=${AGENT_UID} --regid=${AGENT_UID} --clear-groups -- ${bin} "$@"\n`, {
    mode: 0o755,
  });
  mkdirSync(path.join(data, "db"), { recursive: true });
  writeFileSync(path.join(data, "db", "rows.dat"), randomBytes(3 << 20));
  writeFileSync(path.join(data, "README"), "hello\n");
  await engine.init(repo);
  execFileSync("chown", ["-R", `${AGENT_UID}:${AGENT_UID}`, repo.repository]);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("restic backup", () => {
  it("formats --time in UTC, second precision", () => {
    expect(resticTime("2026-11-22T01:02:03.987Z")).toBe("2026-11-22 01:02:03");
    expect(resticTime(new Date("2026-11-22T03:02:03+02:00"))).toBe("2026-11-22 01:02:03");
    expect(() => resticTime("yesterday")).toThrow(/not a time/);
  });

  let first = "";
  it("writes a snapshot with the host, tags and time, and returns restic's summary", async () => {
    const b = await engine.backup(repo, [data], {
      host: "team-a",
      tags: ["auxo.dev/job=j-1", "auxo.dev/type=full", "auxo.dev/volumesnapshot-uid=u-1"],
      time: "2026-11-22T01:00:00Z",
    });
    expect(b.partial).toBeUndefined();
    expect(b.snapshotId).toMatch(/^[0-9a-f]{64}$/);
    expect(b.bytes).toBe((3 << 20) + 6);
    expect(b.added).toBeGreaterThan(3 << 20);
    expect(b.files).toBe(2);
    first = b.snapshotId;
    const [s] = JSON.parse(restic("snapshots", "--json", first));
    expect(s).toMatchObject({
      hostname: "team-a",
      paths: [data],
      tags: ["auxo.dev/job=j-1", "auxo.dev/type=full", "auxo.dev/volumesnapshot-uid=u-1"],
    });
    // Exactly the instant given, though restic ran with TZ=Pacific/Auckland by default.
    expect(Date.parse(s.time)).toBe(Date.parse("2026-11-22T01:00:00Z"));
    expect(progress.some((m) => m.message_type === "status" && typeof m.percent_done === "number")).toBe(true);
    expect(progress.some((m) => m.message_type === "status" && m.bytes_done === b.bytes && m.total_bytes === b.bytes)).toBe(true);
    // The engine ran restic in UTC, at one status line a second.
    expect(readFileSync(envLog, "utf8")).toContain("-r TZ=UTC FPS=1");
    expect(progress.some((m) => m.message_type === "summary")).toBe(false);
  });

  it("takes an explicit parent: unchanged files are not read again", async () => {
    writeFileSync(path.join(data, "README"), "hello again\n");
    const b = await engine.backup(repo, [data], {
      host: "other-host",
      tags: ["auxo.dev/job=j-2"],
      time: "2026-11-23T01:00:00Z",
      parent: first,
    });
    const [s] = JSON.parse(restic("snapshots", "--json", b.snapshotId));
    // Another host: restic would find no parent of its own; the given one makes the 3 MiB file unmodified.
    expect(s.parent).toBe(first);
    expect(s.summary).toMatchObject({ files_unmodified: 1, files_changed: 1 });
    expect(b.added).toBeLessThan(1 << 20);
  });

  it("returns restic's exit 3 as partial, with the snapshot it wrote and the paths it could not read", async () => {
    const secret = path.join(data, "db", "secret.key");
    writeFileSync(secret, "k");
    chmodSync(secret, 0o600); // root's, unreadable to the agent's user
    execFileSync("chown", ["-R", `${AGENT_UID}:${AGENT_UID}`, repo.repository]);
    const agent = new ResticEngine({ binary: asAgent });
    const b = await agent.backup(repo, [data], { host: "team-a", tags: ["auxo.dev/job=j-3"], time: "2026-11-24T01:00:00Z" });
    expect(b).toMatchObject({ partial: true, unreadable: [secret], unreadableCount: 1 });
    const [s] = JSON.parse(restic("snapshots", "--json", b.snapshotId));
    expect(s.tags).toEqual(["auxo.dev/job=j-3"]);
    // forget waits for other writers' locks when asked to (it needs the exclusive lock).
    await agent.forget(repo, [b.snapshotId], { retryLockMs: 30_000 });
    expect(JSON.parse(restic("snapshots", "--json")).map((x: { id: string }) => x.id)).not.toContain(b.snapshotId);
    chownSync(secret, 0, 0);
    rmSync(secret);
  });

  it("fails as an EngineError when restic writes no snapshot", async () => {
    await expect(engine.backup(repo, [path.join(dir, "no-such-folder")], { host: "h" })).rejects.toMatchObject({ name: "EngineError" });
    await expect(engine.backup({ ...repo, repository: path.join(dir, "nothing-here") }, [data], { host: "h" })).rejects.toMatchObject({
      kind: "RepositoryNotFound",
    });
  });
});
