// The mount table as the harness reads it (/proc/self/mountinfo): one parser for the CSI driver (is this target
// mounted, read-only?) and the node runner (what is still mounted under a folder it is about to remove).
import { readFileSync } from "node:fs";
import path from "node:path";

export interface MountEntry {
  mountPoint: string;
  /** The mounted folder inside its filesystem (a bind mount's source, relative to that filesystem's root). */
  root: string;
  options: string[];
}

// mountinfo escapes space, tab, newline and backslash as octal.
const unescapeMount = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The entries of a mountinfo text, in its order (mount order). */
export function parseMountinfo(text: string): MountEntry[] {
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const f = line.split(" ");
      return { root: unescapeMount(f[3] ?? ""), mountPoint: unescapeMount(f[4] ?? ""), options: (f[5] ?? "").split(",") };
    });
}

/** This process's mount table. */
export function readMounts(): MountEntry[] {
  return parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"));
}

/**
 * The mount points strictly under `dir`, deepest first (unmounting a parent first would hide its children), each
 * as often as it is mounted (stacked mounts need one unmount each).
 */
export function mountPointsUnder(points: string[], dir: string): string[] {
  const base = path.resolve(dir);
  const prefix = base === "/" ? "/" : `${base}/`;
  const depth = (p: string) => p.split("/").length;
  return points
    .filter((p) => p.startsWith(prefix) && p !== base)
    .map((p, i) => ({ p, i }))
    .sort((a, b) => depth(b.p) - depth(a.p) || b.i - a.i)
    .map((x) => x.p);
}
