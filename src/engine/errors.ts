// restic's failures, sorted into what a controller can act on: retry later, or report and wait for a fix.
// restic ≥ 0.17 exit codes: 10 no repository, 11 lock failed, 12 wrong password, 130 interrupted.

export type EngineErrorKind =
  | "WrongPassword"
  | "RepositoryNotFound"
  | "RepositoryExists"
  | "RepositoryMismatch"
  | "LockHeld"
  | "CorruptData"
  | "Unreachable"
  | "ClockSkew"
  | "Interrupted"
  | "JobNotFound"
  | "Failed";

const retryable: Record<EngineErrorKind, boolean> = {
  WrongPassword: false,
  RepositoryNotFound: false,
  RepositoryExists: false,
  RepositoryMismatch: false,
  LockHeld: true,
  CorruptData: false,
  Unreachable: true,
  ClockSkew: true,
  Interrupted: true,
  JobNotFound: false,
  Failed: true,
};

const summary: Record<EngineErrorKind, string> = {
  WrongPassword: "the repository password is wrong (or no key in the repository matches it)",
  RepositoryNotFound: "there is no restic repository at this location",
  RepositoryExists: "a restic repository already exists at this location",
  RepositoryMismatch: "a different repository is at this location",
  LockHeld: "the repository is locked by another operation",
  CorruptData: "the repository holds corrupt or missing data",
  Unreachable: "the repository's storage cannot be reached",
  ClockSkew: "this node's clock differs from the operator's",
  Interrupted: "restic was interrupted",
  JobNotFound: "the job is not in this repository",
  Failed: "restic failed",
};

export class EngineError extends Error {
  readonly kind: EngineErrorKind;
  readonly retryable: boolean;
  readonly exitCode: number | null;
  /** restic's own last words (already scrubbed of secrets). */
  readonly detail: string;
  /** What the operation finished before it failed (a copy's jobs), for the caller's result. */
  details?: Record<string, unknown>;

  /** `message` replaces the generated "<operation>: <summary>: <detail>" when the caller words it whole. */
  constructor(kind: EngineErrorKind, operation: string, exitCode: number | null, detail: string, message?: string) {
    super(message ?? `${operation}: ${summary[kind]}${detail ? `: ${detail}` : ""}`);
    this.name = "EngineError";
    this.kind = kind;
    this.retryable = retryable[kind];
    this.exitCode = exitCode;
    this.detail = detail;
  }
}

const networkPatterns = [
  /connection refused/i,
  /dial tcp/i,
  /no such host/i,
  /i\/o timeout/i,
  /timeout awaiting/i,
  /network is unreachable/i,
  /connection reset/i,
  /broken pipe/i,
  /unexpected EOF/i,
  /TLS handshake/i,
  /context deadline exceeded/i,
  /server closed idle connection/i,
];
// Signs of damaged data in restic's final error. `Load(<data/…>)` is not one: it names a pack restic was reading,
// whatever went wrong (mostly the network).
const corruptPatterns = [
  /ciphertext verification failed/i,
  /pack .* (contains|does not exist|is damaged)/i,
  /data .* (is missing|not found)/i,
  /errors were found/i,
  /repository contains errors/i,
  /damaged pack/i,
  /blob .* not found/i,
  /\bid [0-9a-f]{8,64} not found in repository/i, // a blob the index lost (after repair packs): the copy brings it again
  /hash mismatch/i,
  /invalid data returned/i,
  /unexpected file size/i,
];

// Terminal control sequences restic writes around its progress lines.
const ansiEscape = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, "g");
/** A backend warning restic prints while it retries on its own (retry.New in cmd/restic/global.go). */
const retryLine = /^(.*?) returned error, retrying after [^:]+: (.*)$/;
const signalLine = /^signal \w+ received/;
// Lines that say nothing about the failure: a retry that worked, restic's hint under a lock error, Go stack frames.
const noiseLines = [
  /operation successful after \d+ retries$/,
  /^the `unlock` command can be used to remove stale locks$/,
  /^repo already locked, waiting up to/,
  /^\S+\.go:\d+$/,
  /^(github\.com|golang\.org|google\.golang\.org|runtime|main)[./]\S+$/,
];

/** restic's stderr, read for its failure. */
export interface ResticStderr {
  /**
   * The final error: the JSON exit_error message, else the lines that are neither retry warnings nor noise (of a
   * signalled run, those before the signal).
   */
  final: string;
  /** The cause of the last backend retry, if restic retried. */
  retryCause?: string;
  /** restic was stopped by a signal: what it printed after that is the stop's echo (context canceled, no key found). */
  signalled: boolean;
}

