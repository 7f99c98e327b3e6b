// Kubernetes times: RFC 3339 strings in status, milliseconds in the rules. Pure.

/** Milliseconds since the epoch of an API timestamp (RFC 3339, with or without fractional seconds). */
export function parseTime(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** A metav1.Time: RFC 3339 in UTC, whole seconds. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}
