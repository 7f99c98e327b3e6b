// The typed client: the only code that talks to the API server (with the informer built on it). It uses
// client-node for configuration and authentication (kubeconfig, in-cluster tokens that rotate, exec plugins) and
// undici for the requests themselves, with one connection pool for the process.
import { type KubeConfig, RequestContext } from "@kubernetes/client-node";
import { Agent, fetch, type Response } from "undici";
import { ApiError, isConflict, isNotFound } from "./errors.ts";
import { type KubeObject, type ResourceType, apiVersionOf } from "./resources.ts";

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size; the client follows `continue` until the list is complete. */
  limit?: number;
  /** Accept header (e.g. a PartialObjectMetadataList: the server then sends metadata only). */
  accept?: string;
}

export interface RequestObserver {
  /** Called once per finished request (code 0 when there was no HTTP answer). */
  (method: string, code: number, seconds: number): void;
}

export interface ClientOptions {
  userAgent?: string;
  requestTimeoutMs?: number;
  observe?: RequestObserver;
}

type Query = Record<string, string | number | boolean | undefined>;

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  readonly server: string;
  private readonly opts: ClientOptions;
  private dispatcher?: Agent;

  constructor(kc: KubeConfig, opts: ClientOptions = {}) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    this.kubeConfig = kc;
    this.server = cluster.server.replace(/\/$/, "");
    this.opts = opts;
  }

  close(): void {
    void this.dispatcher?.close();
  }

  /** The URL path of a collection, an object or its subresource. */
  path(r: ResourceType, namespace?: string, name?: string, subresource?: string): string {
    let p = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
    if (r.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
    p += `/${r.plural}`;
    if (name) p += `/${encodeURIComponent(name)}`;
    if (subresource) p += `/${subresource}`;
    return p;
  }

  /** Auth headers and TLS for one request; the connection pool is made once from the first call's TLS material. */
  private async prepare(url: string, method: string): Promise<{ headers: Record<string, string>; dispatcher?: Agent }> {
    const ctx = new RequestContext(url, method as "GET");
    const https: { ca?: unknown; cert?: unknown; key?: unknown; headers?: Record<string, string>; rejectUnauthorized?: boolean } = {};
    await this.kubeConfig.applyToHTTPSOptions(https as never);
    if (!this.dispatcher && url.startsWith("https:")) {
      this.dispatcher = new Agent({
        connect: {
          ca: https.ca as string | undefined,
          cert: https.cert as string | undefined,
          key: https.key as string | undefined,
          rejectUnauthorized: https.rejectUnauthorized,
        },
        keepAliveTimeout: 30_000,
        connections: 32,
      });
    }
    const headers: Record<string, string> = { ...ctx.getHeaders(), ...https.headers, Accept: "application/json" };
    if (this.opts.userAgent) headers["User-Agent"] = this.opts.userAgent;
    return { headers, dispatcher: this.dispatcher };
  }

  private url(path: string, query?: Query): string {
    const u = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== "") u.searchParams.set(k, String(v));
    return u.toString();
  }

  /** Starts a request and returns the raw response (status not checked): the watch uses it to stream. */
  async raw(
    method: string,
    path: string,
    init: { query?: Query; body?: unknown; contentType?: string; accept?: string; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const url = this.url(path, init.query);
    const { headers, dispatcher } = await this.prepare(url, method);
    if (init.accept) headers.Accept = init.accept;
    let body: string | undefined;
    if (init.body !== undefined) {
      body = typeof init.body === "string" ? init.body : JSON.stringify(init.body);
      headers["Content-Type"] = init.contentType ?? "application/json";
    }
    return await fetch(url, { method, headers, body, dispatcher, signal: init.signal });
  }

  async request<T>(
    method: string,
    path: string,
    init: { query?: Query; body?: unknown; contentType?: string; accept?: string; timeoutMs?: number } = {},
  ): Promise<T> {
    const started = performance.now();
    let code = 0;
    try {
      const res = await this.raw(method, path, {
        ...init,
        signal: AbortSignal.timeout(init.timeoutMs ?? this.opts.requestTimeoutMs ?? 30_000),
      });
      code = res.status;
      const text = await res.text();
      let parsed: unknown = text;
      if (text && (res.headers.get("content-type") ?? "").includes("json")) parsed = JSON.parse(text);
      if (res.status < 200 || res.status >= 300) throw new ApiError(method, path, res.status, parsed, res.headers.get("retry-after"));
      return parsed as T;
    } finally {
      this.opts.observe?.(method, code, (performance.now() - started) / 1000);
    }
  }

  async get<T extends KubeObject>(r: ResourceType, namespace: string | undefined, name: string): Promise<T> {
    return await this.request<T>("GET", this.path(r, namespace, name));
  }

  /** Lists everything that matches, page by page; returns the list's resourceVersion for a following watch. */
  async list<T extends KubeObject>(r: ResourceType, opts: ListOptions = {}): Promise<ListResult<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion: string;
    do {
      const page = await this.request<{ items: T[]; metadata: { resourceVersion: string; continue?: string } }>(
        "GET",
        this.path(r, opts.namespace),
        {
          query: { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector, limit: opts.limit ?? 500, continue: cont },
          accept: opts.accept,
        },
      );
      // List items carry no apiVersion/kind; add them so cached objects are complete. An empty
      // PartialObjectMetadataList comes with `items: null`.
      for (const it of page.items ?? []) items.push({ apiVersion: apiVersionOf(r), kind: r.kind, ...it });
      resourceVersion = page.metadata.resourceVersion;
      cont = page.metadata.continue || undefined;
    } while (cont);
    return { items, resourceVersion };
  }

  async create<T extends KubeObject>(r: ResourceType, obj: T): Promise<T> {
    return await this.request<T>("POST", this.path(r, obj.metadata.namespace), {
      body: { apiVersion: apiVersionOf(r), kind: r.kind, ...obj },
    });
  }

  /** PUT with the object's resourceVersion: optimistic concurrency, 409 when someone else wrote first. */
  async update<T extends KubeObject>(r: ResourceType, obj: T): Promise<T> {
    return await this.request<T>("PUT", this.path(r, obj.metadata.namespace, obj.metadata.name), { body: obj });
  }

  /** Server-side apply with a named field manager (force: the operator owns the fields it applies). */
  async apply<T extends KubeObject>(r: ResourceType, obj: T, fieldManager: string, subresource?: string): Promise<T> {
    return await this.request<T>("PATCH", this.path(r, obj.metadata.namespace, obj.metadata.name, subresource), {
      query: { fieldManager, force: true },
      body: { apiVersion: apiVersionOf(r), kind: r.kind, ...obj },
      contentType: "application/apply-patch+yaml",
    });
  }

  /** Server-side apply of the status subresource; send the complete status this manager owns. */
  async applyStatus<T extends KubeObject>(r: ResourceType, obj: T, fieldManager: string): Promise<T> {
    return await this.apply(r, obj, fieldManager, "status");
  }

  async mergePatch<T extends KubeObject>(
    r: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    subresource?: string,
  ): Promise<T> {
    return await this.request<T>("PATCH", this.path(r, namespace, name, subresource), {
      body: patch,
      contentType: "application/merge-patch+json",
    });
  }

  /** Deletes; with `uid`, only that incarnation of the object (a precondition). */
  async delete(
    r: ResourceType,
    namespace: string | undefined,
    name: string,
    opts: { uid?: string; propagationPolicy?: string } = {},
  ): Promise<void> {
    await this.request("DELETE", this.path(r, namespace, name), {
      body: {
        apiVersion: "v1",
        kind: "DeleteOptions",
        propagationPolicy: opts.propagationPolicy,
        preconditions: opts.uid ? { uid: opts.uid } : undefined,
      },
    });
  }

  /**
   * Creates the object unless one of its name exists (409): for objects with deterministic names, where a second
   * create after a stale cache or a restart is the same decision. True when this call created it.
   */
  async createIfAbsent<T extends KubeObject>(r: ResourceType, obj: T): Promise<boolean> {
    try {
      await this.create(r, obj);
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  /** Deletes the object unless it is gone already (404). True when this call deleted it. */
  async deleteIfExists(
    r: ResourceType,
    namespace: string | undefined,
    name: string,
    opts: { uid?: string; propagationPolicy?: string } = {},
  ): Promise<boolean> {
    try {
      await this.delete(r, namespace, name, opts);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** The last lines a pod's container wrote (the kubelet's log, through the API server). */
  async podLog(namespace: string, name: string, tailLines = 20): Promise<string> {
    return await this.request<string>("GET", `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}/log`, {
      query: { tailLines },
      timeoutMs: 10_000,
    });
  }

  /** A pod's whole log (kubectl auxo reads a listing pod's lines). */
  async podLogAll(namespace: string, name: string, timeoutMs = 120_000): Promise<string> {
    return await this.request<string>("GET", `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}/log`, {
      timeoutMs,
    });
  }

  /** Whether the API server serves a group version (`/apis/<group>/<version>`): a CRD-backed API may be absent. */
  async serves(groupVersionPath: string): Promise<boolean> {
    try {
      await this.request("GET", groupVersionPath);
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return false;
      throw err;
    }
  }

  /** GET /version: proves reachability and credentials. */
  async version(): Promise<string> {
    return (await this.request<{ gitVersion: string }>("GET", "/version")).gitVersion;
  }
}
