// Pure rules of the local node runner for PersistentVolumeClaims: what the scheduler waits for, what the kubelet
// mounts (a CSI volume through NodePublishVolume, a hostPath/local path, or the runner's stand-in disk) and
// the messages users see. No I/O, so unit tests cover them.
import path from "node:path";
import type { Obj } from "../kube-rest.ts";

/** A NodePublishVolumeRequest (csi.proto's snake_case field names). */
export interface NodePublishRequest {
  volume_id: string;
  publish_context: Record<string, string>;
  target_path: string;
  volume_capability: { mount: { fs_type: string; mount_flags: string[] }; access_mode: { mode: string } };
  readonly: boolean;
  volume_context: Record<string, string>;
}

/** Where a pod's claim comes from, or why it cannot be mounted yet. */
export type ClaimSource =
  /** A CSI PersistentVolume: the driver publishes it at `request.target_path`, which the containers bind. */
  | { kind: "csi"; driver: string; pvName: string; readOnly: boolean; request: NodePublishRequest }
  /** A hostPath or local PersistentVolume: its path. */
  | { kind: "host"; path: string; readOnly: boolean }
  /** A claim no provisioner or PersistentVolume will ever bind: the runner's own folder (see resolveClaim). */
  | { kind: "standIn"; path: string; readOnly: boolean }
  /** Not bound yet, and it will be (a class, a data source or a named volume): the pod must wait. */
  | { kind: "unbound"; message: string }
  /** Bound, but to something the runner cannot mount. */
  | { kind: "failed"; message: string };

/** The kubelet's mapping of a PV's (first) access mode to CSI's (pkg/volume/csi, without SINGLE_NODE_MULTI_WRITER). */
export function csiAccessMode(mode: string | undefined): string {
  switch (mode ?? "ReadWriteOnce") {
    case "ReadWriteOnce":
      return "SINGLE_NODE_WRITER";
    case "ReadOnlyMany":
      return "MULTI_NODE_READER_ONLY";
    case "ReadWriteMany":
      return "MULTI_NODE_MULTI_WRITER";
    case "ReadWriteOncePod":
      return "SINGLE_NODE_SINGLE_WRITER";
    default:
      return "UNKNOWN";
  }
}

/** The kubelet's folder for a CSI volume of a pod: `<pod dir>/volumes/kubernetes.io~csi/<pv name>/mount`. */
export function csiTargetPath(podDir: string, pvName: string): string {
  return path.join(podDir, "volumes", "kubernetes.io~csi", pvName, "mount");
}

/** Bound as the scheduler and the kubelet mean it: a volume named and the phase Bound. */
export function claimBound(pvc: Obj): boolean {
  return Boolean(pvc.spec?.volumeName) && pvc.status?.phase === "Bound";
}

/**
 * A claim that is not bound but will be: it names a StorageClass (a provisioner's), a data source (a restore or a
 * clone) or a volume (pre-bound, the PV controller finishes it). The scheduler does not bind a pod with such a
 * claim; the runner, the world's only scheduler, neither.
 */
export function waitsForBinding(pvc: Obj): boolean {
  if (claimBound(pvc)) return false;
  const s = pvc.spec ?? {};
  return Boolean(s.volumeName || s.storageClassName || s.dataSource || s.dataSourceRef);
}

/** The scheduler's FailedScheduling message for a pod whose claims wait for binding, on the world's one node. */
export function unboundClaimsMessage(): string {
  return "0/1 nodes are available: 1 pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
}

/** The kubelet's FailedMount message for a volume whose SetUp failed. */
export function setUpFailed(pvName: string, cause: string): string {
  return `MountVolume.SetUp failed for volume "${pvName}" : ${cause}`;
}

/** The kubelet's cause when a PV names a CSI driver that has not registered on the node. */
export function driverNotRegistered(driver: string): string {
  return `kubernetes.io/csi: mounter.SetUpAt failed to get CSI client: driver name ${driver} not found in the list of registered CSI drivers`;
}

/**
 * Whether a failed NodePublishVolume certainly left nothing mounted (the kubelet's isFinalError): after a timeout,
 * or an Unavailable, Aborted, ResourceExhausted or Canceled answer, the volume may be published, so it must be
 * unpublished at teardown all the same.
 */
