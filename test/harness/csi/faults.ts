// The local CSI driver's state folder and its fault controls, shared by the driver, by tests (which run in other
// processes and know the folder) and by the `fault.ts` CLI. Everything lives in files so that any process can look
// at it or flip it, and the driver re-reads it on every RPC: a record that vanishes under the driver (destroy) is
// simply not found on the next call.
//
//   <dir>/faults.json                         the controls below
//   <dir>/volumes/<volume_id>/volume.json     VolumeRecord
//   <dir>/volumes/<volume_id>/data/           the volume's files
//   <dir>/snapshots/<snapshot_id>/snapshot.json, modes.json, data/   (data is read-only)
//
// A record folder is built under a dot-name and renamed into place when complete, and removed by renaming it
// away first, so a killed driver or CLI never leaves something that looks like a half volume or snapshot.
import { randomBytes } from "node:crypto";
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

export interface Faults {
  /** Volumes whose array is unreachable: their RPCs (and their snapshots') answer UNAVAILABLE. */
  offline: string[];
  /** true: every Controller and Node RPC hangs (Identity keeps answering); a list: the RPCs touching these volumes. */
  hang: boolean | string[];
  /** CreateSnapshot and ListSnapshots report ready_to_use=false until this long after the snapshot's creation_time. */
  snapshotReadyDelaySeconds: number;
  /** CreateSnapshot of these volumes fails with RESOURCE_EXHAUSTED. */
  failSnapshots: string[];
}
// Targets are PVCs as users know them, `namespace/name`, or volume ids.

export function noFaults(): Faults {
  return { offline: [], hang: false, snapshotReadyDelaySeconds: 0, failSnapshots: [] };
}

export const faultsFile = (dir: string): string => path.join(dir, "faults.json");

const strings = (v: unknown, field: string): string[] => {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) throw new Error(`faults.json: ${field} must be a list of strings`);
  return v as string[];
};

/** Parses and checks a faults.json text (a hand-edited file with a typo should fail loudly, not be ignored). */
export function parseFaults(text: string): Faults {
  const raw = JSON.parse(text) as Record<string, unknown>;
  const hang = raw.hang === undefined || typeof raw.hang === "boolean" ? Boolean(raw.hang) : strings(raw.hang, "hang");
  const delay = raw.snapshotReadyDelaySeconds ?? 0;
  if (typeof delay !== "number" || !(delay >= 0)) throw new Error("faults.json: snapshotReadyDelaySeconds must be a number >= 0");
  return {
    offline: strings(raw.offline, "offline"),
    hang,
    snapshotReadyDelaySeconds: delay,
    failSnapshots: strings(raw.failSnapshots, "failSnapshots"),
  };
}

/** The current controls; no file means no faults. */
export function readFaults(dir: string): Faults {
  let text: string;
  try {
    text = readFileSync(faultsFile(dir), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return noFaults();
    throw err;
  }
  return parseFaults(text);
}

/** Writes JSON via a temporary file and rename, so a reader sees the old or the new content, never a half. */
export function writeJsonAtomic(file: string, value: unknown, mode = 0o644): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n", { mode });
  renameSync(tmp, file);
}

/**
 * Replaces the given controls and keeps the others. Read-modify-write without a lock: two processes flipping
 * controls at the same instant can lose one change (tests and users flip one at a time).
 */
export async function setFaults(dir: string, patch: Partial<Faults>): Promise<Faults> {
  return updateFaults(dir, (f) => ({ ...f, ...patch }));
}

export async function updateFaults(dir: string, change: (current: Faults) => Faults): Promise<Faults> {
  mkdirSync(dir, { recursive: true });
  const next = parseFaults(JSON.stringify(change(readFaults(dir))));
  writeJsonAtomic(faultsFile(dir), next);
  return next;
}

// ---- The state folder's records ----

export interface PvcRef {
  namespace: string;
  name: string;
}

export interface VolumeRecord {
  volumeId: string;
  /** CreateVolume's name (the idempotency key). */
  name: string;
  capacityBytes: number;
  created: string;
  source?: { type: "snapshot" | "volume"; id: string };
  /** From csi-provisioner's --extra-create-metadata parameters. */
  pvc?: PvcRef;
  pvName?: string;
}

export interface SnapshotRecord {
  snapshotId: string;
  /** CreateSnapshot's name (the idempotency key). */
  name: string;
  sourceVolumeId: string;
  /** The source volume's PVC, kept so that controls naming the PVC still find its snapshots after it is gone. */
  sourcePvc?: PvcRef;
  /** The moment the copy started (ISO 8601). */
  creationTime: string;
  sizeBytes: number;
  /** From csi-snapshotter's --extra-create-metadata parameters. */
  volumeSnapshot?: PvcRef;
}

export const volumesDir = (dir: string): string => path.join(dir, "volumes");
export const snapshotsDir = (dir: string): string => path.join(dir, "snapshots");
export const volumeFolder = (dir: string, id: string): string => path.join(volumesDir(dir), id);
export const snapshotFolder = (dir: string, id: string): string => path.join(snapshotsDir(dir), id);
export const volumeData = (dir: string, id: string): string => path.join(volumeFolder(dir, id), "data");
export const snapshotData = (dir: string, id: string): string => path.join(snapshotFolder(dir, id), "data");

