// The local world's snapshot stack, from real parts: the six snapshot CRDs, snapshot-controller, csi-snapshotter and
// csi-provisioner (pinned upstream builds, each with upstream's RBAC and an identity of its own), the world's CSI
// driver (test/harness/csi/), and the CSIDriver, StorageClass and VolumeSnapshotClass that name it. Auxo sees only
// the standard APIs (snapshot.storage.k8s.io/v1, PVC dataSource), as on a cluster.
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import * as yaml from "js-yaml";
import { CsiClient } from "./csi/client.ts";
import { DRIVER_NAME } from "./csi/driver.ts";
import type { ControlPlane } from "./control-plane.ts";
import { type KubeRest, type Obj } from "./kube-rest.ts";
import { waitFor } from "./net.ts";
import { ManagedProcess } from "./proc.ts";
import { repoRoot, tools } from "./tools.ts";

export const CSI_DRIVER = DRIVER_NAME;
export const CSI_STORAGE_CLASS = "auxo-csi";
export const CSI_SNAPSHOT_CLASS = "auxo-csi";

/** What tests and `make run` users need to reach the stack (serialisable, part of WorldInfo). */
export interface CsiInfo {
  /** The driver's state folder: volumes, snapshots, faults.json (see test/harness/csi/faults.ts). */
  dir: string;
  socket: string;
  driver: string;
  storageClass: string;
  snapshotClass: string;
}

// Where each kind of upstream RBAC object lives in the API.
const rbacPaths: Record<string, (ns: string, name: string) => string> = {
  ServiceAccount: (ns, n) => `/api/v1/namespaces/${ns}/serviceaccounts/${n}`,
  ClusterRole: (_, n) => `/apis/rbac.authorization.k8s.io/v1/clusterroles/${n}`,
  ClusterRoleBinding: (_, n) => `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${n}`,
  Role: (ns, n) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles/${n}`,
  RoleBinding: (ns, n) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/${n}`,
};

/** Server-side applies a folder's manifests (every document of every .yaml file). */
async function applyFolder(kube: KubeRest, dir: string, pathOf: (o: Obj) => string): Promise<Obj[]> {
  const applied: Obj[] = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    for (const doc of yaml.loadAll(readFileSync(path.join(dir, f), "utf8")) as Obj[]) {
      if (!doc?.kind) continue;
      await kube.patch(pathOf(doc), doc, "apply", "auxo-local-world");
      applied.push(doc);
    }
  }
  return applied;
}

export class CsiStack {
  readonly dir: string;
  readonly socket: string;
  private readonly procs: ManagedProcess[] = [];
  private driver?: ManagedProcess;
  private readonly cp: ControlPlane;

  constructor(cp: ControlPlane, dir: string) {
    this.cp = cp;
    this.dir = dir;
    // Unix socket paths are limited to 107 bytes; the world folder is short (mkdtemp in /tmp, or .run/world).
    this.socket = path.join(dir, "csi.sock");
  }

  info(): CsiInfo {
    return { dir: this.dir, socket: this.socket, driver: CSI_DRIVER, storageClass: CSI_STORAGE_CLASS, snapshotClass: CSI_SNAPSHOT_CLASS };
  }

