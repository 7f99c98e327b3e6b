// `auxo agent <task>`: what runs inside a MediaAgent pod. It reads its task from AUXO_TASK (no secrets), opens the
// repositories with credentials from mounted files and env, does the work through the engine, logs progress as JSON
// lines, and leaves its result in the termination message (at most 4 KiB, so results are summaries) and its exit
// code: 0 done, 1 failed (the result says whether a retry can help).
import { randomBytes } from "node:crypto";
import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { probeS3, removeLockFile } from "../engine/backend.ts";
import { EngineError } from "../engine/errors.ts";
import { type Repo, type ResticLock, ResticEngine, scrubUrls } from "../engine/restic.ts";
import { type CatalogEntry, missingOn } from "../policy/catalog.ts";
import { planCopy } from "../policy/selection.ts";
import { type PromotionDownstream, promotionShortfall } from "../policy/promotion.ts";
import { decideRetention, type DownstreamCopy, massDeletionBreaker } from "../policy/retention.ts";
import { type JobEvent, jobRecords, verificationSummary } from "../policy/jobevents.ts";
import { type MetadataStore, metadataStore } from "./metadata.ts";
import type { AgentTask, LockHolder, TaskSpec } from "./protocol.ts";

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

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Writes job events in the background. The data is what counts: an event that cannot be written (metadata folder
 * unwritable, storage gone) leaves a note in the result instead of failing work that is done.
 */
class EventWriter {
  private readonly store?: MetadataStore;
  private readonly pod?: string;
  private writes: Promise<void>[] = [];
  private errors = 0;
  private lastError = "";
  constructor(store: MetadataStore | undefined, pod?: string) {
    this.store = store;
    this.pod = pod;
  }

  private failed: JobEvent[] = [];

  add(e: Omit<JobEvent, "schema" | "at" | "pod">): void {
    if (!this.store) return;
    const event = { ...e, at: new Date().toISOString(), pod: this.pod } as JobEvent;
    this.writes.push(
      this.store.add(event).catch(() => {
        this.failed.push(event); // written again at flush: the storage may be back by then
      }),
    );
  }

  /** Waits for the writes; those that failed (a storage outage mid-run) are tried again, 1 s doubling, 3 times. */
  async flush(): Promise<void> {
    await Promise.all(this.writes);
    this.writes = [];
    for (let round = 0; round < 3 && this.failed.length; round++) {
      await new Promise((r) => setTimeout(r, 1000 * 2 ** round));
      const again = this.failed;
      this.failed = [];
      await Promise.all(
        again.map((event) =>
          (this.store as MetadataStore).add(event).catch((err: unknown) => {
            this.failed.push(event);
            this.lastError = messageOf(err);
          }),
        ),
      );
    }
    this.errors = this.failed.length;
  }

  problem(): Record<string, unknown> {
    return this.errors ? { metadataError: `${this.errors} job events not written: ${this.lastError}` } : {};
  }
}

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

/** Jobs whose latest verification on a copy failed, from the metadata beside its repository. */
async function failedVerification(a: TaskSpec["target"], env: NodeJS.ProcessEnv): Promise<Set<string>> {
  const store = metadataStore(a.metadata, env, a);
  if (!store) return new Set();
  const out = new Set<string>();
  for (const [job, r] of jobRecords(await store.list())) if (r.lastVerification?.result === "failed") out.add(job);
  return out;
}

/**
 * From the job events beside a copy: when each job was last copied to it, and which jobs' latest attempt failed.
 * Nothing when the library keeps no events or they cannot be read (selection then goes by the catalogs alone).
 */
async function copyHistory(
  a: TaskSpec["target"],
  env: NodeJS.ProcessEnv,
): Promise<{ lastCopied?: Map<string, string>; partial?: Set<string> }> {
  const store = metadataStore(a.metadata, env, a);
  if (!store) return {};
  try {
    const lastCopied = new Map<string, string>();
    const partial = new Set<string>();
    for (const [job, r] of jobRecords(await store.list())) {
      if (r.lastCopy?.result === "ok") lastCopied.set(job, r.lastCopy.at);
      else if (r.lastCopy) partial.add(job);
    }
    return { lastCopied, partial };
  } catch {
    return {};
  }
}

