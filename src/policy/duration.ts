// Go-style durations, as Kubernetes components and Auxo's API take them: "15s", "500ms", "2m", "1m30s".

export class DurationError extends Error {}

export function parseDuration(field: string, value: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
    matched = re.lastIndex;
  }
  if (!value || matched !== value.length) throw new DurationError(`--${field}: "${value}" is not a duration (examples: 15s, 500ms, 1m30s)`);
  return total;
}
