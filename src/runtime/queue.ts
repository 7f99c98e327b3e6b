// A de-duplicating, rate-limited work queue with client-go's semantics: an item is queued at most once; an item
// added while it is being processed is queued again once, after done(); failures back off per item exponentially
// (base × 2^failures, capped) and forget() resets that; addAfter() schedules a delayed add.
import { defined } from "../kube/resources.ts";

export interface QueueMetrics {
  depth(n: number): void;
  add(): void;
  retry(): void;
  queued(seconds: number): void;
  worked(seconds: number): void;
}

export interface QueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  metrics?: QueueMetrics;
  now?: () => number;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly addedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly drained: (() => void)[] = [];
  private shuttingDown = false;
  private readonly opts: Required<Omit<QueueOptions, "metrics">> & Pick<QueueOptions, "metrics">;

  constructor(opts: QueueOptions = {}) {
    this.opts = { baseDelayMs: 1000, maxDelayMs: 5 * 60_000, now: () => performance.now(), ...defined(opts) };
  }

  get length(): number {
    return this.queue.length;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.opts.metrics?.add();
    this.dirty.add(key);
    if (this.processing.has(key)) return; // re-queued by done()
    this.push(key);
  }

  private push(key: string): void {
    this.addedAt.set(key, this.opts.now());
    const waiter = this.waiters.shift();
    if (waiter) {
      this.take(key);
      waiter(key);
      return;
    }
    this.queue.push(key);
    this.opts.metrics?.depth(this.queue.length);
  }

  private take(key: string): void {
    this.dirty.delete(key);
    this.processing.add(key);
    const now = this.opts.now();
    this.opts.metrics?.queued((now - (this.addedAt.get(key) ?? now)) / 1000);
    this.addedAt.delete(key);
    this.startedAt.set(key, now);
  }

  /** Adds after `delayMs`; an earlier pending delayed add of the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    // setTimeout fires at once for a delay beyond 2^31-1 ms (24.8 days): a far deadline wakes the key after a day
    // instead, and the reconcile then computes the rest (level-based, so an early wake is harmless).
    delayMs = Math.min(delayMs, 86_400_000);
    const at = this.opts.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    this.timers.set(key, { at, timer });
  }

  /** The delay the next failure of `key` earns (and counts the failure). */
  nextBackoffMs(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** n);
  }

  addRateLimited(key: string): void {
    this.opts.metrics?.retry();
    this.addAfter(key, this.nextBackoffMs(key));
  }

  /** Resets the failure count of `key` (after a success). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key to process, or undefined once the queue shuts down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.opts.metrics?.depth(this.queue.length);
      this.take(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    const started = this.startedAt.get(key);
    if (started !== undefined) this.opts.metrics?.worked((this.opts.now() - started) / 1000);
    this.startedAt.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
    else this.dirty.delete(key);
    if (this.processing.size === 0) for (const d of this.drained.splice(0)) d();
  }

  /** Stops handing out work; resolves when the items being processed are done (or at once with drain=false). */
  async shutDown(drain = true): Promise<void> {
    this.shuttingDown = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
    if (drain && this.processing.size > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
  }
}
