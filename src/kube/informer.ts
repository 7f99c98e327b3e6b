// A resilient list/watch loop with a cache and indexes, in the manner of client-go's reflector and informer:
// list (paged) → watch from the list's resourceVersion with bookmarks and a jittered server timeout → relist on
// 410 → reconnect with jittered exponential backoff on errors. A watchdog aborts a watch that has gone silent
// (a half-open connection would otherwise stall it for good). Handlers run synchronously, never break the loop,
// and see objects exactly as the server sent them (timestamps stay strings).
import type { Logger } from "pino";
import { ApiError, isGone, isTooManyRequests } from "./errors.ts";
import type { KubeClient } from "./client.ts";
import { type KubeObject, type ResourceType, apiVersionOf, defined, keyOf } from "./resources.ts";

export type InformerEventType = "add" | "update" | "delete";
export type InformerHandler<T> = (type: InformerEventType, obj: T, old?: T) => void;
export type Indexer<T> = (obj: T) => string[];

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Cache metadata only (PartialObjectMetadata): the server sends no other field, so a Secret's data never
   * crosses the wire. Events still fire on every change (each write changes the resourceVersion).
   */
  metadataOnly?: boolean;
  /** Server-side watch timeout is picked at random in [min, 2×min] seconds, as client-go does. */
  minWatchTimeoutSeconds?: number;
  /** Abort a watch that delivered nothing (not even a bookmark) for this long. */
  stallTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

export interface InformerStats {
  lists: number;
  relistsAfterExpiry: number;
  watches: number;
  watchErrors: number;
  stalls: number;
}

const METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
const METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

export class Informer<T extends KubeObject = KubeObject> {
  readonly resource: ResourceType;
  readonly stats: InformerStats = { lists: 0, relistsAfterExpiry: 0, watches: 0, watchErrors: 0, stalls: 0 };
  private readonly client: KubeClient;
  private readonly opts: Required<Pick<InformerOptions, "minWatchTimeoutSeconds" | "stallTimeoutMs" | "backoffBaseMs" | "backoffMaxMs">> &
    InformerOptions;
  private readonly log?: Logger;
  private readonly store = new Map<string, T>();
  private readonly indexers = new Map<string, Indexer<T>>();
  private readonly indexes = new Map<string, Map<string, Set<string>>>();
  private readonly handlers: InformerHandler<T>[] = [];
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private stopped = true;
  private abort?: AbortController;
  private loop?: Promise<void>;
  private wake?: () => void;
  lastEventAt = 0;
  resourceVersion = "";

  constructor(client: KubeClient, resource: ResourceType, opts: InformerOptions = {}, log?: Logger) {
    this.client = client;
    this.resource = resource;
    this.opts = { minWatchTimeoutSeconds: 300, stallTimeoutMs: 5 * 60_000, backoffBaseMs: 500, backoffMaxMs: 30_000, ...defined(opts) };
    this.log = log?.child({ informer: resource.plural });
  }

