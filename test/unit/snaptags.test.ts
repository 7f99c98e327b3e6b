// The tag convention of a snapshot copy (policy/snaptags.ts): the job tags every copy reads, the VolumeSnapshot's
// identity read back, and a job id unique per VolumeSnapshot.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { SnapCopyTask } from "../../src/mediaagent/protocol.ts";
import { toCatalogEntry } from "../../src/policy/catalog.ts";
import { copyOf } from "../../src/mediaagent/tasks/snapcopy.ts";
import { snapCopyOf, snapCopyTags, snapJobId } from "../../src/policy/snaptags.ts";

const task = (over: Partial<SnapCopyTask> = {}): SnapCopyTask => ({
  path: "/snapshots/data-pg-0",
  jobId: snapJobId("team-a", "pg-20261122", "6f1c2a9e-0b7d-4c1e-9a55-3d2e8f0c1b42"),
  status: "completed",
  client: "team-a",
  subclient: "data-pg-0",
  snapVault: "pg-vault",
  volumeSnapshot: {
    name: "pg-20261122",
    uid: "6f1c2a9e-0b7d-4c1e-9a55-3d2e8f0c1b42",
    handle: "snap-7f3e",
    creationTime: "2026-11-22T01:00:00Z",
  },
  ...over,
});

describe("snapshot copy tags", () => {
  it("are the job tags of a full of the PVC plus the SnapVault and the VolumeSnapshot", () => {
    expect(snapCopyTags(task())).toEqual([
      "auxo.dev/job=team-a-pg-20261122-6f1c2a9e",
      "auxo.dev/type=full",
      "auxo.dev/status=completed",
      "auxo.dev/client=team-a",
      "auxo.dev/subclient=data-pg-0",
      "auxo.dev/snapvault=pg-vault",
      "auxo.dev/volumesnapshot=pg-20261122",
      "auxo.dev/volumesnapshot-uid=6f1c2a9e-0b7d-4c1e-9a55-3d2e8f0c1b42",
      "auxo.dev/snapshot-handle=snap-7f3e",
    ]);
  });

  it("leave the handle out when it is not known, and carry completedWithErrors for a snap job with missing snaps", () => {
    const vs = { ...task().volumeSnapshot, handle: undefined };
    const tags = snapCopyTags(task({ volumeSnapshot: vs, status: "completedWithErrors" }));
    expect(tags.some((t) => t.startsWith("auxo.dev/snapshot-handle="))).toBe(false);
    expect(tags).toContain("auxo.dev/status=completedWithErrors");
    expect(snapCopyOf(tags)).toEqual({ snapVault: "pg-vault", volumeSnapshot: "pg-20261122", uid: vs.uid });
  });

  it("are read as a catalog job of the PVC by every copy (catalog.ts)", () => {
    const e = toCatalogEntry({
      id: "s1",
      time: "2026-11-22T01:00:00Z",
      hostname: "team-a",
      paths: ["/snapshots/data-pg-0"],
      tags: snapCopyTags(task()),
    });
    expect(e).toMatchObject({
      jobId: "team-a-pg-20261122-6f1c2a9e",
      type: "full",
      status: "completed",
      client: "team-a",
      subclient: "data-pg-0",
      tagged: true,
    });
  });

  it("read back the VolumeSnapshot; snapshots without the uid tag are no snapshot copy", () => {
    expect(snapCopyOf(snapCopyTags(task()))).toEqual({
      snapVault: "pg-vault",
      volumeSnapshot: "pg-20261122",
      uid: "6f1c2a9e-0b7d-4c1e-9a55-3d2e8f0c1b42",
      handle: "snap-7f3e",
    });
    expect(snapCopyOf(["auxo.dev/job=x", "auxo.dev/snapvault=v"])).toBeUndefined();
    expect(snapCopyOf(undefined)).toBeUndefined();
    expect(snapCopyOf(["auxo.dev/volumesnapshot-uid="])).toBeUndefined();
  });

  it("never hold a comma (restic splits --tag values there), and a handle with '=' reads back whole", () => {
    const vs = { name: "a,b", uid: "u-1", handle: "ns=x,y", creationTime: "2026-11-22T01:00:00Z" };
    const tags = snapCopyTags(task({ snapVault: "v,1", volumeSnapshot: vs, jobId: "j,1" }));
    for (const t of tags) expect(t).not.toContain(",");
    expect(snapCopyOf(tags)).toEqual({ snapVault: "v_1", volumeSnapshot: "a_b", uid: "u-1", handle: "ns=x_y" });
  });

  it("round-trip any names and uids without commas", () => {
    const word = fc.stringMatching(/^[a-z0-9][a-z0-9.=-]{0,40}$/);
    fc.assert(
      fc.property(word, word, fc.uuid(), fc.option(word, { nil: undefined }), (sv, name, uid, handle) => {
        const got = snapCopyOf(
          snapCopyTags(task({ snapVault: sv, volumeSnapshot: { name, uid, handle, creationTime: "2026-01-01T00:00:00Z" } })),
        );
        expect(got).toEqual({ snapVault: sv, volumeSnapshot: name, uid, ...(handle ? { handle } : {}) });
      }),
    );
  });
});

describe("snapshot copy job id", () => {
  it("is <namespace>-<name>-<first 8 of uid>: readable and one per VolumeSnapshot", () => {
    expect(snapJobId("team-a", "pg-20261122", "6f1c2a9e-0b7d-4c1e-9a55-3d2e8f0c1b42")).toBe("team-a-pg-20261122-6f1c2a9e");
    // The same name cut again is another VolumeSnapshot (another uid), so another job.
    expect(snapJobId("team-a", "pg", "11111111-aaaa-4000-8000-000000000000")).not.toBe(
      snapJobId("team-a", "pg", "22222222-aaaa-4000-8000-000000000000"),
    );
    expect(snapJobId("n", "a,b", "u")).toBe("n-a_b-u");
  });
});

describe("the copy of a VolumeSnapshot on its destination", () => {
  const vsTask = {
    path: "/snapshots/data",
    jobId: "team-data-1-aaaaaaaa",
    status: "completed" as const,
    client: "team",
    subclient: "data",
    snapVault: "vault",
    volumeSnapshot: { name: "data-1", uid: "aaaaaaaa-1111", handle: "snap-77", creationTime: "2026-06-01T00:00:00Z" },
  };
  const snap = (id: string, t: typeof vsTask) => ({
    id,
    time: t.volumeSnapshot.creationTime,
    hostname: "team",
    paths: [t.path],
    tags: snapCopyTags(t),
  });

  it("is found by the VolumeSnapshot's uid, or by its CSI snapshot handle (imported again after a cluster was rebuilt)", () => {
    const snaps = [snap("s1", vsTask)];
    expect(copyOf(snaps, vsTask.volumeSnapshot)?.id).toBe("s1");
    // The same storage snapshot under a new VolumeSnapshot (another uid): the copy is there, not copied twice.
    expect(copyOf(snaps, { uid: "bbbbbbbb-2222", handle: "snap-77" })?.id).toBe("s1");
    // Another snapshot: not a copy.
    expect(copyOf(snaps, { uid: "bbbbbbbb-2222", handle: "snap-78" })).toBeUndefined();
    expect(copyOf(snaps, { uid: "bbbbbbbb-2222" })).toBeUndefined();
  });
});
