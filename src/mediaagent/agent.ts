// `auxo agent <task>`: what runs inside a MediaAgent pod. It reads its task from AUXO_TASK (no secrets), opens the
// repositories with credentials from mounted files and env, does the work through the engine, logs progress as JSON
// lines, and leaves its result in the termination message (at most 4 KiB, so results are summaries) and its exit
// code: 0 done, 1 failed (the result says whether a retry can help). Each task is one handler in tasks/; the
// inputs and results are the agent protocol (protocol.ts).
import { writeFileSync } from "node:fs";
import { EngineError } from "../engine/errors.ts";
import { type ResticLock, ResticEngine, scrubUrls } from "../engine/restic.ts";
import { accessRepo, type Handler, messageOf, progress, shown, taskContext } from "./context.ts";
import type { AgentTask, LockHolder, ResultBase, ResultOf, TaskSpec } from "./protocol.ts";
import { age } from "./tasks/age.ts";
import { copy } from "./tasks/copy.ts";
import { init } from "./tasks/init.ts";
import { plan } from "./tasks/plan.ts";
import { probe } from "./tasks/probe.ts";
import { scan } from "./tasks/scan.ts";
import { backupcopy } from "./tasks/backupcopy.ts";
import { snapcopy } from "./tasks/snapcopy.ts";
import { verify } from "./tasks/verify.ts";
import { list } from "./tasks/list.ts";
import { restore } from "./tasks/restore.ts";

/** Any task's result, as the termination message holds it. */
export type AgentResult = ResultBase & { task: AgentTask; [field: string]: unknown };

/** Every task the agent runs, by name. */
export const handlers: { [T in AgentTask]: Handler<T> } = {
  probe,
  init,
  scan,
  copy,
  plan,
  age,
  verify,
  snapcopy,
  backupcopy,
  list,
  restore,
};

const isTask = (t: string): t is AgentTask => Object.hasOwn(handlers, t);

const holderOf = (l: ResticLock, now = Date.now()): LockHolder => {
  const t = Date.parse(l.time);
  return {
    host: l.hostname,
    pid: l.pid,
    user: l.username,
    exclusive: l.exclusive,
    createdAt: Number.isNaN(t) ? l.time : new Date(t).toISOString(),
    ageSeconds: Number.isNaN(t) ? undefined : Math.max(0, Math.round((now - t) / 1000)),
  };
};

const ago = (s: number | undefined) =>
  s === undefined ? "" : s < 120 ? ` (${s} s ago)` : s < 7200 ? ` (${Math.round(s / 60)} min ago)` : ` (${Math.round(s / 3600)} h ago)`;

/** `repository is locked (exclusive) by host "x" pid 123 since <time> (12 min ago)` */
export function describeLock(where: string, h: LockHolder): string {
  return `repository ${where} is locked${h.exclusive ? " (exclusive)" : ""} by host "${h.host}"${h.pid !== undefined ? ` pid ${h.pid}` : ""}${
    h.user ? ` user ${h.user}` : ""
  } since ${h.createdAt}${ago(h.ageSeconds)}`;
}

/**
 * The result as a termination message: valid JSON of at most `max` bytes. Too big, it loses its largest fields
 * first (a list is halved, anything else dropped), then its message is shortened; ok, task, kind and retryable stay.
 */
export function fitResult(r: AgentResult, max = 4000): string {
  const keep = new Set(["ok", "task", "kind", "retryable", "message"]);
  const out: Record<string, unknown> = { ...r };
  const size = () => Buffer.byteLength(JSON.stringify(out));
  const cut: string[] = [];
  while (size() > max) {
    const fields = Object.keys(out)
      .filter((k) => !keep.has(k) && k !== "truncated")
      .map((k) => ({ k, n: Buffer.byteLength(JSON.stringify(out[k]) ?? "") }))
      .sort((a, b) => b.n - a.n);
    const big = fields[0];
    if (!big) break;
    const v = out[big.k];
    if (Array.isArray(v) && v.length > 1) out[big.k] = v.slice(0, Math.floor(v.length / 2));
    else delete out[big.k];
    if (!cut.includes(big.k)) cut.push(big.k);
    out.truncated = cut;
  }
  if (size() > max && typeof out.message === "string") {
    const over = size() - max;
    // Bytes, not characters: cut by characters until it fits.
    let m = out.message.slice(0, Math.max(0, out.message.length - over - 1));
    out.message = `${m}…`;
    while (size() > max && m.length > 0) {
      m = m.slice(0, -Math.max(1, Math.ceil(m.length / 20)));
      out.message = `${m}…`;
    }
  }
  if (size() > max) return JSON.stringify({ ok: r.ok, task: r.task, kind: r.kind, retryable: r.retryable });
  return JSON.stringify(out);
}

