// Kubernetes events, as `kubectl describe` shows them. Repeats of the same event on the same object are folded
// into one Event whose count grows (client-go's correlator), and each object has a token bucket so that a hot
// loop cannot flood etcd (client-go's spam filter: burst 25, one more every 5 minutes).
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { KubeClient } from "./client.ts";
import { isNotFound } from "./errors.ts";
import { Events, type KubeObject, defined, formatTime } from "./resources.ts";

export type EventType = "Normal" | "Warning";

export interface EventRecorderOptions {
  component: string;
  instance?: string;
  burst?: number;
  refillEveryMs?: number;
  now?: () => number;
}

interface Folded {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: string;
}

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly opts: Required<Omit<EventRecorderOptions, "instance">> & { instance?: string };
  private readonly log?: Logger;
  private readonly folded = new Map<string, Folded>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private pending = new Set<Promise<void>>();
  dropped = 0;

  constructor(client: KubeClient, opts: EventRecorderOptions, log?: Logger) {
    this.client = client;
    this.opts = { burst: 25, refillEveryMs: 5 * 60_000, now: Date.now, ...(defined(opts) as EventRecorderOptions) };
    this.log = log;
  }

  /** Records an event; never throws and never blocks the caller. Messages must not contain secrets. */
  event(obj: KubeObject, type: EventType, reason: string, message: string): void {
    const p = this.record(obj, type, reason, message).catch((err) => {
      this.log?.warn({ err: err instanceof Error ? err.message : String(err), reason }, "could not record event");
    });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Waits for events in flight (graceful shutdown, tests). */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  private allow(uid: string): boolean {
    const now = this.opts.now();
    const b = this.buckets.get(uid) ?? { tokens: this.opts.burst, at: now };
    const refill = Math.floor((now - b.at) / this.opts.refillEveryMs);
    if (refill > 0) {
      b.tokens = Math.min(this.opts.burst, b.tokens + refill);
      b.at += refill * this.opts.refillEveryMs;
    }
    if (b.tokens <= 0) {
      this.buckets.set(uid, b);
      return false;
    }
    b.tokens--;
    this.buckets.set(uid, b);
    if (this.buckets.size > 10_000) this.buckets.delete(this.buckets.keys().next().value as string);
    return true;
  }

  private async record(obj: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = obj.metadata.namespace ?? "default";
    const uid = obj.metadata.uid ?? `${namespace}/${obj.metadata.name}`;
    if (!this.allow(uid)) {
      this.dropped++;
      return;
    }
    const now = formatTime(this.opts.now());
    const key = `${uid}\u0000${type}\u0000${reason}\u0000${message}`;
    const prior = this.folded.get(key);
    if (prior) {
      prior.count++;
      try {
        await this.client.mergePatch(Events, prior.namespace, prior.name, { count: prior.count, lastTimestamp: now });
        return;
      } catch (err) {
        if (!isNotFound(err)) throw err;
        this.folded.delete(key); // expired (events have a TTL): start a new one
      }
    }
    const hash = createHash("sha256").update(key).digest("hex").slice(0, 10);
    const name = `${obj.metadata.name}.${hash}${Date.now().toString(36)}`;
    await this.client.create(Events, {
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        namespace: obj.metadata.namespace,
        name: obj.metadata.name,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: this.opts.component },
      reportingComponent: this.opts.component,
      reportingInstance: this.opts.instance ?? "",
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
    this.folded.set(key, { name, namespace, count: 1, firstTimestamp: now });
    if (this.folded.size > 4096) this.folded.delete(this.folded.keys().next().value as string);
  }
}
