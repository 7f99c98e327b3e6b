// Shared pieces of the benchmarks that run the operator against a real local world: a plain restic CLI as the
// MediaAgents' user (uid 65532, like test/harness/testing.ts resticAsAgent, but async so that several run at once),
// the operator's own API request counter, and the machine's load.
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { Manager } from "../src/runtime/manager.ts";

const run = promisify(execFile);

export const AGENT_UID = 65532;

/**
 * Plain restic as uid 65532 (repository files are private to the MediaAgents' user), with the world's copy of
 * restic. `scratch` must be a folder uid 65532 can write: it holds the password file and restic's HOME.
 */
export function resticAsAgent(worldDir: string, scratch: string, password: string) {
  const pwFile = path.join(scratch, "pw");
  writeFileSync(pwFile, password, { mode: 0o644 });
  const restic = path.join(worldDir, "bin", "restic");
  return async (repo: string, env: Record<string, string>, ...args: string[]): Promise<string> => {
    const { stdout } = await run(
      "setpriv",
      [
        `--reuid=${AGENT_UID}`,
        `--regid=${AGENT_UID}`,
        "--clear-groups",
        "--",
        restic,
        "-r",
        repo,
        "--password-file",
        pwFile,
        "--no-cache",
        ...args,
      ],
      { env: { ...process.env, ...env, HOME: scratch }, encoding: "utf8", maxBuffer: 256 << 20 },
    );
    return stdout;
  };
}

/** Runs `fn` on each item with at most `parallel` at once. */
export async function pool<T>(items: T[], parallel: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i] as T, i);
      }
    }),
  );
}

/** The operator's rest_client_requests_total, summed by method. */
export async function requestsByMethod(mgr: Manager): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const v of (await mgr.metrics.restClientRequests.get()).values) {
    const m = String(v.labels.method);
    out.set(m, (out.get(m) ?? 0) + v.value);
  }
  return out;
}

export function delta(after: Map<string, number>, before: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of after) if (v - (before.get(k) ?? 0) > 0) out.set(k, v - (before.get(k) ?? 0));
  return out;
}

export const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

export const sorted = (m: Map<string, number>): [string, number][] => [...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));

/**
 * Counts the requests of the operator's client by what they address (method, resource, subresource), by wrapping
 * KubeClient.request: the metric only has the method, this tells a status write from a pod log read.
 */
export function countRequestsByResource(mgr: Manager): { counts: Map<string, number>; reset: () => void } {
  const counts = new Map<string, number>();
  const client = mgr.client as unknown as { request: (method: string, p: string, init?: unknown) => Promise<unknown> };
  const original = client.request.bind(client);
  client.request = async (method: string, p: string, init?: unknown) => {
    // Counted when it ends, like the metric (a request still in flight at a snapshot is in neither).
    try {
      return await original(method, p, init);
    } finally {
      const k = `${method} ${resourceOf(p, method)}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
  };
  return { counts, reset: () => counts.clear() };
}

/** `/apis/auxo.dev/v1alpha1/namespaces/x/auxcopyjobs/run/status` → `auxcopyjobs/status`; `pods (create)`, `pods (list)`. */
export function resourceOf(p: string, method = "GET"): string {
  const parts = p.split("?")[0]?.split("/").filter(Boolean) ?? [];
  // api/v1 or apis/<group>/<version>
  let rest = parts[0] === "api" ? parts.slice(2) : parts.slice(3);
  if (rest[0] === "namespaces" && rest.length > 2) rest = rest.slice(2);
  const [plural, name, sub] = rest;
  if (!plural) return p;
  if (!name) return `${plural} (${method === "POST" ? "create" : "list"})`;
  return sub ? `${plural}/${sub}` : plural;
}

export function load(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(", ");
}

export const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** A percentile of a list of numbers (nearest rank). */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}
