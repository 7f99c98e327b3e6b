// What every task handler gets: its repositories opened with the pod's credentials, its deadline, and the two
// safety steps before a write (the repository is the recorded one; only dead locks are cleared).
import { removeLockFile } from "../engine/backend.ts";
import { EngineError } from "../engine/errors.ts";
import { type Repo, type ResticEngine, scrubUrls } from "../engine/restic.ts";
import type { AgentTask, LocksNote, TaskResults, TaskSpec } from "./protocol.ts";

/** A repository as the task names it (no secrets: those come from the pod's env and files). */
export type Access = TaskSpec["target"];

export interface TaskContext {
  task: AgentTask;
  env: NodeJS.ProcessEnv;
  engine: ResticEngine;
  /** The task's deadline for one restic call. */
  timeoutMs: number;
  /** Scratch space (the pod's root filesystem is read-only). */
  tmp: string;
  repo(a: Access, passwordFile?: string): Repo;
  /** Throws RepositoryMismatch when the repository at the location is not the one the operator recorded. */
  checkIdentity(a: Access): Promise<void>;
  /** Removes restic's stale locks and those of the ended Auxo pods the task names; no other lock. */
  clearLocks(a: Access): Promise<void>;
  /** The locks clearLocks removed, for the result. */
  locksNote(): LocksNote;
}

export type Handler<T extends AgentTask> = (spec: TaskSpec, ctx: TaskContext) => Promise<TaskResults[T]>;

export const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** A repository location for messages: no credentials in it. */
export const shown = (repository: string): string => scrubUrls(repository);

/** A progress line on the agent's log, which the operator reads while the pod runs (controllers/agent/progress.ts). */
export const progress = (p: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ level: "info", msg: "progress", ...p })}\n`);
};

const backendEnv = (env: NodeJS.ProcessEnv): Record<string, string> =>
  Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => /^(AWS_|RESTIC_REST_)/.test(e[0]) && e[1] !== undefined));

export const accessRepo = (a: Access, env: NodeJS.ProcessEnv, passwordFile?: string): Repo => ({
  repository: a.repository,
  passwordFile: passwordFile ?? a.passwordFile ?? "",
  env: backendEnv(env),
  options: a.options,
  caFile: a.caFile,
  insecureTls: a.insecureTls,
});

export function taskContext(task: AgentTask, spec: TaskSpec, env: NodeJS.ProcessEnv, engine: ResticEngine): TaskContext {
  const timeoutMs = (spec.timeoutSeconds ?? 3600) * 1000;
  const short = Math.min(timeoutMs, 300_000);
  const repo = (a: Access, passwordFile?: string) => accessRepo(a, env, passwordFile);
  const removed: { host: string; id: string }[] = [];
  return {
    task,
    env,
    engine,
    timeoutMs,
    tmp: env.TMPDIR ?? "/tmp",
    repo,
    // Before it writes or forgets, the agent makes sure the repository at the location is the one the operator
    // recorded (another one may have been put there, or two copies aimed at one place).
    async checkIdentity(a) {
      if (!a.repositoryId) return;
      const { id } = await engine.config(repo(a), short);
      if (id !== a.repositoryId)
        throw new EngineError(
          "RepositoryMismatch",
          task,
          null,
          "",
          `repository at ${shown(a.repository)} has ID ${id}, the copy recorded ${a.repositoryId}: a different repository is at this location; nothing was written`,
        );
    },
    // Locks (docs/job-metadata.md): restic's stale ones, then exactly those of Auxo pods the operator knows have
    // ended. Any other lock stays: the operation then fails LockHeld and the run waits for it.
    async clearLocks(a) {
      if (!spec.locks) return;
      const r = repo(a);
      await engine.unlock(r, short);
      const dead = new Set(spec.locks.deadHosts ?? []);
      if (dead.size === 0) return;
      for (const l of await engine.listLocks(r, short))
        if (dead.has(l.hostname)) {
          await removeLockFile(r, l.id);
          removed.push({ host: l.hostname, id: l.id.slice(0, 8) });
          progress({ task, lockRemoved: l.id.slice(0, 8), host: l.hostname, repository: shown(a.repository) });
        }
    },
    locksNote: () => (removed.length ? { locksRemoved: removed.slice(0, 10) } : {}),
  };
}
