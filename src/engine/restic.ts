// The only code that runs restic. Every call spawns restic with --json where restic has it, passes credentials
// through the environment and password files (never arguments), enforces a deadline (restic itself retries an
// unreachable backend for many minutes), and turns failures into EngineErrors with secrets scrubbed.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CatalogEntry, type ResticSnapshot, missingOn, toCatalogEntry } from "../policy/catalog.ts";
import { EngineError, classify, lastWords, retryCause } from "./errors.ts";

/** One repository: where it is and how to open it. */
export interface Repo {
  /** restic repository string: a path, s3:http(s)://host/bucket/prefix, rest:https://... */
  repository: string;
  /** File holding the repository password. */
  passwordFile: string;
  /** Backend environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, RESTIC_REST_USERNAME, ... */
  env?: Record<string, string>;
  /** Extra -o options, e.g. s3.region=eu-west-1. */
  options?: Record<string, string>;
  /** PEM CA file for TLS backends with a private CA, and insecure mode for local servers. */
  caFile?: string;
  insecureTls?: boolean;
}

export interface EngineOptions {
  binary?: string;
  cacheDir?: string;
  /** Default deadline of one restic run. */
  timeoutMs?: number;
  /** Receives restic's JSON status lines (progress) as they come. */
  onProgress?: (message: Record<string, unknown>) => void;
  /** Hears the cause (scrubbed) each time restic retries its backend: the storage is failing now. */
  onBackendError?: (cause: string) => void;
}

/** One lock file in a repository (restic cat lock). */
export interface ResticLock {
  id: string;
  time: string;
  exclusive: boolean;
  hostname: string;
  username?: string;
  pid?: number;
}

/** Removes credentials written into URLs (rest:https://user:password@host/). */
export const scrubUrls = (text: string): string => text.replace(/(\w+:\/\/)[^/@\s]+@/g, "$1[redacted]@");

/** The items of restic backup's JSON error lines (files or folders it could not read). */
function unreadableItems(stderr: string): string[] {
  const out: string[] = [];
  for (const l of stderr.split("\n")) {
    if (!l.startsWith("{")) continue;
    try {
      const m = JSON.parse(l) as { message_type?: string; item?: string; error?: { message?: string } };
      if (m.message_type === "error") out.push(m.item || m.error?.message || "?");
    } catch {
      // not JSON
    }
  }
  return out;
}

interface RunResult {
  stdout: string;
  stderr: string;
  /** 0, or one of the run's `acceptExit` codes. */
  exitCode: number;
}

/** What `backup` writes: the snapshot's host, tags, time and parent. */
export interface BackupOptions {
  host: string;
  tags?: string[];
  /** The snapshot's time (`--time`); second precision, in UTC. */
  time?: Date | string;
  /** restic's parent snapshot (unchanged files are not read again). Without it restic picks its own (host and paths). */
  parent?: string;
  /** Read every file again (`--force`): a full, which must not lean on any earlier snapshot. */
  force?: boolean;
  timeoutMs?: number;
}

/** restic backup's summary line. */
export interface BackupSummary {
  snapshotId: string;
  /** Bytes of the files in the snapshot (total_bytes_processed), and the new data added to the repository. */
  bytes: number;
  added: number;
  files: number;
  /** restic's own duration of the backup. */
  seconds: number;
  /**
   * restic exit 3: some source files could not be read, and the snapshot was written without them. The caller decides
   * what to do with an incomplete snapshot (it is `snapshotId`).
   */
  partial?: boolean;
  /** With partial: the first paths restic could not read (at most 20), and how many it named (in its last 128 kB of stderr at least). */
  unreadable?: string[];
  unreadableCount?: number;
}

/** restic's `--time` format ("2006-01-02 15:04:05"), in UTC: restic reads it in its local zone, so backup runs in UTC. */
export function resticTime(t: Date | string): string {
  const d = typeof t === "string" ? new Date(t) : t;
  if (Number.isNaN(d.getTime())) throw new EngineError("Failed", "backup", null, `not a time: ${String(t)}`);
  return d.toISOString().slice(0, 19).replace("T", " ");
}