  addIndexer(name: string, fn: Indexer<T>): void {
    this.indexers.set(name, fn);
    const idx = new Map<string, Set<string>>();
    this.indexes.set(name, idx);
    for (const [key, obj] of this.store) for (const v of fn(obj)) this.indexAdd(idx, v, key);
  }

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
    // A handler added late still learns what the cache already holds.
    for (const obj of this.store.values()) this.call(handler, "add", obj);
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(keyOf({ namespace, name }));
  }

  getByKey(key: string): T | undefined {
    return this.store.get(key);
  }

  list(namespace?: string): T[] {
    const all = [...this.store.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  byIndex(name: string, value: string): T[] {
    const keys = this.indexes.get(name)?.get(value);
    if (!keys) return [];
    return [...keys].map((k) => this.store.get(k)).filter((o): o is T => o !== undefined);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    await this.loop;
  }

  // ------------------------------------------------------------------ the loop

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private backoff(attempt: number, retryAfterSeconds?: number): number {
    if (retryAfterSeconds !== undefined) return retryAfterSeconds * 1000;
    const ceiling = Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2); // jitter: half fixed, half random
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        const started = Date.now();
        const outcome = await this.watchOnce();
        if (outcome === "expired") {
          this.stats.relistsAfterExpiry++;
          this.log?.info({ resourceVersion: this.resourceVersion }, "watch resourceVersion expired (410); relisting");
          this.resourceVersion = "";
          failures = 0;
          continue;
        }
        // A watch that ends at once again and again must not become a hot loop.
        if (Date.now() - started < 1000) {
          failures++;
          await this.sleep(this.backoff(failures));
        } else {
          failures = 0;
        }
      } catch (err) {
        if (this.stopped) break;
        if (isGone(err)) {
          this.stats.relistsAfterExpiry++;
          this.resourceVersion = "";
          continue;
        }
        this.stats.watchErrors++;
        failures++;
        if (err instanceof ApiError && err.code === 404 && !this.synced) {
          this.log?.error(
            `${this.resource.plural}.${this.resource.group || "core"} is not served by the API server: is its CRD installed?`,
          );
        }
        const delay = this.backoff(failures, isTooManyRequests(err) ? (err as ApiError).retryAfterSeconds : undefined);
        this.log?.warn(
          { err: err instanceof Error ? err.message : String(err), retryInMs: Math.round(delay) },
          "list/watch failed; retrying",
        );
        await this.sleep(delay);
      }
    }
  }

  private async relist(): Promise<void> {
    const { items, resourceVersion } = await this.client.list<T>(this.resource, {
      namespace: this.opts.namespace,
      labelSelector: this.opts.labelSelector,
      fieldSelector: this.opts.fieldSelector,
      accept: this.opts.metadataOnly ? METADATA_LIST : undefined,
    });
    this.stats.lists++;
    const seen = new Set<string>();
    for (const obj of items) {
      const key = keyOf(obj.metadata);
      seen.add(key);
      this.upsert(key, obj);
    }
    for (const [key, old] of [...this.store]) {
      if (!seen.has(key)) this.remove(key, old);
    }
    this.resourceVersion = resourceVersion;
    this.lastEventAt = Date.now();
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  /** One watch request; resolves "ended" when the server closes it normally, "expired" on 410. */
  private async watchOnce(): Promise<"ended" | "expired"> {
    const min = this.opts.minWatchTimeoutSeconds;
    const timeoutSeconds = Math.floor(min + Math.random() * min);
    const abort = new AbortController();
    this.abort = abort;
    this.stats.watches++;
    // Client-side limits: the whole request may not outlive the server timeout by much, and silence is a stall.
    const hardTimer = setTimeout(() => abort.abort(new Error("watch outlived its server timeout")), (timeoutSeconds + 30) * 1000);
    let stallTimer: NodeJS.Timeout | undefined;
    const armStall = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => {
        this.stats.stalls++;
        this.log?.warn({ silentForMs: this.opts.stallTimeoutMs }, "watch went silent; reconnecting");
        abort.abort(new Error("watch stalled"));
      }, this.opts.stallTimeoutMs);
    };
    armStall();
    try {
      const res = await this.client.raw("GET", this.client.path(this.resource, this.opts.namespace), {
        query: {
          watch: true,
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
          labelSelector: this.opts.labelSelector,
          fieldSelector: this.opts.fieldSelector,
        },
        accept: this.opts.metadataOnly ? METADATA_WATCH : undefined,
        signal: abort.signal,
      });
      if (res.status !== 200) {
        const text = await res.text();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        throw new ApiError("WATCH", this.resource.plural, res.status, body, res.headers.get("retry-after"));
      }
      if (!res.body) return "ended";
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of res.body) {
        armStall();
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        let nl = buf.indexOf("\n");
        while (nl >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          nl = buf.indexOf("\n");
          if (!line) continue;
          const ev = JSON.parse(line) as { type: string; object: T & { code?: number; reason?: string; message?: string } };
          this.lastEventAt = Date.now();
          if (ev.type === "ERROR") {
            if (ev.object.code === 410 || ev.object.reason === "Expired" || ev.object.reason === "Gone") return "expired";
            throw new ApiError("WATCH", this.resource.plural, ev.object.code ?? 500, ev.object);
          }
          const rv = ev.object.metadata?.resourceVersion;
          if (rv) this.resourceVersion = rv;
          if (ev.type === "BOOKMARK") continue;
          const obj = { apiVersion: apiVersionOf(this.resource), kind: this.resource.kind, ...ev.object } as T;
          const key = keyOf(obj.metadata);
          if (ev.type === "DELETED") {
            const old = this.store.get(key);
            this.remove(key, old ?? obj, obj);
          } else {
            this.upsert(key, obj);
          }
        }
      }
      return "ended";
    } catch (err) {
      if (this.stopped) return "ended";
      if (abort.signal.aborted) return "ended"; // stall or hard timeout: reconnect from the last resourceVersion
      throw err;
    } finally {
      clearTimeout(hardTimer);
      clearTimeout(stallTimer);
    }
  }

  // ------------------------------------------------------------------ store and indexes

  private indexAdd(idx: Map<string, Set<string>>, value: string, key: string): void {
    let set = idx.get(value);
    if (!set) idx.set(value, (set = new Set()));
    set.add(key);
  }

  private reindex(key: string, old: T | undefined, obj: T | undefined): void {
    for (const [name, fn] of this.indexers) {
      const idx = this.indexes.get(name) as Map<string, Set<string>>;
      if (old) {
        for (const v of fn(old)) {
          idx.get(v)?.delete(key);
          if (idx.get(v)?.size === 0) idx.delete(v);
        }
      }
      if (obj) for (const v of fn(obj)) this.indexAdd(idx, v, key);
    }
  }

  private upsert(key: string, obj: T): void {
    const old = this.store.get(key);
    // The same resourceVersion is the same object: a relist must not look like a change.
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion && old.metadata.uid === obj.metadata.uid) return;
    this.store.set(key, obj);
    this.reindex(key, old, obj);
    this.emit(old ? "update" : "add", obj, old);
  }

  private remove(key: string, old: T, final?: T): void {
    if (!this.store.has(key)) return;
    this.store.delete(key);
    this.reindex(key, old, undefined);
    this.emit("delete", final ?? old, old);
  }

  private emit(type: InformerEventType, obj: T, old?: T): void {
    for (const h of this.handlers) this.call(h, type, obj, old);
  }

  private call(h: InformerHandler<T>, type: InformerEventType, obj: T, old?: T): void {
    try {
      h(type, obj, old);
    } catch (err) {
      this.log?.error({ err: err instanceof Error ? err.message : String(err) }, "informer handler threw");
    }
  }
}
