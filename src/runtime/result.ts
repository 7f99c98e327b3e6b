// The reconcile contract, after controller-runtime: return done() or requeueAfter(ms); throw to retry with
// per-item exponential backoff; throw a TerminalError for a failure that no retry can fix (it is counted and
// logged, and the object waits for its next change).

export interface Result {
  requeueAfterMs?: number;
}

export const done = (): Result => ({});
export const requeueAfter = (ms: number): Result => ({ requeueAfterMs: ms });

export class TerminalError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TerminalError";
  }
}
