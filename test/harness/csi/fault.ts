// Flips the world's CSI driver fault controls (test/harness/csi/faults.ts) from a shell:
//   node test/harness/csi/fault.ts [--dir <csi state folder>] <command>
// Without --dir it uses the world of `make run`, through .run/world.json (its csi.dir).
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { repoRoot } from "../tools.ts";
import { type Faults, destroyVolume, findVolumes, listSnapshots, listVolumes, readFaults, setFaults } from "./faults.ts";

const usage = `usage: node test/harness/csi/fault.ts [--dir <csi state folder>] <command>
  offline <ns/pvc>             the volume and its snapshots answer UNAVAILABLE
  online <ns/pvc>              undoes offline
  hang on|off [ns/pvc]         Controller and Node calls (all, or those on the volume) never answer
  destroy <ns/pvc>             deletes the volume and its snapshots, as a lost array would (NOT_FOUND after)
  slow-snapshots <seconds>     new snapshots report ready_to_use=false that long (0: off)
  fail-snapshots on|off <ns/pvc>   snapshots of the volume fail with RESOURCE_EXHAUSTED
  show                         the controls, volumes and snapshots
A target is a claim as namespace/name, or a volume id.`;

class UsageError extends Error {}

function stateDir(given: string | undefined): string {
  if (given) return path.resolve(given);
  const info = path.join(repoRoot, ".run", "world.json");
  let dir: unknown;
  try {
    dir = JSON.parse(readFileSync(info, "utf8")).csi?.dir;
  } catch (err) {
    throw new Error(`no --dir, and ${info} cannot be read (is \`make run\` running?): ${(err as Error).message}`, { cause: err });
  }
  if (typeof dir !== "string") throw new Error(`${info} names no csi.dir; pass --dir`);
  return dir;
}

const without = (list: string[], t: string): string[] => list.filter((x) => x !== t);
const withT = (list: string[], t: string): string[] => [...without(list, t), t];

function onOff(v: string | undefined): boolean {
  if (v === "on" || v === "off") return v === "on";
  throw new UsageError(`expected on or off, not ${v ?? "nothing"}`);
}

function target(v: string | undefined): string {
  if (!v) throw new UsageError("a target (namespace/name of the claim, or a volume id) is needed");
  return v;
}

function show(dir: string, faults: Faults): string {
  const lines = [`controls (${path.join(dir, "faults.json")}):`, JSON.stringify(faults, null, 2), "volumes:"];
  for (const v of listVolumes(dir)) {
    const pvc = v.pvc ? `${v.pvc.namespace}/${v.pvc.name}` : "-";
    lines.push(`  ${v.volumeId}  claim ${pvc}  ${v.capacityBytes} bytes${v.source ? `  from ${v.source.type} ${v.source.id}` : ""}`);
  }
  lines.push("snapshots:");
  for (const s of listSnapshots(dir)) {
    const vs = s.volumeSnapshot ? `${s.volumeSnapshot.namespace}/${s.volumeSnapshot.name}` : "-";
    lines.push(`  ${s.snapshotId}  of ${s.sourceVolumeId}  VolumeSnapshot ${vs}  ${s.sizeBytes} bytes  taken ${s.creationTime}`);
  }
  return lines.join("\n");
}

async function main(argv: string[]): Promise<string> {
  const { values, positionals } = parseArgs({ args: argv, options: { dir: { type: "string" } }, allowPositionals: true, strict: true });
  const dir = stateDir(values.dir);
  const [command, a, b] = positionals;
  const f = readFaults(dir);
  const note = (t: string): string =>
    findVolumes(dir, t).length === 0 ? `\n(no volume of ${t} yet: the control applies once there is one)` : "";
  switch (command) {
    case "offline":
    case "online": {
      const t = target(a);
      const next = await setFaults(dir, { offline: command === "offline" ? withT(f.offline, t) : without(f.offline, t) });
      return `offline: ${JSON.stringify(next.offline)}${note(t)}`;
    }
    case "hang": {
      const on = onOff(a);
      let hang: Faults["hang"];
      if (!b) hang = on;
      else if (f.hang === true) {
        if (!on) throw new UsageError("every call hangs (hang on); `hang off` ends that");
        hang = true;
      } else {
        const list = on ? withT(f.hang || [], b) : without(f.hang || [], b);
        hang = list.length > 0 ? list : false;
      }
      const next = await setFaults(dir, { hang });
      return `hang: ${JSON.stringify(next.hang)}${b ? note(b) : ""}`;
    }
    case "destroy": {
      const gone = await destroyVolume(dir, target(a));
      return `destroyed volumes ${gone.volumes.join(", ") || "-"} and snapshots ${gone.snapshots.join(", ") || "-"}`;
    }
    case "slow-snapshots": {
      const s = Number(a);
      if (a === undefined || !(s >= 0)) throw new UsageError("slow-snapshots needs a number of seconds (0 turns it off)");
      const next = await setFaults(dir, { snapshotReadyDelaySeconds: s });
      return `snapshotReadyDelaySeconds: ${next.snapshotReadyDelaySeconds}`;
    }
    case "fail-snapshots": {
      const on = onOff(a);
      const t = target(b);
      const next = await setFaults(dir, { failSnapshots: on ? withT(f.failSnapshots, t) : without(f.failSnapshots, t) });
      return `failSnapshots: ${JSON.stringify(next.failSnapshots)}${note(t)}`;
    }
    case "show":
      return show(dir, f);
    default:
      throw new UsageError(command ? `unknown command ${command}` : "a command is needed");
  }
}

try {
  process.stdout.write((await main(process.argv.slice(2))) + "\n");
} catch (err) {
  const usageError = err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS");
  process.stderr.write(`${(err as Error).message}\n${usageError ? usage + "\n" : ""}`);
  process.exit(usageError ? 2 : 1);
}
