// When to probe a library: every probeInterval while it is healthy; while it is down, with an exponential
// back-off (a circuit breaker: one probe pod at a time, 30 s doubling to 30 minutes) instead of a storm of pods.
import { parseDuration } from "./duration.ts";

export interface ProbeState {
  lastProbeTime?: number;
  consecutiveFailures: number;
  probeInterval: string; // e.g. "5m"
}

export function probeBackoffMs(consecutiveFailures: number, baseMs = 30_000): number {
  if (consecutiveFailures <= 0) return 0;
  return Math.min(baseMs * 2 ** (consecutiveFailures - 1), 30 * 60_000);
}

/** Milliseconds since the epoch at which the next probe is due. */
export function nextProbeAt(s: ProbeState): number {
  if (s.lastProbeTime === undefined) return 0;
  const wait = s.consecutiveFailures > 0 ? probeBackoffMs(s.consecutiveFailures) : parseDuration("probeInterval", s.probeInterval);
  return s.lastProbeTime + wait;
}