  /** The driver first (the sidecars exit when its socket drops), then the API objects, then the sidecars. */
  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    await Promise.all([this.startDriver(), this.installCrds(), this.installRbac()]);
    await this.createClasses();
    const t = tools();
    // Retries capped at 10 s (upstream: 5 min), as the world shortens the kubelet's back-off: a test that flips a
    // fault back must not wait minutes for the next attempt.
    const retry = ["--retry-interval-max=10s", "--v=2"];
    this.sidecar("snapshot-controller", t.snapshotController, "system:serviceaccount:kube-system:snapshot-controller", [...retry]);
    this.sidecar("csi-snapshotter", t.csiSnapshotter, "system:serviceaccount:default:csi-snapshotter", [
      `--csi-address=${this.socket}`,
      "--extra-create-metadata",
      ...retry,
    ]);
    this.sidecar("csi-provisioner", t.csiProvisioner, "system:serviceaccount:default:csi-provisioner", [
      `--csi-address=${this.socket}`,
      "--extra-create-metadata",
      "--timeout=30s",
      ...retry,
    ]);
    // The sidecars have no readiness endpoint without a TCP listener; a sidecar that cannot start exits early.
    await new Promise((r) => setTimeout(r, 1500));
    for (const p of this.procs) p.assertRunning();
  }

  private async startDriver(): Promise<void> {
    const driver = new ManagedProcess({
      name: "csi-driver",
      command: path.join(tools().nodeBin, "node"),
      args: [path.join(repoRoot, "test/harness/csi/main.ts"), `--socket=${this.socket}`, `--dir=${this.dir}`, "--node-id=auxo-local"],
      logFile: path.join(this.cp.logDir, "csi-driver.log"),
    });
    this.driver = driver;
    driver.start();
    const client = new CsiClient(this.socket);
    try {
      await waitFor("the CSI driver's Probe", async () => {
        driver.assertRunning();
        const res = await client.call("Identity", "Probe", {}, 2000).catch(() => undefined);
        return res?.ready?.value === false ? undefined : res ? true : undefined;
      });
    } finally {
      client.close();
    }
  }

  private async installCrds(): Promise<void> {
    const kube = this.cp.client;
    const crds = await applyFolder(
      kube,
      tools().snapshotCrds,
      (c) => `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${c.metadata.name}`,
    );
    for (const crd of crds) {
      await waitFor(`CRD ${crd.metadata.name} established`, async () => {
        const got = await kube.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
        return got.status?.conditions?.some((c: Obj) => c.type === "Established" && c.status === "True") ? true : undefined;
      });
    }
  }

  /** Upstream's RBAC as published: ServiceAccounts bound to upstream's roles, in upstream's namespaces. */
  private async installRbac(): Promise<void> {
    const t = tools();
    for (const dir of [t.snapshotterRbac, t.provisionerRbac]) {
      await applyFolder(this.cp.client, dir, (o) => {
        const to = rbacPaths[o.kind as string];
        if (!to) throw new Error(`${dir}: unexpected kind ${o.kind} in upstream RBAC`);
        return to(o.metadata.namespace ?? "default", o.metadata.name);
      });
    }
  }

  private async createClasses(): Promise<void> {
    const kube = this.cp.client;
    await kube.patch(
      `/apis/storage.k8s.io/v1/csidrivers/${CSI_DRIVER}`,
      {
        apiVersion: "storage.k8s.io/v1",
        kind: "CSIDriver",
        metadata: { name: CSI_DRIVER },
        // No attacher (attachRequired false); fsGroup applied to every volume, as for a file driver.
        spec: { attachRequired: false, podInfoOnMount: false, volumeLifecycleModes: ["Persistent"], fsGroupPolicy: "File" },
      },
      "apply",
      "auxo-local-world",
    );
    await kube.patch(
      `/apis/storage.k8s.io/v1/storageclasses/${CSI_STORAGE_CLASS}`,
      {
        apiVersion: "storage.k8s.io/v1",
        kind: "StorageClass",
        metadata: { name: CSI_STORAGE_CLASS },
        // Immediate: the world's driver has no topology. Not the default class: a claim without a class stays the
        // runner's local folder (test/harness/node-runner), as the existing tests expect.
        provisioner: CSI_DRIVER,
        reclaimPolicy: "Delete",
        volumeBindingMode: "Immediate",
        allowVolumeExpansion: false,
      },
      "apply",
      "auxo-local-world",
    );
    await kube.patch(
      `/apis/snapshot.storage.k8s.io/v1/volumesnapshotclasses/${CSI_SNAPSHOT_CLASS}`,
      {
        apiVersion: "snapshot.storage.k8s.io/v1",
        kind: "VolumeSnapshotClass",
        metadata: { name: CSI_SNAPSHOT_CLASS, annotations: { "snapshot.storage.kubernetes.io/is-default-class": "true" } },
        driver: CSI_DRIVER,
        deletionPolicy: "Delete",
      },
      "apply",
      "auxo-local-world",
    );
  }

  /** Starts a sidecar as the identity upstream's RBAC binds (a ServiceAccount's user name, by client certificate). */
  private sidecar(name: string, command: string, user: string, args: string[]): void {
    const ns = user.split(":")[2] as string;
    const kubeconfig = path.join(this.cp.dir, `${name}.kubeconfig`);
    this.cp.writeKubeconfig(kubeconfig, user, ["system:serviceaccounts", `system:serviceaccounts:${ns}`]);
    const p = new ManagedProcess({
      name,
      command,
      args: [`--kubeconfig=${kubeconfig}`, ...args],
      logFile: path.join(this.cp.logDir, `${name}.log`),
    });
    p.start();
    this.procs.push(p);
  }

  processes(): ManagedProcess[] {
    return [...(this.driver ? [this.driver] : []), ...this.procs];
  }

  /** Sidecars first, the driver last (sidecars exit when its socket drops). */
  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop(5000)));
    await this.driver?.stop(5000);
  }
}