const progress = (p: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ level: "info", msg: "progress", ...p })}\n`);

/** How far the agent's clock may be from the operator's decision time before data aging refuses to forget. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

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

/** A repository location for messages: no credentials in it. */
const shown = (repository: string) => scrubUrls(repository);

export async function runTask(task: AgentTask, spec: TaskSpec, env: NodeJS.ProcessEnv, engine: ResticEngine): Promise<AgentResult> {
  try {
    return await work(task, spec, env, engine);
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

const accessRepo = (a: TaskSpec["target"], env: NodeJS.ProcessEnv, passwordFile?: string): Repo => ({
  repository: a.repository,
  passwordFile: passwordFile ?? a.passwordFile ?? "",
  env: backendEnv(env),
  options: a.options,
  caFile: a.caFile,
  insecureTls: a.insecureTls,
});

async function work(task: AgentTask, spec: TaskSpec, env: NodeJS.ProcessEnv, engine: ResticEngine): Promise<AgentResult> {
  const tmp = env.TMPDIR ?? "/tmp";
  const repo = (a: TaskSpec["target"], passwordFile?: string): Repo => accessRepo(a, env, passwordFile);
  const timeoutMs = (spec.timeoutSeconds ?? 3600) * 1000;
  // Repository identity: before it writes or forgets, the agent makes sure the repository at the location is the one
  // the operator recorded (another one may have been put there, or two copies aimed at one place).
  const checkIdentity = async (a: TaskSpec["target"]): Promise<void> => {
    if (!a.repositoryId) return;
    const { id } = await engine.config(repo(a), Math.min(timeoutMs, 300_000));
    if (id !== a.repositoryId)
      throw new EngineError(
        "RepositoryMismatch",
        task,
        null,
        "",
        `repository at ${shown(a.repository)} has ID ${id}, the copy recorded ${a.repositoryId}: a different repository is at this location; nothing was written`,
      );
  };
  // Locks (docs/job-metadata.md): restic's stale ones, then exactly those of Auxo pods the operator knows have ended.
  // Any other lock stays: the operation then fails LockHeld and the run waits for it.
  const removed: { host: string; id: string }[] = [];
  const clearLocks = async (a: TaskSpec["target"]): Promise<void> => {
    if (!spec.locks) return;
    const r = repo(a);
    await engine.unlock(r, Math.min(timeoutMs, 300_000));
    const dead = new Set(spec.locks.deadHosts ?? []);
    if (dead.size === 0) return;
    for (const l of await engine.listLocks(r, Math.min(timeoutMs, 300_000)))
      if (dead.has(l.hostname)) {
        await removeLockFile(r, l.id);
        removed.push({ host: l.hostname, id: l.id.slice(0, 8) });
        progress({ task, lockRemoved: l.id.slice(0, 8), host: l.hostname, repository: shown(a.repository) });
      }
  };
  const locksNote = () => (removed.length ? { locksRemoved: removed.slice(0, 10) } : {});
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
      // S3: a marker object written and deleted under the library's prefix proves bucket, prefix and credentials.
      if (t.startsWith("s3:")) return { ok: true, task, message: await probeS3(repo(spec.target), Math.min(timeoutMs, 60_000)) };
      // A REST server: opening a repository that is not there proves the server answers (and the credentials are
      // accepted); anything else is a problem.
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
        return { ok: true, task, created: true, id: id || (await engine.config(repo(spec.target), timeoutMs)).id };
      } catch (err) {
        if (!(err instanceof EngineError && err.kind === "RepositoryExists")) throw err;
        // Already there (a retried init, or a repository that outlived the cluster): it must open with our password,
        // and the operator records its ID (a second copy on the same ID is refused).
        await engine.snapshots(repo(spec.target), timeoutMs);
        return { ok: true, task, created: false, id: (await engine.config(repo(spec.target), timeoutMs)).id };
      }
    }
    case "scan": {
      const catalog = await engine.catalog(repo(spec.target), timeoutMs);
      const { id: repositoryId } = await engine.config(repo(spec.target), timeoutMs);
      const result: AgentResult = { ok: true, task, repositoryId, ...summarize(catalog) };
      const store = metadataStore(spec.target.metadata, env, spec.target);
      if (store) {
        try {
          const records = jobRecords(await store.list());
          result.verification = verificationSummary(
            records,
            catalog.map((e) => e.jobId),
          );
          result.copyRetries = [...records.values()].filter((r) => r.copyAttempts > 1).length;
        } catch (err) {
          result.metadataError = messageOf(err);
        }
      }
      return result;
    }
    case "copy": {
      if (!spec.source) throw new Error("copy needs a source");
      const source = repo(spec.source);
      const target = repo(spec.target);
      await checkIdentity(spec.target);
      await checkIdentity(spec.source);
      await clearLocks(spec.target);
      await clearLocks(spec.source);
      const events = new EventWriter(metadataStore(spec.target.metadata, env, spec.target), env.AUXO_POD_NAME);
      let todo: CatalogEntry[];
      let planned: Record<string, unknown> = {};
      const sourceCatalog = await engine.catalog(source, timeoutMs);
      const targetCatalog = await engine.catalog(target, timeoutMs);
      // Lag after this pod: the newest valid source job against the newest job the target holds (or now gets).
      const lag = (copiedJobs: CatalogEntry[]): Record<string, number> => {
        const newest = (es: CatalogEntry[]) => Math.max(0, ...es.map((e) => Date.parse(e.startTime)).filter((t) => !Number.isNaN(t)));
        const src = newest(sourceCatalog.filter((e) => e.status === "completed" || e.status === "completedWithErrors"));
        if (!src) return {};
        return { lagSeconds: Math.max(0, Math.round((src - newest([...targetCatalog, ...copiedJobs])) / 1000)) };
      };
      if (spec.plan) {
        const skipJobs = spec.plan.skipVerificationFailed ? await failedVerification(spec.source, env) : undefined;
        const plan = planCopy(sourceCatalog, targetCatalog, spec.plan.rules, {
          now: Date.now(),
          cutoff: spec.plan.cutoff ? Date.parse(spec.plan.cutoff) : undefined,
          skipJobs,
          limit: spec.plan.limit,
          mostRecentFull: spec.plan.mostRecentFull,
          ...(await copyHistory(spec.target, env)),
        });
        todo = plan.toCopy;
        planned = { selected: todo.length, remaining: plan.remaining, counts: plan.counts };
        if (plan.recopy.length) {
          // Recopy: the job's snapshot on the target goes first (forget only; its data stays until a prune), then the
          // copy writes it again. Should the copy fail now, the job is simply missing and the retry copies it.
          const again = new Set(plan.recopy);
          const originals = new Set(todo.filter((e) => again.has(e.jobId)).map((e) => e.originalId));
          await engine.forget(
            target,
            targetCatalog.filter((e) => originals.has(e.originalId)).map((e) => e.snapshotId),
          );
          planned.recopied = plan.recopy.length;
        }
      } else {
        const wanted = new Set(spec.snapshotIds ?? []);
        todo = missingOn(
          sourceCatalog.filter((e) => wanted.has(e.snapshotId)),
          targetCatalog,
        );
      }
      // Jobs copied to the target since the run started, by every pod of the run (a killed one included), from the
      // job events beside the repository: the exact count for the run's status.
      const runCopied = async (): Promise<Record<string, number>> => {
        const store = metadataStore(spec.target.metadata, env, spec.target);
        if (!store || !spec.plan?.runStart) return {};
        try {
          const since = new Date(spec.plan.runStart).toISOString();
          const jobs = new Set(
            (await store.list()).filter((e) => e.kind === "copy" && e.result === "ok" && e.at >= since).map((e) => e.jobId),
          );
          return { runCopied: jobs.size };
        } catch {
          return {};
        }
      };
      const bytesTotal = todo.reduce((n, e) => n + (e.bytes ?? 0), 0);
      let bytesDone = 0;
      const copied = new Set<string>();
      progress({ jobsDone: 0, jobsTotal: todo.length, bytesDone, bytesTotal, job: todo[0]?.jobId });
      try {
        await engine.copyJobs(source, target, todo, {
          timeoutMs,
          onCopied: (job, done) => {
            copied.add(job.snapshotId);
            bytesDone += job.bytes ?? 0;
            events.add({ jobId: job.jobId, snapshotId: job.snapshotId, kind: "copy", result: "ok" });
            progress({ jobsDone: done, jobsTotal: todo.length, bytesDone, bytesTotal, job: todo[done]?.jobId });
          },
        });
        await events.flush();
        return {
          ok: true,
          task,
          copied: todo.length,
          // For the run's history in status: the latest jobs copied (bounded; the job events keep all).
          copiedJobs: todo.slice(-20).map((e) => e.jobId),
          bytes: bytesTotal,
          ...planned,
          ...lag(todo),
          ...(await runCopied()),
          ...locksNote(),
          ...events.problem(),
        };
      } catch (err) {
        // A job restic saved just before it stopped (suspend, cancel, a deleted pod) may have no "saved" line: the
        // target's catalog says which are there, so every finished job gets its event and the run's count is exact.
        try {
          const landed = new Set((await engine.catalog(target, 60_000)).map((e) => e.originalId));
          for (const job of todo)
            if (!copied.has(job.snapshotId) && landed.has(job.originalId)) {
              copied.add(job.snapshotId);
              events.add({ jobId: job.jobId, snapshotId: job.snapshotId, kind: "copy", result: "ok" });
            }
        } catch {
          // the target cannot be read now; the next attempt's catalog finds those jobs anyway
        }
        // Every job this attempt did not finish counts one failed attempt (the next run finds the finished ones); a
        // lock that kept restic from starting is no attempt at any job.
        const attempted = !(err instanceof EngineError && err.kind === "LockHeld" && copied.size === 0);
        if (attempted)
          for (const job of todo.filter((j) => !copied.has(j.snapshotId)))
            events.add({ jobId: job.jobId, snapshotId: job.snapshotId, kind: "copy", result: "failed", message: messageOf(err) });
        await events.flush();
        if (err instanceof EngineError)
          err.details = {
            copied: copied.size,
            copiedJobs: todo
              .filter((j) => copied.has(j.snapshotId))
              .slice(-20)
              .map((e) => e.jobId),
            failedJobs: todo
              .filter((j) => !copied.has(j.snapshotId))
              .slice(0, 20)
              .map((e) => e.jobId),
            bytes: bytesDone,
            ...planned,
            ...(await runCopied()),
          };
        throw err;
      }
    }
    case "plan": {
      // What a copy would take, without copying: a promotion counts the jobs of the primary its candidate lacks.
      // With `downstream` (the copies the promotion re-points to the candidate), their needs count too.
      if (!spec.source || !spec.plan) throw new Error("plan needs a source and rules");
      const primary = await engine.catalog(repo(spec.source), timeoutMs);
      const candidate = await engine.catalog(repo(spec.target), timeoutMs);
      const unread: string[] = [];
      const downstream: PromotionDownstream[] = [];
      for (const d of spec.downstream ?? []) {
        let catalog: CatalogEntry[] | undefined;
        if (!d.unreachable)
          catalog = await engine.catalog(repo(d.access), timeoutMs).catch((err: unknown) => {
            unread.push(`${d.name}: ${messageOf(err)}`); // cannot be read: it may need any job
            return undefined;
          });
        downstream.push({ name: d.name, rules: d.rules, catalog });
      }
      const short = promotionShortfall(primary, candidate, spec.plan.rules, downstream, Date.now());
      return { ok: true, task, ...short, ...(unread.length ? { downstreamUnread: unread.slice(0, 5) } : {}) };
    }
    case "age": {
      // Data aging of the target copy: decide by its retention with what the copies after it still need, stop at
      // the mass-deletion breaker, then forget the aged jobs and prune (restic's exclusive lock).
      if (!spec.aging) throw new Error("age needs the copy's retention");
      const a = spec.aging;
      const target = repo(spec.target);
      if (!a.dryRun) {
        // The operator decided as of `at`; a node clock far from it would age by another day's rules.
        const skew = a.at ? Date.now() - Date.parse(a.at) : 0;
        if (!(Math.abs(skew) <= MAX_CLOCK_SKEW_MS))
          throw new EngineError(
            "ClockSkew",
            task,
            null,
            "",
            `this node's clock reads ${new Date().toISOString()}, the operator decided at ${a.at} (${Math.round(Math.abs(skew) / 1000)} s apart, more than ${MAX_CLOCK_SKEW_MS / 1000} s): nothing was forgotten`,
          );
        await checkIdentity(spec.target);
      }
      const catalog = await engine.catalog(target, timeoutMs);
      const now = a.at ? Date.parse(a.at) : Date.now();
      const downstream: DownstreamCopy[] = [];
      const notes: string[] = [];
      for (const d of spec.downstream ?? []) {
        const all = new Set(catalog.map((e) => e.jobId));
        let theirs: CatalogEntry[] | undefined;
        if (!d.unreachable)
          try {
            theirs = await engine.catalog(repo(d.access), timeoutMs);
          } catch (err) {
            notes.push(`${d.name}: ${messageOf(err)}`);
          }
        if (!theirs) {
          // Cannot be read: it may need any job, so every job waits for it.
          downstream.push({ name: d.name, active: d.active, copyType: d.rules.copyType, needs: all, has: new Set() });
          continue;
        }
        // What it takes now, and later (deferred jobs, periods still open): far enough ahead that every period closed.
        const plan = planCopy(catalog, theirs, { ...d.rules, deferDays: 0 }, { now: now + 400 * 86_400_000 });
        const on = new Set(theirs.map((e) => e.originalId));
        downstream.push({
          name: d.name,
          active: d.active,
          copyType: d.rules.copyType,
          needs: new Set(plan.toCopy.map((e) => e.jobId)),
          has: new Set(catalog.filter((e) => on.has(e.originalId)).map((e) => e.jobId)),
        });
      }
      const decision = decideRetention({
        catalog,
        retention: a.retention,
        jobOverrides: a.overrides,
        now,
        timeZone: a.timeZone,
        downstream,
        badJobs: await failedVerification(spec.target, env).catch(() => undefined),
      });
      const breaker = massDeletionBreaker(decision, a.maxSharePercent);
      const aged = decision.verdicts.filter((v) => v.action === "age");
      const report = {
        jobs: catalog.length,
        aged: aged.length,
        agedBytes: decision.summary.agedBytes,
        agedJobs: aged.slice(0, 20).map((v) => v.jobId),
        byReason: decision.summary.byReason,
        breaker: { stop: breaker.stop, share: Math.round(breaker.share * 10) / 10, message: breaker.message },
        ...(notes.length ? { downstreamUnread: notes.slice(0, 5) } : {}),
      };
      if (a.dryRun) return { ok: true, task, dryRun: true, ...report };
      if (breaker.stop) return { ok: false, task, kind: "MassDeletion", retryable: false, message: breaker.message, ...report };
      if (aged.length === 0) return { ok: true, task, ...report, reclaimedBytes: 0 };
      // Forget and prune need the exclusive lock: stale locks and those of ended Auxo pods go first. Any other lock
      // (a producer's backup or prune) stays, and the run fails LockHeld and waits instead of breaking it.
      await clearLocks(spec.target);
      const before = await engine.storedBytes(target, timeoutMs);
      await engine.forget(
        target,
        aged.map((v) => v.snapshotId),
      );
      progress({ task, aged: aged.length, phase: "prune" });
      await engine.prune(target, timeoutMs);
      const after = await engine.storedBytes(target, timeoutMs);
      return { ok: true, task, ...report, reclaimedBytes: Math.max(0, before - after), storedBytes: after, ...locksNote() };
    }
    case "verify": {
      // Every job is read in full, also after one fails: the result names all the bad ones.
      await checkIdentity(spec.target);
      await clearLocks(spec.target);
      const catalog = await engine.catalog(repo(spec.target), timeoutMs);
      const events = new EventWriter(metadataStore(spec.target.metadata, env, spec.target), env.AUXO_POD_NAME);
      const failed: string[] = [];
      for (const id of spec.snapshotIds ?? []) {
        const job = catalog.find((e) => e.snapshotId === id || e.snapshotId.startsWith(id));
        if (!job) throw new EngineError("CorruptData", "verify", null, `snapshot ${id} is not in the repository`);
        try {
          await engine.verify(repo(spec.target), job.snapshotId, timeoutMs);
          events.add({ jobId: job.jobId, snapshotId: job.snapshotId, kind: "verify", result: "ok" });
        } catch (err) {
          if (!(err instanceof EngineError) || err.kind !== "CorruptData") throw err;
          failed.push(job.jobId);
          events.add({ jobId: job.jobId, snapshotId: job.snapshotId, kind: "verify", result: "failed", message: err.message });
        }
      }
      await events.flush();
      const verified = (spec.snapshotIds?.length ?? 0) - failed.length;
      if (failed.length === 0) return { ok: true, task, verified, ...events.problem() };
      return {
        ok: false,
        task,
        kind: "CorruptData",
        retryable: false,
        message: `${failed.length} of ${spec.snapshotIds?.length} jobs failed verification: ${failed.slice(0, 10).join(", ")}`,
        verified,
        failedJobs: failed.slice(0, 20),
        ...events.problem(),
      };
    }
  }
}

/** restic's status lines and the engine's copy lines, in the one shape the operator reads (controllers/progress.ts). */
export function progressOf(m: Record<string, unknown>): Record<string, unknown> {
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
  const tasks: AgentTask[] = ["probe", "init", "scan", "copy", "plan", "age", "verify"];
  const write = (r: AgentResult) => {
    const text = fitResult(r);
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
    onProgress: (m) => progress({ task, ...progressOf(m) }),
    onBackendError: backendErrorReporter((p) => progress({ task, ...p })),
  });
  // Pod deletion (suspend, cancel) sends SIGTERM: stop restic cleanly and let the task record what it finished and
  // write its result within the grace period, instead of exiting mid-write.
  process.on("SIGTERM", () => engine.terminate());
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
      message: messageOf(err),
      ...e?.details,
    });
    return 1;
  }
}