/** Prints restic's backend retries as progress, at most once per `everyMs`, so the operator probes the library at once. */
export function backendErrorReporter(
  write: (p: Record<string, unknown>) => void,
  everyMs = 5000,
  now: () => number = Date.now,
): (cause: string) => void {
  let last = -Infinity;
  return (cause) => {
    if (now() - last < everyMs) return;
    last = now();
    write({ backendError: scrubUrls(cause).replace(/\s+/g, " ").trim().slice(0, 300) });
  };
}

/** Runs one task by its handler; a failure is thrown (an EngineError carries what the task finished in `details`). */
export async function runTask<T extends AgentTask>(
  task: T,
  spec: TaskSpec,
  env: NodeJS.ProcessEnv,
  engine: ResticEngine,
): Promise<ResultOf<T>> {
  if (!isTask(task)) throw new Error(`unknown task ${JSON.stringify(task)}`);
  const handler: Handler<T> = handlers[task];
  try {
    const r = await handler(spec, taskContext(task, spec, env, engine));
    return { ...r, task };
  } catch (err) {
    throw await explainLock(err, spec, env, engine);
  }
}

/**
 * A LockHeld failure names the lock that blocked: restic's message carries its storage ID, the lock listing gives its
 * holder (host, pid, user, age), which the run shows while it waits.
 */
async function explainLock(err: unknown, spec: TaskSpec, env: NodeJS.ProcessEnv, engine: ResticEngine): Promise<unknown> {
  if (!(err instanceof EngineError) || err.kind !== "LockHeld") return err;
  const storageId = /storage ID ([0-9a-f]{8,64})/.exec(err.detail)?.[1];
  let found: { where: string; lock: ResticLock } | undefined;
  for (const a of [spec.target, ...(spec.source ? [spec.source] : [])]) {
    let locks: ResticLock[];
    try {
      locks = await engine.listLocks(accessRepo(a, env), 60_000);
    } catch {
      continue;
    }
    const lock = storageId ? locks.find((l) => l.id.startsWith(storageId)) : (locks.find((l) => l.exclusive) ?? locks[0]);
    if (lock) {
      found = { where: shown(a.repository), lock };
      break;
    }
  }
  if (!found) return err;
  const holder = holderOf(found.lock);
  const e = new EngineError("LockHeld", "lock", err.exitCode, err.detail, describeLock(found.where, holder));
  e.details = { ...err.details, lock: holder };
  return e;
}

/** restic's status lines and the engine's copy lines, in the one shape the operator reads (controllers/agent/progress.ts). */
function progressOf(m: Record<string, unknown>): Record<string, unknown> {
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
  return {
    percent: num(m.percent_done) !== undefined ? Math.round((m.percent_done as number) * 1000) / 10 : undefined,
    bytesDone: num(m.bytes_done),
    bytesTotal: num(m.total_bytes),
    jobsDone: num(m.jobs_done),
    jobsTotal: num(m.jobs_total),
    job: typeof m.job === "string" ? m.job : undefined,
  };
}

/** The `auxo agent <task>` command. */
export async function agentMain(task: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const write = (r: AgentResult) => {
    const text = fitResult(r);
    process.stdout.write(`${JSON.stringify({ level: r.ok ? "info" : "error", msg: "result", ...r })}\n`);
    try {
      writeFileSync(env.AUXO_RESULT_FILE ?? "/dev/termination-log", text);
    } catch {
      // no termination log outside a pod
    }
  };
  if (!isTask(task)) {
    process.stderr.write(`auxo agent: unknown task ${JSON.stringify(task)}; tasks: ${Object.keys(handlers).join(", ")}\n`);
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
    // A task that only reads the catalog once would fill restic's cache with every snapshot file for nothing (the
    // pod's cache goes with it): 10,000 snapshots take 4.5 s with a fresh cache, 1.1 s without (bench/cli-jobs.ts).
    cacheDir: task === "list" || task === "scan" ? undefined : env.RESTIC_CACHE_DIR,
    onProgress: (m) => progress({ task, ...progressOf(m) }),
    onBackendError: backendErrorReporter((p) => progress({ task, ...p })),
  });
  // Pod deletion (suspend, cancel) sends SIGTERM: stop restic cleanly and let the task record what it finished and
  // write its result within the grace period, instead of exiting mid-write.
  process.on("SIGTERM", () => engine.terminate());
  try {
    const result = await runTask(task, spec, env, engine);
    write(result);
    return 0;
  } catch (err) {
    const e = err instanceof EngineError ? err : undefined;
    write({
      ok: false,
      task,
      kind: e?.kind ?? "Failed",
      retryable: e?.retryable ?? true,
      message: messageOf(err),
      ...e?.details,
    });
    return 1;
  }
}
