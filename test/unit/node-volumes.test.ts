// The node runner's claim rules: what the scheduler waits for and what the kubelet mounts for a claim, the CSI
// access-mode mapping, and the mount-table parsing behind its cleanup.
import { describe, expect, it } from "vitest";
import type { Obj } from "../harness/kube-rest.ts";
import { csiAccessMode, publishFailureIsFinal, resolveClaim, waitsForBinding } from "../harness/node-runner/volumes.ts";
import { mountPointsUnder, parseMountinfo } from "../harness/mounts.ts";

const podDir = "/state/pods/ns_p_u1";
const claimsDir = "/state/claims";

function claim(spec: Obj, status: Obj = {}): Obj {
  return { metadata: { namespace: "ns", name: "data", uid: "c-1" }, spec: { accessModes: ["ReadWriteOnce"], ...spec }, status };
}
const bound = (spec: Obj = {}) => claim({ volumeName: "pv-1", storageClassName: "auxo-csi", ...spec }, { phase: "Bound" });
function volume(spec: Obj): Obj {
  return { metadata: { name: "pv-1" }, spec: { claimRef: { namespace: "ns", name: "data", uid: "c-1" }, ...spec } };
}
const csiPv = (csi: Obj = {}, spec: Obj = {}) =>
  volume({ accessModes: ["ReadWriteOnce"], csi: { driver: "local.csi.auxo.dev", volumeHandle: "vol-7", ...csi }, ...spec });
const podVolume = (readOnly?: boolean): Obj => ({ name: "d", persistentVolumeClaim: { claimName: "data", readOnly } });
const resolve = (pvc: Obj, pv: Obj | undefined, readOnly?: boolean) =>
  resolveClaim({ pvc, pv, volume: podVolume(readOnly), podDir, claimsDir });

describe("resolveClaim", () => {
  it("publishes a CSI volume at the kubelet's per-pod target with the PV's handle, attributes and mount options", () => {
    const pv = csiPv({ fsType: "ext4", volumeAttributes: { pool: "fast" } }, { mountOptions: ["noatime"] });
    expect(resolve(bound(), pv)).toEqual({
      kind: "csi",
      driver: "local.csi.auxo.dev",
      pvName: "pv-1",
      readOnly: false,
      request: {
        volume_id: "vol-7",
        publish_context: {},
        target_path: "/state/pods/ns_p_u1/volumes/kubernetes.io~csi/pv-1/mount",
        volume_capability: { mount: { fs_type: "ext4", mount_flags: ["noatime"] }, access_mode: { mode: "SINGLE_NODE_WRITER" } },
        readonly: false,
        volume_context: { pool: "fast" },
      },
    });
  });

  it("defaults a CSI volume's fsType, mount flags and attributes to empty", () => {
    const r = resolve(bound(), csiPv());
    expect(r.kind === "csi" && r.request.volume_capability.mount).toEqual({ fs_type: "", mount_flags: [] });
    expect(r.kind === "csi" && r.request.volume_context).toEqual({});
  });

  it("publishes read-only when the pod's claim says so or the PV's csi source does", () => {
    for (const [podRo, pvRo, want] of [
      [undefined, undefined, false],
      [true, undefined, true],
      [undefined, true, true],
      [false, false, false],
    ] as const) {
      const r = resolve(bound(), csiPv({ readOnly: pvRo }), podRo);
      expect(r.kind === "csi" && [r.readOnly, r.request.readonly]).toEqual([want, want]);
    }
  });

  it("takes the access mode from the PV's first access mode", () => {
    const r = resolve(bound(), csiPv({}, { accessModes: ["ReadOnlyMany", "ReadWriteOnce"] }));
    expect(r.kind === "csi" && r.request.volume_capability.access_mode.mode).toBe("MULTI_NODE_READER_ONLY");
  });

  it("uses the path of a hostPath or local PV, read-only when the pod's claim is", () => {
    expect(resolve(bound(), volume({ hostPath: { path: "/srv/a" } }))).toEqual({ kind: "host", path: "/srv/a", readOnly: false });
    expect(resolve(bound(), volume({ local: { path: "/mnt/disk" } }), true)).toEqual({ kind: "host", path: "/mnt/disk", readOnly: true });
  });

  it("fails a claim bound to any other volume source with the source named", () => {
    const r = resolve(bound(), volume({ nfs: { server: "10.0.0.1", path: "/x" }, capacity: { storage: "1Gi" } }));
    expect(r).toEqual({
      kind: "failed",
      message:
        'MountVolume.SetUp failed for volume "pv-1" : unsupported volume source nfs: the local node runner mounts csi, hostPath and local persistent volumes',
    });
    expect(resolve(bound(), csiPv({}, { volumeMode: "Block" }))).toMatchObject({
      kind: "failed",
      message: expect.stringContaining("unsupported volume source"),
    });
  });

  it("fails a bound claim whose PV is missing or bound to another claim, in the kubelet's words", () => {
    expect(resolve(bound(), undefined)).toEqual({
      kind: "failed",
      message: 'error processing PVC ns/data: failed to fetch PV pv-1 from API server: persistentvolumes "pv-1" not found',
    });
    const other = csiPv();
    other.spec.claimRef.uid = "c-old";
    expect(resolve(bound(), other)).toEqual({
      kind: "failed",
      message: "error processing PVC ns/data: found PV object pv-1 but its pv.Spec.ClaimRef.UID (c-old) does not point to claim.UID (c-1)",
    });
  });

  it("waits for a claim that names a class, a data source or a volume and is not Bound yet", () => {
    const waiting = [
      claim({ storageClassName: "auxo-csi" }),
      claim({ dataSource: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: "s" } }),
      claim({ dataSourceRef: { kind: "PersistentVolumeClaim", name: "src" } }),
      claim({ volumeName: "pv-1", storageClassName: "" }, { phase: "Pending" }),
      claim({ storageClassName: "auxo-csi", volumeName: "pv-1" }, { phase: "Pending" }),
    ];
    for (const pvc of waiting) {
      expect(waitsForBinding(pvc)).toBe(true);
      expect(resolve(pvc, undefined)).toEqual({ kind: "unbound", message: "error processing PVC ns/data: PVC is not bound" });
    }
    expect(waitsForBinding(bound())).toBe(false);
  });

  it("gives a claim nobody will bind (no class, data source or volume) the runner's folder keyed by the claim's uid", () => {
    for (const pvc of [claim({}), claim({ storageClassName: "" }, { phase: "Pending" })]) {
      expect(waitsForBinding(pvc)).toBe(false);
      expect(resolve(pvc, undefined)).toEqual({ kind: "standIn", path: "/state/claims/ns/data-c-1", readOnly: false });
    }
    expect(resolve(claim({}), undefined, true)).toMatchObject({ kind: "standIn", readOnly: true });
  });
});