export class ResticEngine {
  private readonly opts: EngineOptions;
  private readonly running = new Set<ChildProcess>();
  /** Children asked to stop by terminate(): their failure is an interruption, whatever restic says on the way out. */
  private readonly terminated = new WeakSet<ChildProcess>();

  constructor(opts: EngineOptions = {}) {
    this.opts = opts;
  }

  private secretsOf(...repos: Repo[]): string[] {
    const out: string[] = [];
    for (const r of repos)
      for (const [k, v] of Object.entries(r.env ?? {})) if (/SECRET|PASSWORD|TOKEN|KEY/i.test(k) && v.length >= 4) out.push(v);
    return out;
  }

  private scrub(text: string, secrets: string[]): string {
    let out = scrubUrls(text);
    for (const s of secrets) out = out.split(s).join("[redacted]");
    return out;
  }

  private globalArgs(repo: Repo): string[] {
    const args = ["-r", repo.repository, "--password-file", repo.passwordFile];
    if (this.opts.cacheDir) args.push("--cache-dir", this.opts.cacheDir);
    else args.push("--no-cache");
    if (repo.caFile) args.push("--cacert", repo.caFile);
    if (repo.insecureTls) args.push("--insecure-tls");
    for (const [k, v] of Object.entries(repo.options ?? {})) args.push("-o", `${k}=${v}`);
    return args;
  }