export function readStderr(stderr: string): ResticStderr {
  let lines = stderr
    .split("\n")
    .map((l) => l.replace(ansiEscape, "").trim())
    .filter(Boolean);
  const sig = lines.findIndex((l) => signalLine.test(l));
  if (sig >= 0) lines = lines.slice(0, sig);
  let retryCause: string | undefined;
  let exitError: string | undefined;
  const text: string[] = [];
  // "Is there a repository at the following location?" is followed by the location: neither is the cause.
  let skipNext = false;
  for (const l of lines) {
    if (skipNext) {
      skipNext = false;
      continue;
    }
    if (l.startsWith("{")) {
      try {
        const m = JSON.parse(l) as { message_type?: string; message?: string };
        if (m.message_type === "exit_error" && m.message) exitError = m.message.replace(/\s+/g, " ").trim();
        continue;
      } catch {
        // not JSON: a text line
      }
    }
    const retry = retryLine.exec(l);
    if (retry) {
      retryCause = retry[2];
      continue;
    }
    if (/^Is there a repository at the following location\?$/.test(l)) {
      skipNext = true;
      continue;
    }
    if (noiseLines.some((p) => p.test(l))) continue;
    text.push(l);
  }
  return {
    final: exitError ?? text.join("\n"),
    retryCause,
    signalled: sig >= 0,
  };
}

/**
 * Sorts a failed restic run by its final error, never by the warnings restic printed while it retried. `stopped`:
 * Auxo stopped it, "deadline" at its deadline (restic was still retrying or waiting on its storage: Unreachable),
 * "terminate" on a pod's SIGTERM (Interrupted). What restic prints after a signal (context canceled, even "wrong
 * password or no key found" and exit 12 when the key was being read) is the stop's echo, not a cause.
 */
export function classify(exitCode: number | null, stderr: string, stopped: boolean | "deadline" | "terminate"): EngineErrorKind {
  if (stopped === true || stopped === "deadline") return "Unreachable";
  const s = readStderr(stderr);
  if (stopped === "terminate" || s.signalled) return "Interrupted";
  const text = s.final;
  if (exitCode === 12) return "WrongPassword";
  if (exitCode === 10) return "RepositoryNotFound";
  if (exitCode === 11) return "LockHeld";
  if (/config file already exists|already initialized|repository .*already exists/i.test(text)) return "RepositoryExists";
  if (/wrong password|no key found/i.test(text)) return "WrongPassword";
  if (/repository is already locked/i.test(text)) return "LockHeld";
  if (networkPatterns.some((p) => p.test(text))) return "Unreachable";
  if (corruptPatterns.some((p) => p.test(text))) return "CorruptData";
  if (!text && s.retryCause && networkPatterns.some((p) => p.test(s.retryCause as string))) return "Unreachable";
  if (exitCode === 130) return "Interrupted";
  return "Failed";
}

/**
 * The most telling words of restic's stderr: its final error (from its last "Fatal:" or lock line on), else the
 * cause of its last retry (a run stopped at a deadline: why it was waiting, not the repository address it printed
 * on the way out), else the last line.
 */
export function lastWords(stderr: string): string {
  const s = readStderr(stderr);
  let out = "";
  if (s.signalled && s.retryCause) out = s.retryCause;
  else if (s.final) {
    const lines = s.final.split("\n");
    let from = -1;
    for (let i = lines.length - 1; i >= 0 && from < 0; i--)
      if (/^(Fatal: |unable to |error: )|repository is already locked/i.test(lines[i] as string)) from = i;
    out = (from >= 0 ? lines.slice(from) : lines.slice(-1)).join(" ");
  } else if (s.retryCause) out = s.retryCause;
  return out.replace(/\s+/g, " ").trim().slice(0, 500);
}

/** The cause in one of restic's retry warnings, or undefined for any other line. */
export function retryCause(line: string): string | undefined {
  return retryLine.exec(line.replace(ansiEscape, "").trim())?.[2];
}

/**
 * The pack restic names in a damaged blob's error ("decrypting blob <data/6dee4085> from 11245dfd failed"), as the
 * short prefix restic prints; undefined when the error names none (a blob missing from the index, say).
 */
export function damagedPackOf(message: string): string | undefined {
  return /blob <[a-z]+\/[0-9a-f]+> from ([0-9a-f]{8,64}) failed/.exec(message)?.[1];
}
