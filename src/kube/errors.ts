// One place that knows how the API server reports errors (a Status object with code and reason).

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: unknown;
  /** The API server's own message (Status.message), without the request line. */
  readonly apiMessage: string;
  /** Seconds the server asked to wait (429, 503), when it said. */
  readonly retryAfterSeconds?: number;

  constructor(method: string, path: string, code: number, body: unknown, retryAfter?: string | null) {
    const status = (typeof body === "object" && body !== null ? body : {}) as { reason?: string; message?: string; details?: unknown };
    super(`${method} ${path}: ${code} ${status.reason ?? ""}${status.message ? `: ${status.message}` : ""}`.trim());
    this.name = "ApiError";
    this.code = code;
    this.reason = status.reason ?? "";
    this.details = status.details;
    this.apiMessage = status.message ?? `${code} ${status.reason ?? ""}`.trim();
    const ra = retryAfter ? Number(retryAfter) : Number.NaN;
    if (Number.isFinite(ra)) this.retryAfterSeconds = ra;
  }
}

const is = (code: number) => (err: unknown) => err instanceof ApiError && err.code === code;

export const isNotFound = is(404);
export const isConflict = is(409);
/** 410: the resourceVersion asked for is older than the server keeps; relist. */
export const isGone = (err: unknown): boolean => is(410)(err) || (err instanceof ApiError && err.reason === "Expired");
export const isTooManyRequests = is(429);

/**
 * The API server refused the object itself (invalid, forbidden by admission, RBAC or a quota): sending it again
 * unchanged cannot succeed, so the caller reports it on its owner instead of retrying in a loop.
 */
export const isRejected = (err: unknown): boolean => err instanceof ApiError && [400, 403, 422].includes(err.code);
