import { describe, expect, it } from "vitest";
import { classify, lastWords } from "../../src/engine/errors.ts";
import { missingOn, tagsFor, toCatalogEntry } from "../../src/policy/catalog.ts";

describe("job metadata tags", () => {
  it("round-trips a job through restic tags", () => {
    const job = { jobId: "job-17", type: "differential", status: "completedWithErrors", client: "db-1", subclient: "pg,main" } as const;
    const tags = tagsFor(job);
    expect(tags).toContain("auxo.dev/subclient=pg_main"); // commas split restic tags
    const e = toCatalogEntry({
      id: "abc",
      time: "2026-11-20T10:00:00Z",
      hostname: "h",
      paths: ["/d"],
      tags,
      summary: { backup_start: "2026-11-20T09:59:00Z", backup_end: "2026-11-20T10:01:00Z", total_bytes_processed: 42 },
    });
    expect(e).toEqual({
      jobId: "job-17",
      snapshotId: "abc",
      originalId: "abc",
      type: "differential",
      status: "completedWithErrors",
      client: "db-1",
      subclient: "pg_main",
      // The snapshot's time is the job's (restic backup --time), its length comes from the summary.
      startTime: "2026-11-20T10:00:00Z",
      endTime: "2026-11-20T10:02:00.000Z",
      bytes: 42,
      tagged: true,
    });
  });

  it("takes a snapshot without Auxo tags as a completed full of its host and paths", () => {
    const e = toCatalogEntry({
      id: "s1",
      time: "2026-11-20T10:00:00Z",
      hostname: "k8up-pod",
      paths: ["/data/b", "/data/a"],
      tags: ["daily"],
    });
    expect(e).toMatchObject({
      jobId: "s1",
      type: "full",
      status: "completed",
      client: "k8up-pod",
      subclient: "/data/a:/data/b",
      tagged: false,
    });
  });

  it("follows copies back to the original snapshot", () => {
    const src = [
      toCatalogEntry({ id: "a", time: "t", hostname: "h", paths: ["/"] }),
      toCatalogEntry({ id: "b", time: "t", hostname: "h", paths: ["/"] }),
    ];
    const copied = toCatalogEntry({ id: "c", time: "t", hostname: "h", paths: ["/"], original: "a" });
    expect(copied.jobId).toBe("a");
    expect(missingOn(src, [copied]).map((e) => e.snapshotId)).toEqual(["b"]);
  });
});

describe("restic error classification", () => {
  it("uses exit codes first, then what restic said", () => {
    expect(classify(12, "", false)).toBe("WrongPassword");
    expect(classify(10, "", false)).toBe("RepositoryNotFound");
    expect(classify(11, "", false)).toBe("LockHeld");
    expect(classify(1, "Fatal: create repository at r failed: config file already exists", false)).toBe("RepositoryExists");
    expect(classify(1, "Load(<data/1234>, 0, 0) returned error: ciphertext verification failed", false)).toBe("CorruptData");
    expect(classify(1, 'Get "http://127.0.0.1:1/b/": dial tcp 127.0.0.1:1: connect: connection refused', false)).toBe("Unreachable");
    expect(classify(null, "", true)).toBe("Unreachable");
    expect(classify(130, "", false)).toBe("Interrupted");
    expect(classify(1, "something new", false)).toBe("Failed");
  });

  it("keeps restic's exit_error message, or the last retry line", () => {
    expect(lastWords('progress\n{"message_type":"exit_error","code":12,"message":"Fatal: wrong password or no key found"}\n')).toBe(
      "Fatal: wrong password or no key found",
    );
    expect(
      lastWords("Stat(<config/>) returned error, retrying after 10s: dial tcp: connection refused\n\x1b[2Ksignal terminated received"),
    ).toContain("connection refused");
  });
});
