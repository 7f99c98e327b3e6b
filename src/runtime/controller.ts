// A controller: watches (its own kind, the objects it owns, related objects) map to keys on a work queue; workers
// take keys and call reconcile, which reads the latest state from the caches. Level-based: what triggered a
// reconcile does not matter, only the current state does.
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Informer } from "../kube/informer.ts";
import { type KubeObject, keyOf, splitKey } from "../kube/resources.ts";
import type { Metrics } from "../observability/metrics.ts";
import { WorkQueue } from "./queue.ts";
import type { OwnWrites } from "./writes.ts";
import { type Result, TerminalError } from "./result.ts";
import { controllerOf } from "./objects.ts";

export interface ReconcileRequest {
  namespace?: string;
  name: string;
  key: string;
}

export interface ReconcileContext {
  log: Logger;
  reconcileId: string;
}

/** What a controller needs of an informer it watches: its kind and its change notifications. */
export interface Watched<T extends KubeObject = KubeObject> {
  readonly resource: Informer<T>["resource"];
  on(handler: (type: "add" | "update" | "delete", obj: T, old?: T) => void): void;
  /** The cached object (informers have it): a reconcile waits while it is older than a status write of ours. */
  get?(namespace: string | undefined, name: string): T | undefined;
}

export type Watch =
  | {
      /** Calls `add` with the keys to reconcile whenever the watched object changes. */
      subscribe(add: (key: string) => void): void;
    }
  | { informer: Watched<KubeObject>; map: (obj: KubeObject) => string[] };

/**
 * A watch of related objects: `map` gives the keys of the objects to reconcile when one of them changes. It is called
 * for the new and the previous version of the object: an object that stops naming another reconciles both.
 */
export function watch<W extends KubeObject>(informer: Watched<W>, map: (obj: W) => string[]): Watch {
  return {
    subscribe: (add) =>
      informer.on((_t, obj, old) => {
        map(obj).forEach(add);
        if (old) map(old).forEach(add);
      }),
  };
}

export interface ControllerOptions<T extends KubeObject = KubeObject> {
  name: string;
  /** The informer of the kind this controller reconciles. */
  forType: Watched<T>;
  /** Informers of objects it owns: a change reconciles the controlling owner, when of the `forType` kind. */
  owns?: Watched<KubeObject>[];
  watches?: Watch[];
  reconcile: (req: ReconcileRequest, ctx: ReconcileContext) => Promise<Result>;
  workers?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** The logger of the reconcile in progress (with its controller, object and reconcile ID), for code it calls. */
const reconcileLog = new AsyncLocalStorage<Logger>();
export const currentReconcileLog = (): Logger | undefined => reconcileLog.getStore();

export class Controller<T extends KubeObject = KubeObject> {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly opts: ControllerOptions<T>;
  private readonly log: Logger;
  private readonly metrics?: Metrics;
  private workers: Promise<void>[] = [];
  private running = false;

  private readonly writes?: OwnWrites;

  constructor(opts: ControllerOptions<T>, log: Logger, metrics?: Metrics, writes?: OwnWrites) {
    this.opts = opts;
    this.writes = writes;
    this.name = opts.name;
    this.log = log.child({ controller: opts.name, controllerKind: opts.forType.resource.kind });
    this.metrics = metrics;
    const labels = { name: opts.name, controller: opts.name };
    this.queue = new WorkQueue({
      baseDelayMs: opts.baseDelayMs,
      maxDelayMs: opts.maxDelayMs,
      metrics: metrics && {
        depth: (n) => metrics.workqueueDepth.set(labels, n),
        add: () => metrics.workqueueAdds.inc(labels),
        retry: () => metrics.workqueueRetries.inc(labels),
        queued: (s) => metrics.workqueueQueueDuration.observe(labels, s),
        worked: (s) => metrics.workqueueWorkDuration.observe(labels, s),
      },
    });
    const kind = opts.forType.resource.kind;
    // Status-only or unchanged updates still enqueue (level-based); the queue folds bursts into one reconcile.
    opts.forType.on((_t, obj) => this.queue.add(keyOf(obj.metadata)));
    for (const inf of opts.owns ?? []) {
      inf.on((_t, obj, old) => {
        for (const o of [obj, old]) {
          const ref = o && controllerOf(o);
          if (ref && ref.kind === kind) this.queue.add(keyOf({ namespace: o.metadata.namespace, name: ref.name }));
        }
      });
    }
    for (const w of opts.watches ?? []) {
      const add = (k: string) => this.queue.add(k);
      if ("subscribe" in w) w.subscribe(add);
      else w.informer.on((_t, obj) => w.map(obj).forEach(add));
    }
  }

  /** Starts the workers (on the leader only; caches run everywhere). */
  start(): void {
    if (this.running) return;
    this.running = true;
    const n = this.opts.workers ?? 1;
    this.metrics?.maxConcurrentReconciles.set({ controller: this.name }, n);
    for (let i = 0; i < n; i++) this.workers.push(this.worker());
  }

  /** Stops taking work and waits for reconciles in progress to finish. */
  async stop(): Promise<void> {
    await this.queue.shutDown(true);
    await Promise.all(this.workers);
    this.running = false;
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.metrics?.activeWorkers.inc({ controller: this.name });
      try {
        await this.reconcileOne(key);
      } finally {
        this.metrics?.activeWorkers.dec({ controller: this.name });
        this.queue.done(key);
      }
    }
  }

  private async reconcileOne(key: string): Promise<void> {
    const req = { ...splitKey(key), key };
    const reconcileId = randomUUID();
    const log = this.log.child({ namespace: req.namespace, name: req.name, reconcileID: reconcileId });
    const started = performance.now();
    const c = { controller: this.name };
    const cached = this.opts.forType.get?.(req.namespace, req.name);
    if (cached && this.writes?.behind(this.opts.forType.resource, cached)) {
      // Our last status write has not reached the cache: deciding now would decide on the status it replaced.
      log.debug({ resourceVersion: cached.metadata.resourceVersion }, "cache behind our status write; waiting for it");
      this.queue.forget(key);
      this.queue.addAfter(key, 200);
      return;
    }
    try {
      const result = await reconcileLog.run(log, () => this.opts.reconcile(req, { log, reconcileId }));
      this.queue.forget(key);
      if (result.requeueAfterMs !== undefined && result.requeueAfterMs > 0) {
        this.metrics?.reconcileTotal.inc({ ...c, result: "requeue_after" });
        this.queue.addAfter(key, result.requeueAfterMs);
      } else {
        this.metrics?.reconcileTotal.inc({ ...c, result: "success" });
      }
    } catch (err) {
      this.metrics?.reconcileTotal.inc({ ...c, result: "error" });
      this.metrics?.reconcileErrors.inc(c);
      const message = err instanceof Error ? err.message : String(err);
      // The cause says why (a refused request under a failed step): logged beside the message, never a stack of secrets.
      const cause =
        err instanceof Error && err.cause !== undefined ? (err.cause instanceof Error ? err.cause.message : String(err.cause)) : undefined;
      if (err instanceof TerminalError) {
        this.metrics?.terminalReconcileErrors.inc(c);
        this.queue.forget(key);
        log.error({ err: message, cause }, "reconciler error (terminal, not retried)");
      } else {
        const retries = this.queue.numRequeues(key);
        this.queue.addRateLimited(key);
        log.error({ err: message, cause, retries: retries + 1 }, "reconciler error; retrying with backoff");
      }
    } finally {
      this.metrics?.reconcileTime.observe(c, (performance.now() - started) / 1000);
    }
  }
}
