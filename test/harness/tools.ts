// Locations of the pinned binaries built by hack/tools.sh. The script is the single source of versions and paths;
// env vars (AUXO_ETCD, ...) override it, for a developer who wants to try another build.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface Tools {
  kubeApiserver: string;
  kubeControllerManager: string;
  /** kubectl: the tests run the kubectl auxo plugin through it. */
  kubectl: string;
  etcd: string;
  etcdctl: string;
  restic: string;
  versitygw: string;
  helm: string;
  /** Prometheus' promtool: checks the chart's alert rules and dashboard queries (test/integration/alerts.test.ts). */
  promtool: string;
  nodeBin: string;
  snapshotController: string;
  csiSnapshotter: string;
  csiProvisioner: string;
  /** The six snapshot CRDs (external-snapshotter client/v8 config/crd). */
  snapshotCrds: string;
  /** Upstream RBAC of snapshot-controller and csi-snapshotter; of csi-provisioner. */
  snapshotterRbac: string;
  provisionerRbac: string;
  csiProto: string;
}

let cached: Tools | undefined;

export function tools(): Tools {
  if (cached) return cached;
  const out = execFileSync("bash", [path.join(repoRoot, "hack/tools.sh"), "env"], { encoding: "utf8" });
  const vars = new Map<string, string>();
  for (const line of out.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) vars.set(line.slice(0, i), line.slice(i + 1));
  }
  const pick = (name: string): string => {
    const value = process.env[name] || vars.get(name);
    if (!value) throw new Error(`hack/tools.sh env did not name ${name}`);
    return value;
  };
  const t: Tools = {
    kubeApiserver: pick("AUXO_KUBE_APISERVER"),
    kubeControllerManager: pick("AUXO_KUBE_CONTROLLER_MANAGER"),
    kubectl: pick("AUXO_KUBECTL"),
    etcd: pick("AUXO_ETCD"),
    etcdctl: path.join(path.dirname(pick("AUXO_ETCD")), "etcdctl"),
    restic: pick("AUXO_RESTIC"),
    versitygw: pick("AUXO_VERSITYGW"),
    helm: pick("AUXO_HELM"),
    promtool: pick("AUXO_PROMTOOL"),
    nodeBin: pick("AUXO_NODE_BIN"),
    snapshotController: pick("AUXO_SNAPSHOT_CONTROLLER"),
    csiSnapshotter: pick("AUXO_CSI_SNAPSHOTTER"),
    csiProvisioner: pick("AUXO_CSI_PROVISIONER"),
    snapshotCrds: pick("AUXO_SNAPSHOT_CRDS"),
    snapshotterRbac: pick("AUXO_SNAPSHOTTER_RBAC"),
    provisionerRbac: pick("AUXO_PROVISIONER_RBAC"),
    csiProto: pick("AUXO_CSI_PROTO"),
  };
  for (const [name, file] of Object.entries(t)) {
    if (name !== "nodeBin" && !existsSync(file)) {
      throw new Error(`${name} is not built at ${file}; run 'make tools' (or 'bash hack/tools.sh all') first`);
    }
  }
  cached = t;
  return t;
}
