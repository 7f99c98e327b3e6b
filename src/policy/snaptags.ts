// The tags of a snapshot copy (docs/job-metadata.md, "Snapshot copies"): one restic snapshot per VolumeSnapshot, a
// full job of its PVC (client = namespace, subclient = PVC) with the job tags of catalog.ts, plus the SnapVault and
// the VolumeSnapshot it copies. The uid tag is what makes a copy findable on its destination, so a VolumeSnapshot is
// never copied twice to one repository. Pure functions.
import type { SnapCopyTask } from "../mediaagent/protocol.ts";
import { type JobStatus, type JobType, TAG_PREFIX, tagsFor } from "./catalog.ts";

export const SNAP_TAGS = {
  snapVault: `${TAG_PREFIX}snapvault`,
  volumeSnapshot: `${TAG_PREFIX}volumesnapshot`,
  uid: `${TAG_PREFIX}volumesnapshot-uid`,
  handle: `${TAG_PREFIX}snapshot-handle`,
} as const;

/** What a snapshot copy's tags say of the VolumeSnapshot it copies. */
export interface SnapCopyOrigin {
  snapVault: string;
  volumeSnapshot: string;
  uid: string;
  handle?: string;
}

// restic splits --tag values at commas (the same cleaning as catalog.ts's tagsFor).
const clean = (v: string) => v.replace(/,/g, "_");

/** The restic tags of one VolumeSnapshot's copy (a vault or mirror copy is a full; a backup copy has its type). */
export function snapCopyTags(task: SnapCopyTask, type: JobType = "full", status: JobStatus = task.status): string[] {
  const vs = task.volumeSnapshot;
  return [
    ...tagsFor({ jobId: task.jobId, type, status, client: task.client, subclient: task.subclient }),
    `${SNAP_TAGS.snapVault}=${clean(task.snapVault)}`,
    `${SNAP_TAGS.volumeSnapshot}=${clean(vs.name)}`,
    `${SNAP_TAGS.uid}=${clean(vs.uid)}`,
    ...(vs.handle ? [`${SNAP_TAGS.handle}=${clean(vs.handle)}`] : []),
  ];
}

const valueOf = (tags: string[], key: string): string | undefined => tags.find((t) => t.startsWith(`${key}=`))?.slice(key.length + 1);

/** The VolumeSnapshot a snapshot copy holds, read back from its tags; undefined for any snapshot without the uid tag. */
export function snapCopyOf(tags: string[] | undefined): SnapCopyOrigin | undefined {
  const t = tags ?? [];
  const uid = valueOf(t, SNAP_TAGS.uid);
  if (!uid) return undefined;
  const handle = valueOf(t, SNAP_TAGS.handle);
  return {
    snapVault: valueOf(t, SNAP_TAGS.snapVault) ?? "",
    volumeSnapshot: valueOf(t, SNAP_TAGS.volumeSnapshot) ?? "",
    uid,
    ...(handle ? { handle } : {}),
  };
}

/**
 * The job id of a VolumeSnapshot's copy: readable, and unique per VolumeSnapshot (a VolumeSnapshot deleted and cut
 * again under the same name has another uid): `<namespace>-<name>-<first 8 of uid>`.
 */
export function snapJobId(namespace: string, vsName: string, vsUid: string): string {
  return clean(`${namespace}-${vsName}-${vsUid.replace(/-/g, "").slice(0, 8)}`);
}