  private async run(
    operation: string,
    repo: Repo,
    args: string[],
    opts: {
      from?: Repo;
      timeoutMs?: number;
      stdout?: "collect" | "discard";
      onLine?: (line: string) => void;
      /** Exit codes besides 0 that are an answer, not a failure (backup's 3); such a run resolves even past its deadline. */
      acceptExit?: number[];
      /** The working directory (repair packs writes its backup copies of damaged packs there). */
      cwd?: string;
    } = {},
  ): Promise<RunResult> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? "/tmp",
      TMPDIR: process.env.TMPDIR ?? "/tmp",
      ...repo.env,
    };
    let argv = [...this.globalArgs(repo), ...args];
    if (opts.from) {
      // The source of copy/init --from-repo: its own repository, password file and backend settings.
      argv = [...argv, "--from-repo", opts.from.repository, "--from-password-file", opts.from.passwordFile];
      for (const [k, v] of Object.entries(opts.from.env ?? {})) if (!(k in env)) env[k] = v;
    }
    const secrets = this.secretsOf(repo, ...(opts.from ? [opts.from] : []));
    const timeoutMs = opts.timeoutMs ?? this.opts.timeoutMs ?? 6 * 3600_000;
    return await new Promise<RunResult>((resolve, reject) => {
      const child = spawn(this.opts.binary ?? "restic", argv, { env, cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
      this.running.add(child);
      const out: Buffer[] = [];
      let err = "";
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGTERM"); // restic cleans up its lock on SIGTERM
        setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
      }, timeoutMs);
      let pending = "";
      child.stdout.on("data", (b: Buffer) => {
        if (opts.stdout !== "discard") out.push(b);
        if (!opts.onLine) return;
        pending += b.toString("utf8");
        const lines = pending.split("\n");
        pending = lines.pop() ?? "";
        for (const l of lines) opts.onLine(l);
      });
      let partial = "";
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (s: string) => {
        err += s;
        if (err.length > 256_000) err = err.slice(-128_000);
        if (!this.opts.onProgress && !this.opts.onBackendError) return;
        partial += s;
        const lines = partial.split("\n");
        partial = lines.pop() ?? "";
        for (const l of lines) {
          if (l.startsWith("{")) this.progress(l);
          const cause = this.opts.onBackendError && retryCause(l);
          if (cause) this.opts.onBackendError?.(this.scrub(cause, secrets));
        }
      });
      child.on("error", (e) => {
        clearTimeout(timer);
        reject(new EngineError("Failed", operation, null, this.scrub(e.message, secrets)));
      });
      child.on("close", (code, signal) => {
        this.running.delete(child);
        clearTimeout(timer);
        const stdout = Buffer.concat(out).toString("utf8");
        if (code === 0 && !timedOut) return resolve({ stdout, stderr: err, exitCode: 0 });
        if (code !== null && opts.acceptExit?.includes(code)) return resolve({ stdout, stderr: err, exitCode: code });
        const kind = classify(code, err, timedOut ? "deadline" : this.terminated.has(child) ? "terminate" : false);
        const words = this.scrub(lastWords(err), secrets);
        const detail = timedOut
          ? `no answer within ${Math.round(timeoutMs / 1000)} s${words ? `; last: ${words}` : ""}`
          : words || (signal ? `killed by ${signal}` : `exit code ${code}`);
        reject(new EngineError(kind, operation, code, detail));
      });
    });
  }

  /** Asks every running restic to stop (SIGTERM: restic removes its lock and exits); their calls then fail. */
  terminate(): void {
    for (const c of this.running) {
      this.terminated.add(c);
      c.kill("SIGTERM");
    }
  }

  private progress(line: string): void {
    try {
      const m = JSON.parse(line) as Record<string, unknown>;
      if (m.message_type === "status") this.opts.onProgress?.(m);
    } catch {
      // not a status line
    }
  }

  /** Creates the repository; with `chunkerFrom`, with that repository's chunker parameters (deduplicating copies). */
  async init(repo: Repo, opts: { chunkerFrom?: Repo; timeoutMs?: number } = {}): Promise<string> {
    const args = ["init", "--json"];
    if (opts.chunkerFrom) args.push("--copy-chunker-params");
    const { stdout } = await this.run("init", repo, args, { from: opts.chunkerFrom, timeoutMs: opts.timeoutMs });
    const line = stdout.split("\n").find((l) => l.includes('"initialized"'));
    return line ? (JSON.parse(line) as { id: string }).id : "";
  }

  /** Opens the repository (config and keys): the cheapest proof that location, credentials and password work. */
  async probe(repo: Repo, timeoutMs = 60_000): Promise<void> {
    await this.run("probe", repo, ["cat", "config"], { timeoutMs });
  }

  /** The repository's config (no lock): its ID is the repository's identity. */
  async config(repo: Repo, timeoutMs = 120_000): Promise<{ id: string; version: number }> {
    const { stdout } = await this.run("config", repo, ["cat", "config", "--no-lock"], { timeoutMs });
    const c = JSON.parse(stdout) as { id?: string; version?: number };
    if (!c.id) throw new EngineError("CorruptData", "config", null, "the repository config has no ID");
    return { id: c.id, version: c.version ?? 0 };
  }

  async snapshots(repo: Repo, timeoutMs?: number): Promise<ResticSnapshot[]> {
    const { stdout } = await this.run("snapshots", repo, ["snapshots", "--json", "--no-lock"], { timeoutMs });
    return (JSON.parse(stdout || "[]") as ResticSnapshot[] | null) ?? [];
  }

  /** The jobs in a repository, oldest first. */
  async catalog(repo: Repo, timeoutMs?: number): Promise<CatalogEntry[]> {
    return (await this.snapshots(repo, timeoutMs)).map(toCatalogEntry).sort((a, b) => a.startTime.localeCompare(b.startTime));
  }

  /**
   * Copies the given snapshots (ids in `from`) to `to`. Snapshots whose job is already on `to` are skipped before
   * restic runs, so a repeat copies nothing; returns what was copied and what was skipped. `onCopied` hears of each
   * job as soon as its snapshot is saved on `to` (restic prints that as text, also with --json), so a copy that
   * dies half way still reports the jobs it finished.
   */
  async copy(
    from: Repo,
    to: Repo,
    snapshotIds: string[],
    opts: { timeoutMs?: number; onStart?: (todo: CatalogEntry[]) => void; onCopied?: (job: CatalogEntry, done: number) => void } = {},
  ): Promise<{ copied: string[]; skipped: string[] }> {
    const source = (await this.catalog(from)).filter((e) => snapshotIds.includes(e.snapshotId));
    const unknown = snapshotIds.filter((id) => !source.some((e) => e.snapshotId === id));
    if (unknown.length > 0)
      throw new EngineError("CorruptData", "copy", null, `snapshots not in the source repository: ${unknown.join(", ")}`);
    const todo = missingOn(source, await this.catalog(to));
    const skipped = source.filter((e) => !todo.includes(e)).map((e) => e.snapshotId);
    opts.onStart?.(todo);
    await this.copyJobs(from, to, todo, opts);
    return { copied: todo.map((e) => e.snapshotId), skipped };
  }

  /** Copies jobs known to be missing on `to`, in the given order, reporting each as it is saved. */
  async copyJobs(
    from: Repo,
    to: Repo,
    todo: CatalogEntry[],
    opts: { timeoutMs?: number; onCopied?: (job: CatalogEntry, done: number) => void } = {},
  ): Promise<void> {
    if (todo.length === 0) return;
    let current: CatalogEntry | undefined;
    let done = 0;
    const onLine = (line: string) => {
      const started = /^snapshot ([0-9a-f]{8,64}) of /.exec(line);
      if (started) current = todo.find((e) => e.snapshotId.startsWith(started[1] as string));
      else if (/^snapshot [0-9a-f]{8,64} saved/.test(line) && current) {
        done++;
        opts.onCopied?.(current, done);
        current = undefined;
      }
    };
    await this.run("copy", to, ["copy", ...todo.map((e) => e.snapshotId)], { from, timeoutMs: opts.timeoutMs, onLine });
  }

  /**
   * `retryLockMs`: forget takes restic's exclusive lock, so beside running backups it fails LockHeld at once; with
   * this it waits for them (restic --retry-lock) up to that long.
   */
  async forget(repo: Repo, snapshotIds: string[], opts: { retryLockMs?: number; timeoutMs?: number } = {}): Promise<void> {
    if (snapshotIds.length === 0) return;
    const wait = opts.retryLockMs ? ["--retry-lock", `${Math.ceil(opts.retryLockMs / 1000)}s`] : [];
    await this.run("forget", repo, ["forget", "--json", ...wait, ...snapshotIds], { timeoutMs: opts.timeoutMs });
  }

  /**
   * Replaces one tag of a snapshot (`restic tag --remove old --add new`). restic rewrites the snapshot: the new one has
   * another id (returned) and the old id in `original`. Takes the exclusive lock: `retryLockMs` waits for writers.
   */
  async retag(
    repo: Repo,
    snapshotId: string,
    remove: string,
    add: string,
    opts: { retryLockMs?: number; timeoutMs?: number } = {},
  ): Promise<string> {
    const wait = opts.retryLockMs ? ["--retry-lock", `${Math.ceil(opts.retryLockMs / 1000)}s`] : [];
    const { stdout } = await this.run("tag", repo, ["tag", "--json", ...wait, "--remove", remove, "--add", add, snapshotId], {
      timeoutMs: opts.timeoutMs,
    });
    for (const line of stdout.split("\n")) {
      if (!line.includes('"changed"')) continue;
      const m = JSON.parse(line) as { old_snapshot_id?: string; new_snapshot_id?: string };
      if (m.old_snapshot_id === snapshotId && m.new_snapshot_id) return m.new_snapshot_id;
    }
    throw new EngineError("Failed", "tag", null, `restic tag changed no snapshot ${snapshotId.slice(0, 8)}`);
  }

  /**
   * `restic backup --json` of `paths` with the given host, tags, time and parent. Returns restic's summary; exit 3
   * (some source files could not be read, the snapshot written without them) comes back as `partial` with the
   * snapshot's id, every other failure is an EngineError. Progress (restic's status lines, on stdout for backup)
   * goes to onProgress, about once a second.
   */
  async backup(repo: Repo, paths: string[], opts: BackupOptions): Promise<BackupSummary> {
    if (paths.length === 0) throw new EngineError("Failed", "backup", null, "nothing to back up");
    const args = ["backup", "--json", "--host", opts.host];
    for (const t of opts.tags ?? []) args.push("--tag", t);
    if (opts.time !== undefined) args.push("--time", resticTime(opts.time));
    if (opts.parent) args.push("--parent", opts.parent);
    if (opts.force) args.push("--force");
    args.push("--", ...paths);
    let summary: Record<string, unknown> | undefined;
    const onLine = (line: string) => {
      if (!line.startsWith("{")) return;
      if (!line.includes('"message_type":"summary"')) return this.progress(line);
      try {
        summary = JSON.parse(line) as Record<string, unknown>;
      } catch {
        // a broken line: no summary, reported below
      }
    };
    // TZ: restic reads --time in its local zone. RESTIC_PROGRESS_FPS: with --json restic prints dozens of status
    // lines a second by default; one a second is plenty for the operator, which reads progress every 2 s.
    const env = { ...repo.env, TZ: "UTC", RESTIC_PROGRESS_FPS: "1" };
    const { stderr, exitCode } = await this.run("backup", { ...repo, env }, args, {
      timeoutMs: opts.timeoutMs,
      stdout: "discard",
      onLine,
      acceptExit: [0, 3],
    });
    const id = typeof summary?.snapshot_id === "string" ? summary.snapshot_id : "";
    if (!summary || !id)
      throw new EngineError(
        "Failed",
        "backup",
        exitCode,
        this.scrub(lastWords(stderr), this.secretsOf(repo)) || "restic wrote no snapshot",
      );
    const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
    const out: BackupSummary = {
      snapshotId: id,
      bytes: num(summary.total_bytes_processed),
      added: num(summary.data_added),
      files: num(summary.total_files_processed),
      seconds: Math.round(num(summary.total_duration) * 10) / 10,
    };
    if (exitCode === 3) {
      const unreadable = unreadableItems(stderr);
      Object.assign(out, { partial: true, unreadable: unreadable.slice(0, 20), unreadableCount: unreadable.length });
    }
    return out;
  }

  /**
   * `restic restore --json` of one snapshot (or its `subfolder`) into `target`. Progress goes to onProgress in the
   * shape of backup's status lines (bytes_done, total_bytes, percent_done). Files restored as a non-root user keep
   * that user as owner: restic reports no error for the ownership it cannot set.
   */
  async restore(
    repo: Repo,
    snapshotId: string,
    target: string,
    opts: { subfolder?: string; timeoutMs?: number } = {},
  ): Promise<{ files: number; bytes: number; seconds: number }> {
    const what = opts.subfolder ? `${snapshotId}:${opts.subfolder}` : snapshotId;
    let summary: Record<string, unknown> | undefined;
    const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
    const onLine = (line: string) => {
      if (!line.startsWith("{")) return;
      try {
        const m = JSON.parse(line) as Record<string, unknown>;
        if (m.message_type === "summary") summary = m;
        else if (m.message_type === "status")
          this.opts.onProgress?.({ ...m, bytes_done: num(m.bytes_restored), total_bytes: num(m.total_bytes) });
      } catch {
        // not a JSON line
      }
    };
    const env = { ...repo.env, RESTIC_PROGRESS_FPS: "1" };
    await this.run("restore", { ...repo, env }, ["restore", "--json", what, "--target", target], {
      timeoutMs: opts.timeoutMs,
      stdout: "discard",
      onLine,
    });
    return {
      files: num(summary?.files_restored) || num(summary?.total_files),
      bytes: num(summary?.bytes_restored) || num(summary?.total_bytes),
      seconds: Math.round(num(summary?.seconds_elapsed) * 10) / 10,
    };
  }

  /** Bytes the repository stores (restic stats --mode raw-data: packs after deduplication and compression). */
  async storedBytes(repo: Repo, timeoutMs?: number): Promise<number> {
    const { stdout } = await this.run("stats", repo, ["stats", "--json", "--mode", "raw-data", "--no-lock"], { timeoutMs });
    return Number((JSON.parse(stdout) as { total_size?: number }).total_size ?? 0);
  }

  async prune(repo: Repo, timeoutMs?: number): Promise<void> {
    await this.run("prune", repo, ["prune"], { timeoutMs });
  }

  /** Verifies one job by reading (and authenticating) every blob its snapshot references. */
  async verify(repo: Repo, snapshotId: string, timeoutMs?: number): Promise<void> {
    await this.run("verify", repo, ["dump", "--archive", "tar", snapshotId, "/"], { timeoutMs, stdout: "discard" });
  }

  /** Every pack file's full ID (restic list packs). */
  async packs(repo: Repo, timeoutMs?: number): Promise<string[]> {
    const { stdout } = await this.run("packs", repo, ["list", "packs", "--no-lock"], { timeoutMs });
    return stdout.split("\n").filter((l) => /^[0-9a-f]{64}$/.test(l));
  }

  /**
   * Salvages damaged pack files (restic repair packs, exclusive lock): their intact blobs are written again, the
   * packs leave the index and the repository, and the blobs that were damaged are missing until a copy brings them.
   */
  async repairPacks(repo: Repo, packIds: string[], timeoutMs?: number): Promise<void> {
    const dir = await mkdtemp(join(process.env.TMPDIR ?? tmpdir(), "auxo-repair-"));
    try {
      // restic keeps a copy of each damaged pack in its working directory; the pod's scratch space holds it briefly.
      await this.run("repair", repo, ["repair", "packs", ...packIds], { timeoutMs, cwd: dir });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** The repository's structure; with readData, every pack too. */
  async check(repo: Repo, opts: { readData?: boolean; timeoutMs?: number } = {}): Promise<void> {
    await this.run("check", repo, ["check", ...(opts.readData ? ["--read-data"] : [])], { timeoutMs: opts.timeoutMs });
  }

  /** Locks in the repository (restic list locks). */
  async locks(repo: Repo, timeoutMs?: number): Promise<string[]> {
    const { stdout } = await this.run("locks", repo, ["list", "locks", "--no-lock"], { timeoutMs });
    return stdout
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
  }

  /** Every lock in the repository with its holder (restic list locks, then cat lock; a lock gone meanwhile is left out). */
  async listLocks(repo: Repo, timeoutMs = 120_000): Promise<ResticLock[]> {
    const out: ResticLock[] = [];
    for (const id of await this.locks(repo, timeoutMs)) {
      let stdout: string;
      try {
        ({ stdout } = await this.run("locks", repo, ["cat", "lock", id, "--no-lock"], { timeoutMs }));
      } catch (err) {
        if (err instanceof EngineError && err.kind !== "Unreachable") continue; // removed since the listing
        throw err;
      }
      const l = JSON.parse(stdout) as { time?: string; exclusive?: boolean; hostname?: string; username?: string; pid?: number };
      out.push({ id, time: l.time ?? "", exclusive: !!l.exclusive, hostname: l.hostname ?? "", username: l.username, pid: l.pid });
    }
    return out;
  }

  /**
   * restic's own unlock: removes only the locks restic proves stale (older than 30 minutes, which a live restic never
   * is as it refreshes its lock, or held by a process of this host that is gone). Never --remove-all: that would
   * break another tool's running prune (docs/job-metadata.md).
   */
  async unlock(repo: Repo, timeoutMs = 120_000): Promise<void> {
    await this.run("unlock", repo, ["unlock"], { timeoutMs });
  }
}