export function publishFailureIsFinal(code: string | undefined): boolean {
  if (code === undefined) return false;
  return !["Canceled", "DeadlineExceeded", "Unavailable", "ResourceExhausted", "Aborted"].includes(code);
}

/**
 * What the kubelet mounts for a pod's `persistentVolumeClaim` volume, given the claim and, when it is bound, its
 * PersistentVolume (undefined when that does not exist).
 *
 * A claim that is unbound and names no StorageClass, data source or volume will never be bound in the world (no
 * PersistentVolume is created for it and no provisioner serves it): it stands in for a pre-provisioned local disk,
 * the runner's folder `<claimsDir>/<namespace>/<claim>-<uid>`, so its data lives as long as the claim and a new claim
 * of the same name starts empty.
 */
export function resolveClaim(input: { pvc: Obj; pv: Obj | undefined; volume: Obj; podDir: string; claimsDir: string }): ClaimSource {
  const { pvc, pv, volume, podDir, claimsDir } = input;
  const ns: string = pvc.metadata.namespace;
  const name: string = pvc.metadata.name;
  const podReadOnly = volume.persistentVolumeClaim?.readOnly === true;
  if (!claimBound(pvc)) {
    if (waitsForBinding(pvc)) return { kind: "unbound", message: `error processing PVC ${ns}/${name}: PVC is not bound` };
    return { kind: "standIn", path: path.join(claimsDir, ns, `${name}-${pvc.metadata.uid}`), readOnly: podReadOnly };
  }
  const pvName: string = pvc.spec.volumeName;
  if (!pv) {
    return {
      kind: "failed",
      message: `error processing PVC ${ns}/${name}: failed to fetch PV ${pvName} from API server: persistentvolumes "${pvName}" not found`,
    };
  }
  const ref = pv.spec?.claimRef;
  if (!ref) {
    return {
      kind: "failed",
      message: `error processing PVC ${ns}/${name}: found PV object ${pvName} but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim`,
    };
  }
  if (ref.uid !== pvc.metadata.uid) {
    return {
      kind: "failed",
      message: `error processing PVC ${ns}/${name}: found PV object ${pvName} but its pv.Spec.ClaimRef.UID (${ref.uid}) does not point to claim.UID (${pvc.metadata.uid})`,
    };
  }
  const spec = pv.spec;
  if (spec.volumeMode === "Block") {
    return { kind: "failed", message: setUpFailed(pvName, "unsupported volume source: the local node runner mounts no block volumes") };
  }
  if (spec.csi) {
    const csi = spec.csi;
    const readOnly = podReadOnly || csi.readOnly === true;
    return {
      kind: "csi",
      driver: csi.driver,
      pvName,
      readOnly,
      request: {
        volume_id: csi.volumeHandle,
        publish_context: {},
        target_path: csiTargetPath(podDir, pvName),
        volume_capability: {
          mount: { fs_type: csi.fsType ?? "", mount_flags: spec.mountOptions ?? [] },
          access_mode: { mode: csiAccessMode(spec.accessModes?.[0]) },
        },
        readonly: readOnly,
        volume_context: csi.volumeAttributes ?? {},
      },
    };
  }
  const hostPath: string | undefined = spec.hostPath?.path ?? spec.local?.path;
  if (hostPath) return { kind: "host", path: hostPath, readOnly: podReadOnly };
  const kinds = Object.keys(spec).filter((k) => !nonSourceFields.has(k));
  return {
    kind: "failed",
    message: setUpFailed(
      pvName,
      `unsupported volume source${kinds.length > 0 ? ` ${kinds.join(",")}` : ""}: the local node runner mounts csi, hostPath and local persistent volumes`,
    ),
  };
}

// PersistentVolumeSpec fields that are not a volume source.
const nonSourceFields = new Set([
  "accessModes",
  "capacity",
  "claimRef",
  "mountOptions",
  "nodeAffinity",
  "persistentVolumeReclaimPolicy",
  "storageClassName",
  "volumeMode",
  "volumeAttributesClassName",
]);
