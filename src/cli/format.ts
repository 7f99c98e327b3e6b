// How kubectl auxo prints: tables like kubectl get (upper-case headers, columns padded by two spaces), sizes and ages
// as kubectl shows them, a progress bar for a terminal. Pure functions.

/** Columns padded to their widest cell, two spaces apart, like kubectl get. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join("   ")
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join("\n")}\n`;
}

/** Bytes in binary units with at most one decimal (1.5GiB), or "-". */
export function size(bytes: number | undefined): string {
  if (bytes === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v}B` : `${v < 10 ? v.toFixed(1).replace(/\.0$/, "") : Math.round(v)}${units[u]}`;
}

/** A duration as kubectl prints ages: 45s, 12m, 3h20m, 5d, 2y. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  return d < 730 ? `${d}d` : `${Math.floor(d / 365)}y`;
}

/** The time since `iso`, or "-". */
export const age = (iso: string | undefined, now: number): string => {
  const t = iso ? Date.parse(iso) : Number.NaN;
  return Number.isNaN(t) ? "-" : duration(now - t);
};

/** A time as the tables show it: UTC, to the second. */
export const when = (iso: string | undefined): string => {
  const t = iso ? Date.parse(iso) : Number.NaN;
  return Number.isNaN(t) ? "-" : `${new Date(t).toISOString().slice(0, 19)}Z`;
};

/** `[=========>          ]  45%  1.2GiB/2.6GiB` */
export function progressBar(done: number, total: number | undefined, width = 30, unit: (n: number) => string = size): string {
  if (!total || total <= 0) return `${unit(done)}`;
  const f = Math.min(1, Math.max(0, done / total));
  const full = Math.floor(f * width);
  const bar = `${"=".repeat(full)}${full < width ? ">" : ""}`.padEnd(width).slice(0, width);
  return `[${bar}] ${String(Math.floor(f * 100)).padStart(3)}%  ${unit(done)}/${unit(total)}`;
}

export class UsageError extends Error {}

/**
 * --since: a duration back from now (90m, 36h, 7d, 2w) or a date or time (2026-11-30, 2026-11-30T08:00:00Z).
 * Returns the earliest start time in ms.
 */
export function parseSince(value: string, now: number): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d|w)$/.exec(value);
  if (m) return now - Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as "s"];
  const t = Date.parse(value);
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(t)) return t;
  throw new UsageError(`--since: "${value}" is neither a duration (90m, 36h, 7d, 2w) nor a date (2026-11-30, 2026-11-30T08:00:00Z)`);
}
