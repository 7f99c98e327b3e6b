// restic's failures, sorted into what a controller can act on: retry later, or report and wait for a fix.
// restic ≥ 0.17 exit codes: 10 no repository, 11 lock failed, 12 wrong password, 130 interrupted.

export type EngineErrorKind =
  "WrongPassword" | "RepositoryNotFound" | "RepositoryExists" | "LockHeld" | "CorruptData" | "Unreachable" | "Interrupted" | "Failed";

const retryable: Record<EngineErrorKind, boolean> = {
  WrongPassword: false,
  RepositoryNotFound: false,
  RepositoryExists: false,
  LockHeld: true,
  CorruptData: false,
  Unreachable: true,
  Interrupted: true,
  Failed: true,
};

const summary: Record<EngineErrorKind, string> = {
  WrongPassword: "the repository password is wrong (or no key in the repository matches it)",
  RepositoryNotFound: "there is no restic repository at this location",
  RepositoryExists: "a restic repository already exists at this location",
  LockHeld: "the repository is locked by another operation",
  CorruptData: "the repository holds corrupt or missing data",
  Unreachable: "the repository's storage cannot be reached",
  Interrupted: "restic was interrupted",
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

  constructor(kind: EngineErrorKind, operation: string, exitCode: number | null, detail: string) {
    super(`${operation}: ${summary[kind]}${detail ? `: ${detail}` : ""}`);
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
  /TLS handshake/i,
  /context deadline exceeded/i,
];
const corruptPatterns = [
  /ciphertext verification failed/i,
  /pack .* (contains|does not exist|is damaged)/i,
  /data .* (is missing|not found)/i,
  /errors were found/i,
  /blob .* not found/i,
  /hash mismatch/i,
  /invalid data returned/i,
  /Load\(<data\//i,
];

/** Sorts a failed restic run by exit code, then by what it printed. `timedOut` = Auxo killed it at its deadline. */
export function classify(exitCode: number | null, stderr: string, timedOut: boolean): EngineErrorKind {
  if (exitCode === 12) return "WrongPassword";
  if (exitCode === 10) return "RepositoryNotFound";
  if (exitCode === 11) return "LockHeld";
  if (/config file already exists|already initialized|repository .*already exists/i.test(stderr)) return "RepositoryExists";
  if (/wrong password|no key found/i.test(stderr)) return "WrongPassword";
  if (/repository is already locked/i.test(stderr)) return "LockHeld";
  if (corruptPatterns.some((p) => p.test(stderr))) return "CorruptData";
  if (networkPatterns.some((p) => p.test(stderr))) return "Unreachable";
  if (timedOut) return "Unreachable";
  if (exitCode === 130) return "Interrupted";
  return "Failed";
}

// Terminal control sequences restic writes around its progress lines.
const ansiEscape = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, "g");

/** The most telling line of restic's stderr: its JSON exit_error message, else the last non-empty line. */
export function lastWords(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  for (const l of [...lines].reverse()) {
    if (l.startsWith("{")) {
      try {
        const m = JSON.parse(l) as { message_type?: string; message?: string };
        if (m.message_type === "exit_error" && m.message) return m.message.replace(/\s+/g, " ").trim();
      } catch {
        // not JSON
      }
    }
  }
  const retry = [...lines].reverse().find((l) => /returned error, retrying/.test(l));
  return (retry ?? lines.at(-1) ?? "").replace(ansiEscape, "").slice(0, 500);
}
