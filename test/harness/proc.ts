// Long-running child processes of the local world (etcd, kube-apiserver, ...). Each runs in its own process group
// under `setpriv --pdeathsig SIGKILL`, so it dies with the harness even if the harness itself is killed, and
// stop() can signal the whole group. Output goes to a log file that tests print when something fails.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { FatalError, sleep } from "./net.ts";

export interface ProcessOptions {
  name: string;
  command: string;
  args: string[];
  /** Where stdout and stderr go; "inherit" shares the harness's terminal (make run shows the operator's log). */
  logFile: string | "inherit";
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Signals a process group; ESRCH (already gone) is not an error. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/** True while any process of the group exists. */
export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

const live = new Set<ManagedProcess>();
// Last resort for a harness that exits without stopping its children (an uncaught error, process.exit()).
process.once("exit", () => {
  for (const p of live) p.killNow();
});

export class ManagedProcess {
  readonly opts: ProcessOptions;
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  exitCode: number | null = null;

  constructor(opts: ProcessOptions) {
    this.opts = opts;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    const fd = this.opts.logFile === "inherit" ? "inherit" : openSync(this.opts.logFile, "a");
    const child = spawn("setpriv", ["--pdeathsig", "SIGKILL", "--", this.opts.command, ...this.opts.args], {
      cwd: this.opts.cwd,
      env: this.opts.env ?? process.env,
      detached: true, // own process group
      stdio: ["ignore", fd, fd],
    });
    if (typeof fd === "number") closeSync(fd);
    this.child = child;
    this.exitCode = null;
    live.add(this);
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitCode = code ?? (signal ? 128 : null);
        live.delete(this);
        resolve(code);
      });
      child.once("error", () => {
        this.exitCode = 127;
        live.delete(this);
        resolve(127);
      });
    });
  }

  /** SIGTERM to the group, then SIGKILL after `graceMs`; resolves when the main process has exited. */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    const pid = child.pid;
    if (this.running) {
      killGroup(pid, "SIGTERM");
      const timer = sleep(graceMs).then(() => "timeout" as const);
      if ((await Promise.race([this.exited.then(() => "exited" as const), timer])) === "timeout") {
        killGroup(pid, "SIGKILL");
        await this.exited;
      }
    }
    // Helpers a component left behind in its group go too.
    killGroup(pid, "SIGKILL");
  }

  killNow(): void {
    if (this.child?.pid) killGroup(this.child.pid, "SIGKILL");
  }

  /** The end of the log, for error messages. */
  tail(lines = 40): string {
    try {
      return readFileSync(this.opts.logFile, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  /** Throws with the log's tail if the process has exited (used while waiting for readiness). */
  assertRunning(): void {
    if (this.child && !this.running) {
      throw new ExitedError(`${this.opts.name} exited with ${this.exitCode}; last log lines:\n${this.tail()}`);
    }
  }
}

export class ExitedError extends FatalError {}
