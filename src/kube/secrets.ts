// Secrets, cached only as named. A metadata-only informer watches every Secret the operator may see (names,
// labels, resourceVersions: no data crosses the wire), and drives the controllers' watches as a full informer
// would. The data of a Secret is fetched (GET) only when a controller asks for that Secret by name, and kept
// until its resourceVersion changes, it is deleted, or nothing asked for it for a while. So the operator's memory
// grows with the Secrets that specs name, not with the cluster's, and a compromised operator process holds only
// those credentials.
import type { KubeClient } from "./client.ts";
import { isNotFound } from "./errors.ts";
import type { Informer } from "./informer.ts";
import { type KubeObject, Secrets, keyOf } from "./resources.ts";

export interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

interface Entry {
  uid?: string;
  resourceVersion?: string;
  secret: SecretObject;
  usedAt: number;
}

export interface NamedSecretsOptions {
  /** An entry nothing asked for this long is dropped (default 10 minutes). */
  idleMs?: number;
  now?: () => number;
}

export class NamedSecrets {
  /** The metadata-only informer: watch it for changes, ask it whether a Secret exists. */
  readonly metadata: Informer<KubeObject>;
  private readonly client: KubeClient;
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<SecretObject | undefined>>();
  private readonly idleMs: number;
  private readonly now: () => number;

  constructor(client: KubeClient, metadata: Informer<KubeObject>, opts: NamedSecretsOptions = {}) {
    this.client = client;
    this.metadata = metadata;
    this.idleMs = opts.idleMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
    metadata.on((type, obj) => {
      const key = keyOf(obj.metadata);
      const hit = this.cache.get(key);
      if (hit && (type === "delete" || hit.resourceVersion !== obj.metadata.resourceVersion || hit.uid !== obj.metadata.uid)) {
        this.cache.delete(key);
      }
    });
  }

  /** The Secret with its data, or undefined when it does not exist (as far as the watch knows). */
  async get(namespace: string, name: string): Promise<SecretObject | undefined> {
    this.sweep();
    const key = keyOf({ namespace, name });
    const meta = this.metadata.get(namespace, name);
    if (!meta) {
      this.cache.delete(key);
      return undefined;
    }
    const hit = this.cache.get(key);
    if (hit && hit.resourceVersion === meta.metadata.resourceVersion && hit.uid === meta.metadata.uid) {
      hit.usedAt = this.now();
      return hit.secret;
    }
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetch(namespace, name).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return await p;
  }

  /** The named Secrets of one namespace that exist (missing names are left out). */
  async getMany(namespace: string, names: Iterable<string>): Promise<SecretObject[]> {
    const found = await Promise.all([...new Set(names)].map((n) => this.get(namespace, n)));
    return found.filter((s): s is SecretObject => s !== undefined);
  }

  /** The Secrets whose data is held: for tests and the memory bench. */
  cached(): SecretObject[] {
    return [...this.cache.values()].map((e) => e.secret);
  }

  clear(): void {
    this.cache.clear();
  }

  private async fetch(namespace: string, name: string): Promise<SecretObject | undefined> {
    let secret: SecretObject;
    try {
      secret = await this.client.get<SecretObject>(Secrets, namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    // Keep what readers use; managedFields and the like are no one's business here.
    const kept: SecretObject = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: secret.metadata.name,
        namespace: secret.metadata.namespace,
        uid: secret.metadata.uid,
        resourceVersion: secret.metadata.resourceVersion,
        labels: secret.metadata.labels,
        annotations: secret.metadata.annotations,
        ownerReferences: secret.metadata.ownerReferences,
      },
      type: secret.type,
      data: secret.data ?? {},
    };
    // Cached only while the watch still shows this version (a change that raced the GET drops it at once).
    const meta = this.metadata.get(namespace, name);
    if (meta && meta.metadata.uid === kept.metadata.uid) {
      this.cache.set(keyOf({ namespace, name }), {
        uid: kept.metadata.uid,
        resourceVersion: kept.metadata.resourceVersion,
        secret: kept,
        usedAt: this.now(),
      });
    }
    return kept;
  }

  private sweep(): void {
    const limit = this.now() - this.idleMs;
    for (const [key, e] of this.cache) if (e.usedAt < limit) this.cache.delete(key);
  }
}
