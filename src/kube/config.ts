// Finding the cluster: --kubeconfig, then $KUBECONFIG, then the in-cluster service account, then ~/.kube/config.
// Unlike client-node's loadFromDefault(), finding nothing is an error: never a silent fallback to localhost:8080.
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";

export class NoClusterConfigError extends Error {}

const inClusterToken = "/var/run/secrets/kubernetes.io/serviceaccount/token";

export interface ClusterConfig {
  kubeConfig: KubeConfig;
  source: string; // where it came from, for the start-up log line
}

export function loadClusterConfig(kubeconfigFlag?: string, env: NodeJS.ProcessEnv = process.env): ClusterConfig {
  const kc = new KubeConfig();
  const fromFile = (file: string, source: string): ClusterConfig => {
    if (!existsSync(file)) throw new NoClusterConfigError(`kubeconfig ${file} (from ${source}) does not exist`);
    kc.loadFromFile(file);
    if (!kc.getCurrentCluster()) throw new NoClusterConfigError(`kubeconfig ${file} (from ${source}) names no current cluster`);
    return { kubeConfig: kc, source: `${source} ${file}` };
  };
  if (kubeconfigFlag) return fromFile(kubeconfigFlag, "--kubeconfig");
  if (env.KUBECONFIG) return fromFile(env.KUBECONFIG.split(path.delimiter)[0] as string, "$KUBECONFIG");
  if (env.KUBERNETES_SERVICE_HOST && existsSync(inClusterToken)) {
    kc.loadFromCluster();
    return { kubeConfig: kc, source: "in-cluster service account" };
  }
  const home = path.join(os.homedir(), ".kube", "config");
  if (existsSync(home)) return fromFile(home, "~/.kube/config");
  throw new NoClusterConfigError(
    "no cluster configuration found: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account",
  );
}
