// `auxo agent <task>`: what runs inside a MediaAgent pod. It reads its task from AUXO_TASK (no secrets), opens the
// repositories with credentials from mounted files and env, does the work through the engine, logs progress as JSON
// lines, and leaves its result in the termination message (at most 4 KiB, so results are summaries) and its exit
// code: 0 done, 1 failed (the result says whether a retry can help).
import { randomBytes } from "node:crypto";
import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { EngineError } from "../engine/errors.ts";
import { type Repo, ResticEngine } from "../engine/restic.ts";
import type { CatalogEntry } from "../policy/catalog.ts";
import type { AgentTask, TaskSpec } from "./pod.ts";

export interface AgentResult {
  ok: boolean;
  task: AgentTask;
  kind?: string;
  retryable?: boolean;
  message?: string;
  [field: string]: unknown;
}

const backendEnv = (env: NodeJS.ProcessEnv): Record<string, string> =>
  Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => /^(AWS_|RESTIC_REST_)/.test(e[0]) && e[1] !== undefined));

/** A job summary small enough for a termination message, and never a list that grows with the jobs. */
export function summarize(catalog: CatalogEntry[]): Record<string, unknown> {
  const byType: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  let bytes = 0;
  for (const e of catalog) {
    byType[e.type] = (byType[e.type] ?? 0) + 1;
    byStatus[e.status] = (byStatus[e.status] ?? 0) + 1;
    bytes += e.bytes ?? 0;
  }
  return { jobs: catalog.length, byType, byStatus, bytes, oldestJob: catalog[0]?.startTime, newestJob: catalog.at(-1)?.startTime };
}

export async function runTask(task: AgentTask, spec: TaskSpec, env: NodeJS.ProcessEnv, engine: ResticEngine): Promise<AgentResult> {
  const tmp = env.TMPDIR ?? "/tmp";
  const repo = (a: TaskSpec["target"], passwordFile?: string): Repo => ({
    repository: a.repository,
    passwordFile: passwordFile ?? a.passwordFile ?? "",
    env: backendEnv(env),
    options: a.options,
    caFile: a.caFile,
    insecureTls: a.insecureTls,
  });
  const timeoutMs = (spec.timeoutSeconds ?? 3600) * 1000;
  switch (task) {
    case "probe": {
      const t = spec.target.repository;
      if (t.startsWith("/")) {
        // A filesystem library: the mounted folder must exist and be writable.
        mkdirSync(t, { recursive: true });
        accessSync(t, constants.W_OK);
        const marker = path.join(t, `.auxo-probe-${randomBytes(4).toString("hex")}`);
        writeFileSync(marker, "probe");
        rmSync(marker);
        return { ok: true, task, message: `${t} is writable` };
      }
      // Object storage: opening a repository that is not there proves the storage answers (and the credentials
      // are accepted); anything else is a problem.
      const pw = path.join(tmp, "probe-password");
      writeFileSync(pw, randomBytes(16).toString("hex"), { mode: 0o600 });
      try {
        await engine.probe(repo({ ...spec.target, repository: `${t.replace(/\/+$/, "")}/.auxo-probe` }, pw), Math.min(timeoutMs, 60_000));
        return { ok: true, task, message: "storage answered" };
      } catch (err) {
        if (err instanceof EngineError && err.kind === "RepositoryNotFound") return { ok: true, task, message: "storage answered" };
        throw err;
      }
    }
    case "init": {
      try {
        const id = await engine.init(repo(spec.target), { chunkerFrom: spec.source && repo(spec.source), timeoutMs });
        return { ok: true, task, created: true, id };
      } catch (err) {
        if (!(err instanceof EngineError && err.kind === "RepositoryExists")) throw err;
        // Already there (a retried init, or a repository that outlived the cluster): it must open with our password.
        await engine.snapshots(repo(spec.target), timeoutMs);
        return { ok: true, task, created: false };
      }
    }
    case "scan":
      return { ok: true, task, ...summarize(await engine.catalog(repo(spec.target), timeoutMs)) };
    case "copy": {
      if (!spec.source) throw new Error("copy needs a source");
      const r = await engine.copy(repo(spec.source), repo(spec.target), spec.snapshotIds ?? [], timeoutMs);
      return { ok: true, task, copied: r.copied.length, skipped: r.skipped.length };
    }
    case "verify": {
      for (const id of spec.snapshotIds ?? []) await engine.verify(repo(spec.target), id, timeoutMs);
      return { ok: true, task, verified: spec.snapshotIds?.length ?? 0 };
    }
    case "prune":
      await engine.prune(repo(spec.target), timeoutMs);
      return { ok: true, task };
  }
}

/** The `auxo agent <task>` command. */
export async function agentMain(task: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const tasks: AgentTask[] = ["probe", "init", "scan", "copy", "verify", "prune"];
  const write = (r: AgentResult) => {
    const text = JSON.stringify(r).slice(0, 4000);
    process.stdout.write(`${JSON.stringify({ level: r.ok ? "info" : "error", msg: "result", ...r })}\n`);
    try {
      writeFileSync(env.AUXO_RESULT_FILE ?? "/dev/termination-log", text);
    } catch {
      // no termination log outside a pod
    }
  };
  if (!tasks.includes(task as AgentTask)) {
    process.stderr.write(`auxo agent: unknown task ${JSON.stringify(task)}; tasks: ${tasks.join(", ")}\n`);
    return 2;
  }
  let spec: TaskSpec;
  try {
    spec = JSON.parse(env.AUXO_TASK ?? "") as TaskSpec;
  } catch {
    process.stderr.write("auxo agent: AUXO_TASK is missing or not JSON\n");
    return 2;
  }
  const engine = new ResticEngine({
    binary: env.AUXO_RESTIC ?? "restic",
    cacheDir: env.RESTIC_CACHE_DIR,
    onProgress: (m) =>
      process.stdout.write(`${JSON.stringify({ level: "info", msg: "progress", task, percent: m.percent_done, bytes: m.bytes_done })}\n`),
  });
  try {
    const result = await runTask(task as AgentTask, spec, env, engine);
    write(result);
    return 0;
  } catch (err) {
    const e = err instanceof EngineError ? err : undefined;
    write({
      ok: false,
      task: task as AgentTask,
      kind: e?.kind ?? "Failed",
      retryable: e?.retryable ?? true,
      message: err instanceof Error ? err.message : String(err),
    });
    return 1;
  }
}
