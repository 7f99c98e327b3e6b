// The work queue's client-go semantics, with fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { WorkQueue } from "../../src/runtime/queue.ts";

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe("WorkQueue", () => {
  it("holds a key once however often it is added", async () => {
    const q = new WorkQueue();
    for (let i = 0; i < 1000; i++) q.add("ns/a");
    q.add("ns/b");
    expect(q.length).toBe(2);
    expect(await q.get()).toBe("ns/a");
    expect(await q.get()).toBe("ns/b");
    expect(q.length).toBe(0);
  });

  it("re-queues a key added while it is processed once, after done()", async () => {
    const q = new WorkQueue();
    q.add("k");
    const k = await q.get();
    q.add("k");
    q.add("k");
    expect(q.length).toBe(0); // not handed to a second worker while the first holds it
    q.done(k as string);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe("k");
    q.done("k");
    expect(q.length).toBe(0);
  });

  it("backs off per item exponentially up to the cap, and forget() resets", () => {
    const q = new WorkQueue({ baseDelayMs: 1000, maxDelayMs: 10_000 });
    const delays = Array.from({ length: 6 }, () => q.nextBackoffMs("k"));
    expect(delays).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect(q.nextBackoffMs("other")).toBe(1000);
    q.forget("k");
    expect(q.nextBackoffMs("k")).toBe(1000);
  });

  it("adds a rate-limited key only after its delay", async () => {
    const q = new WorkQueue({ baseDelayMs: 500 });
    q.addRateLimited("k");
    expect(q.length).toBe(0);
    vi.advanceTimersByTime(499);
    expect(q.length).toBe(0);
    vi.advanceTimersByTime(1);
    expect(q.length).toBe(1);
    expect(q.numRequeues("k")).toBe(1);
  });

  it("keeps the earliest of several delayed adds", () => {
    const q = new WorkQueue();
    q.addAfter("k", 5000);
    q.addAfter("k", 1000);
    q.addAfter("k", 3000);
    vi.advanceTimersByTime(1000);
    expect(q.length).toBe(1);
  });

  it("wakes a key with a far deadline after a day, not at once (setTimeout overflows past 24.8 days)", () => {
    const q = new WorkQueue();
    q.addAfter("k", 40 * 86_400_000);
    vi.advanceTimersByTime(1000);
    expect(q.length).toBe(0);
    vi.advanceTimersByTime(86_400_000);
    expect(q.length).toBe(1);
  });

  it("hands a waiting worker the next key, and undefined after shutdown", async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.add("k");
    expect(await waiting).toBe("k");
    const idle = q.get();
    const stopped = q.shutDown(true); // waits for "k", still being processed
    expect(await idle).toBeUndefined();
    let drained = false;
    void stopped.then(() => (drained = true));
    await Promise.resolve();
    expect(drained).toBe(false);
    q.done("k");
    await stopped;
    expect(drained).toBe(true);
    q.add("late");
    expect(q.length).toBe(0);
  });
});
