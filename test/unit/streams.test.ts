// The stream allocator: the job's cap and every library's maxStreams, and the queue order of waiting jobs.
import { describe, expect, it } from "vitest";
import { allocateStream, queuePosition } from "../../src/policy/streams.ts";

describe("stream allocation", () => {
  it("grants a stream while the job and every library it touches have one free", () => {
    expect(allocateStream({ jobInUse: 5, libraries: [{ name: "disk", maxStreams: 10, inUse: 9 }] })).toEqual({ ok: true });
    expect(allocateStream({ jobStreams: 2, jobInUse: 2, libraries: [] })).toEqual({
      ok: false,
      message: "all 2 streams of this job are in use",
    });
    expect(
      allocateStream({
        jobInUse: 0,
        libraries: [
          { name: "disk", maxStreams: 10, inUse: 1 },
          { name: "s3", maxStreams: 2, inUse: 2 },
        ],
      }),
    ).toEqual({ ok: false, message: 'library "s3" has no free stream (2 of 2 in use)' });
  });

  it("queues waiting jobs by creation time, then name", () => {
    const waiting = [
      { createdAt: "2026-01-01T00:00:00Z", name: "b" },
      { createdAt: "2026-01-01T00:00:00Z", name: "a" },
      { createdAt: "2026-01-02T00:00:00Z", name: "z" },
    ];
    expect(queuePosition({ createdAt: "2026-01-01T00:00:00Z", name: "aa" }, waiting)).toBe(2);
    expect(queuePosition({ createdAt: "2025-12-31T00:00:00Z", name: "x" }, waiting)).toBe(1);
    expect(queuePosition({ createdAt: "2026-01-03T00:00:00Z", name: "x" }, waiting)).toBe(4);
  });
});