/** Ids the driver hands out are plain file names; anything else (`..`, slashes, dot-names) names nothing. */
export function isRecordId(id: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id);
}

function readRecord<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw err;
  }
}

export function readVolume(dir: string, id: string): VolumeRecord | undefined {
  return isRecordId(id) ? readRecord<VolumeRecord>(path.join(volumeFolder(dir, id), "volume.json")) : undefined;
}

export function readSnapshot(dir: string, id: string): SnapshotRecord | undefined {
  return isRecordId(id) ? readRecord<SnapshotRecord>(path.join(snapshotFolder(dir, id), "snapshot.json")) : undefined;
}

function recordIds(folder: string): string[] {
  try {
    return readdirSync(folder).filter(isRecordId).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

export function listVolumes(dir: string): VolumeRecord[] {
  return recordIds(volumesDir(dir)).flatMap((id) => readVolume(dir, id) ?? []);
}

/** Every snapshot, sorted by id. */
export function listSnapshots(dir: string): SnapshotRecord[] {
  return recordIds(snapshotsDir(dir)).flatMap((id) => readSnapshot(dir, id) ?? []);
}

/** What a control's target is matched against: a volume, or (for a snapshot) the volume it was taken of. */
export interface Subject {
  volumeId: string;
  pvc?: PvcRef | undefined;
}

export const snapshotSubject = (s: SnapshotRecord): Subject => ({ volumeId: s.sourceVolumeId, pvc: s.sourcePvc });

export function matches(target: string, subject: Subject): boolean {
  return target === subject.volumeId || (subject.pvc !== undefined && target === `${subject.pvc.namespace}/${subject.pvc.name}`);
}

/** `pvc-1234 (team/data)`, as messages name a volume. */
export function describe(subject: Subject): string {
  return subject.pvc ? `${subject.volumeId} (${subject.pvc.namespace}/${subject.pvc.name})` : subject.volumeId;
}

export function findVolumes(dir: string, target: string): VolumeRecord[] {
  return listVolumes(dir).filter((v) => matches(target, v));
}

/** Makes every folder under `root` writable again (snapshots are read-only) so that it can be removed. */
function makeRemovable(root: string): void {
  const walk = (p: string): void => {
    const st = lstatSync(p);
    if (!st.isDirectory()) return;
    chmodSync(p, st.mode | 0o700);
    for (const name of readdirSync(p)) walk(path.join(p, name));
  };
  walk(root);
}

/** Removes a record folder: renamed away first (it stops existing at once), then deleted. Absent is fine. */
export function removeRecordFolder(folder: string): boolean {
  const aside = path.join(path.dirname(folder), `.removing-${path.basename(folder)}-${randomBytes(4).toString("hex")}`);
  try {
    renameSync(folder, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
  makeRemovable(aside);
  rmSync(aside, { recursive: true, force: true });
  return true;
}

/** Leftovers of a killed driver or CLI: half-built and half-removed record folders (dot-names). */
export function removeLeftovers(dir: string): string[] {
  const gone: string[] = [];
  for (const folder of [volumesDir(dir), snapshotsDir(dir)]) {
    let names: string[];
    try {
      names = readdirSync(folder);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!/^\.(tmp|removing)-/.test(name)) continue;
      const p = path.join(folder, name);
      if (statSync(p).isDirectory()) makeRemovable(p);
      rmSync(p, { recursive: true, force: true });
      gone.push(p);
    }
  }
  return gone;
}

/**
 * Loses a volume as a failed array would: its data and record and every snapshot of it (data and record) are
 * deleted, so every RPC on them answers NOT_FOUND afterwards (DeleteVolume, DeleteSnapshot and NodeUnpublishVolume
 * still answer OK, as CSI's idempotency rules say, so Kubernetes can clean up). A one-shot action, not a standing
 * control: it works on the files whether or not the driver runs. `target` is `namespace/name` of the PVC (every
 * volume and snapshot recorded for it) or a volume id. Throws when nothing matches.
 */
export async function destroyVolume(dir: string, target: string): Promise<{ volumes: string[]; snapshots: string[] }> {
  const volumes = findVolumes(dir, target);
  const ids = new Set(volumes.map((v) => v.volumeId));
  // Also the snapshots of an earlier volume of the same PVC, which outlive their volume.
  const snapshots = listSnapshots(dir).filter((s) => ids.has(s.sourceVolumeId) || matches(target, snapshotSubject(s)));
  if (volumes.length === 0 && snapshots.length === 0) throw new Error(`no volume or snapshot of ${target} in ${dir}`);
  for (const s of snapshots) removeRecordFolder(snapshotFolder(dir, s.snapshotId));
  for (const v of volumes) removeRecordFolder(volumeFolder(dir, v.volumeId));
  return { volumes: [...ids], snapshots: snapshots.map((s) => s.snapshotId) };
}