describe("csiAccessMode", () => {
  it("maps the Kubernetes access modes as the kubelet does, ReadWriteOnce by default", () => {
    expect(csiAccessMode("ReadWriteOnce")).toBe("SINGLE_NODE_WRITER");
    expect(csiAccessMode("ReadOnlyMany")).toBe("MULTI_NODE_READER_ONLY");
    expect(csiAccessMode("ReadWriteMany")).toBe("MULTI_NODE_MULTI_WRITER");
    expect(csiAccessMode("ReadWriteOncePod")).toBe("SINGLE_NODE_SINGLE_WRITER");
    expect(csiAccessMode(undefined)).toBe("SINGLE_NODE_WRITER");
    expect(csiAccessMode("Sometimes")).toBe("UNKNOWN");
  });
});

describe("publishFailureIsFinal", () => {
  it("treats timeouts and transient codes as uncertain (the volume may be published), others as final", () => {
    for (const code of ["DeadlineExceeded", "Unavailable", "Aborted", "ResourceExhausted", "Canceled", undefined]) {
      expect(publishFailureIsFinal(code)).toBe(false);
    }
    for (const code of ["NotFound", "InvalidArgument", "AlreadyExists", "FailedPrecondition", "Internal"]) {
      expect(publishFailureIsFinal(code)).toBe(true);
    }
  });
});

describe("mount table", () => {
  const mountinfo = [
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
    "90 22 8:1 /vols/a /state/pods/p1/volumes/kubernetes.io~csi/pv-a/mount rw,relatime shared:1 - ext4 /dev/sda1 rw",
    "91 22 8:1 /vols/b /state/pods/p\\0402/volumes/kubernetes.io~csi/pv-b/mount ro,relatime shared:1 - ext4 /dev/sda1 rw",
    "92 22 0:50 / /state/pods rw - tmpfs tmpfs rw",
    "93 90 8:1 /vols/a /state/pods/p1/volumes/kubernetes.io~csi/pv-a/mount rw shared:1 - ext4 /dev/sda1 rw",
    "94 22 0:51 / /state-other/x rw - tmpfs tmpfs rw",
    "",
  ].join("\n");

  it("reads mount points with the kernel's escapes undone", () => {
    expect(parseMountinfo(mountinfo).map((m) => m.mountPoint)).toEqual([
      "/",
      "/state/pods/p1/volumes/kubernetes.io~csi/pv-a/mount",
      "/state/pods/p 2/volumes/kubernetes.io~csi/pv-b/mount",
      "/state/pods",
      "/state/pods/p1/volumes/kubernetes.io~csi/pv-a/mount",
      "/state-other/x",
    ]);
  });

  it("lists the mount points under a folder deepest first, stacked ones once each, the folder itself and its siblings not", () => {
    const points = parseMountinfo(mountinfo).map((m) => m.mountPoint);
    expect(mountPointsUnder(points, "/state/")).toEqual([
      "/state/pods/p1/volumes/kubernetes.io~csi/pv-a/mount",
      "/state/pods/p 2/volumes/kubernetes.io~csi/pv-b/mount",
      "/state/pods/p1/volumes/kubernetes.io~csi/pv-a/mount",
      "/state/pods",
    ]);
    expect(mountPointsUnder(points, "/state/pods")).toHaveLength(3);
    expect(mountPointsUnder(points, "/state/pods/p1/volumes/kubernetes.io~csi/pv-a/mount")).toEqual([]);
  });
});
