// A small JSON client for the Kubernetes API, used by the test harness and the local node runner. The operator
// itself talks to the API server through src/kube; the harness keeps its own client so that it can prove that
// code instead of sharing its bugs.

import { readFileSync } from "node:fs";
import https from "node:https";
import * as yaml from "js-yaml";

export interface KubeCredentials {
  server: string; // https://127.0.0.1:port
  ca: string; // PEM
  cert?: string; // PEM
  key?: string; // PEM
  token?: string;
}

export class KubeError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly body: unknown;
  constructor(method: string, path: string, status: number, body: unknown) {
    const b = body as { message?: string; reason?: string } | undefined;
    super(`${method} ${path}: ${status} ${b?.reason ?? ""} ${b?.message ?? ""}`.trim());
    this.status = status;
    this.reason = b?.reason ?? "";
    this.body = body;
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof KubeError && err.status === 404;
export const isConflict = (err: unknown): boolean => err instanceof KubeError && err.status === 409;

// Kubernetes objects are read loosely in the harness.
export type Obj = Record<string, any>;

export type PatchType = "merge" | "strategic" | "json" | "apply";
const patchContentType: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  json: "application/json-patch+json",
  apply: "application/apply-patch+yaml",
};

export interface WatchHandle {
  stop(): void;
  /** Resolves when the server ends the stream or it fails. */
  done: Promise<void>;
}

export class KubeRest {
  readonly creds: KubeCredentials;
  private readonly agent: https.Agent;

  constructor(creds: KubeCredentials) {
    this.creds = creds;
    this.agent = new https.Agent({ ca: creds.ca, cert: creds.cert, key: creds.key, keepAlive: true, maxSockets: 16 });
  }

  static fromKubeconfig(file: string): KubeRest {
    const cfg = yaml.load(readFileSync(file, "utf8")) as Obj;
    const ctx = cfg.contexts.find((c: Obj) => c.name === cfg["current-context"]).context;
    const cluster = cfg.clusters.find((c: Obj) => c.name === ctx.cluster).cluster;
    const user = cfg.users.find((u: Obj) => u.name === ctx.user).user;
    const b64 = (s: string | undefined) => (s ? Buffer.from(s, "base64").toString("utf8") : undefined);
    return new KubeRest({
      server: cluster.server,
      ca: b64(cluster["certificate-authority-data"]) ?? "",
      cert: b64(user["client-certificate-data"]),
      key: b64(user["client-key-data"]),
      token: user.token,
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private headers(contentType?: string, payload?: string): Record<string, string> {
    const h: Record<string, string> = { Accept: "application/json" };
    if (contentType) h["Content-Type"] = contentType;
    // Node sends DELETE bodies without Content-Length or chunking, which corrupts the next request on a kept-alive
    // connection; an explicit length is always right.
    if (payload !== undefined) h["Content-Length"] = String(Buffer.byteLength(payload));
    if (this.creds.token) h.Authorization = `Bearer ${this.creds.token}`;
    return h;
  }

  /** One request; resolves with the parsed JSON body, rejects with KubeError on a non-2xx status. */
  async request<T = Obj>(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<T> {
    const url = new URL(path, this.creds.server);
    const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    return await new Promise<T>((resolve, reject) => {
      const req = https.request(
        url,
        { method, agent: this.agent, headers: this.headers(payload ? contentType : undefined, payload), timeout: 30_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown = text;
            // Only JSON answers are parsed: logs, /healthz and /metrics stay strings, even when a line looks like JSON.
            if ((res.headers["content-type"] ?? "").includes("json")) {
              try {
                parsed = text ? JSON.parse(text) : undefined;
              } catch {
                parsed = text;
              }
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(parsed as T);
            else reject(new KubeError(method, url.pathname, status, parsed));
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${url.pathname}: timed out`)));
      req.on("error", reject);
      req.end(payload);
    });
  }

  get<T = Obj>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  create<T = Obj>(path: string, obj: unknown): Promise<T> {
    return this.request<T>("POST", path, obj);
  }

  put<T = Obj>(path: string, obj: unknown): Promise<T> {
    return this.request<T>("PUT", path, obj);
  }

  patch<T = Obj>(path: string, patch: unknown, type: PatchType = "merge", fieldManager?: string): Promise<T> {
    const q = type === "apply" ? `?fieldManager=${encodeURIComponent(fieldManager ?? "auxo-harness")}&force=true` : "";
    return this.request<T>("PATCH", path + q, patch, patchContentType[type]);
  }

  delete<T = Obj>(path: string, options?: Obj): Promise<T> {
    return this.request<T>("DELETE", path, options);
  }

  /** Deletes and ignores NotFound. */
  async deleteIfExists(path: string, options?: Obj): Promise<void> {
    try {
      await this.delete(path, options);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * Streams watch events from `path` (a collection URL, with any query string) starting at `resourceVersion`.
   * The caller relists on a 410 (expired resourceVersion) event and restarts the watch when `done` resolves.
   */
  watch(path: string, resourceVersion: string, onEvent: (type: string, obj: Obj) => void): WatchHandle {
    const url = new URL(path, this.creds.server);
    url.searchParams.set("watch", "true");
    url.searchParams.set("allowWatchBookmarks", "true");
    url.searchParams.set("resourceVersion", resourceVersion);
    url.searchParams.set("timeoutSeconds", String(240 + Math.floor(Math.random() * 120)));
    let req: ReturnType<typeof https.request> | undefined;
    const done = new Promise<void>((resolve) => {
      req = https.request(url, { method: "GET", agent: this.agent, headers: this.headers() }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          onEvent("ERROR", { code: res.statusCode, message: `watch ${url.pathname}: HTTP ${res.statusCode}` });
          resolve();
          return;
        }
        let buf = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buf += chunk;
          let nl = buf.indexOf("\n");
          while (nl >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line) {
              const ev = JSON.parse(line) as { type: string; object: Obj };
              onEvent(ev.type, ev.object);
            }
            nl = buf.indexOf("\n");
          }
        });
        res.on("end", () => resolve());
        res.on("error", () => resolve());
        res.on("close", () => resolve());
      });
      req.on("error", () => resolve());
      req.end();
    });
    return { stop: () => req?.destroy(), done };
  }
}
