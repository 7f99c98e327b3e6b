// `auxo operator`: wires the configuration, the client, the manager and the controllers, and turns SIGTERM and
// SIGINT into a graceful stop (workers drain, the lease is released).
import { randomBytes } from "node:crypto";
import { KubeClient } from "./kube/client.ts";
import { loadClusterConfig } from "./kube/config.ts";
import { type OperatorConfig } from "./config.ts";
import { registerControllers } from "./controllers/index.ts";
import { createLogger } from "./observability/log.ts";
import { Metrics } from "./observability/metrics.ts";
import { Manager } from "./runtime/manager.ts";

export async function runOperator(cfg: OperatorConfig, version: string): Promise<number> {
  const log = createLogger(cfg.logLevel);
  const cluster = loadClusterConfig(cfg.kubeconfig); // throws NoClusterConfigError with a clear message
  const metrics = new Metrics();
  const host = (() => {
    try {
      return new URL(cluster.kubeConfig.getCurrentCluster()?.server ?? "").host;
    } catch {
      return "";
    }
  })();
  const client = new KubeClient(cluster.kubeConfig, {
    userAgent: `auxo-operator/${version}`,
    observe: (method, code, seconds) => {
      metrics.restClientRequests.inc({ code: String(code || "<error>"), method, host });
      metrics.restClientLatency.observe({ verb: method }, seconds);
    },
  });
  const serverVersion = await client.version();
  log.info(
    { source: cluster.source, server: cluster.kubeConfig.getCurrentCluster()?.server, serverVersion, version },
    "connected to the API server",
  );
  // Unique per process, as client-go does: a restarted pod must not resume the old holder's lease blindly.
  const identity = `${cfg.identity}_${randomBytes(4).toString("hex")}`;
  const manager = new Manager({
    client,
    log,
    metrics,
    identity,
    leaderElection: cfg.leaderElect
      ? {
          namespace: cfg.leaderElectionNamespace,
          name: cfg.leaderElectionId,
          leaseDurationMs: cfg.leaseDurationMs,
          renewDeadlineMs: cfg.renewDeadlineMs,
          retryPeriodMs: cfg.retryPeriodMs,
        }
      : false,
    probeAddress: cfg.probeAddress || undefined,
    metricsAddress: cfg.metricsAddress && cfg.metricsAddress !== cfg.probeAddress ? cfg.metricsAddress : undefined,
  });
  const volumeSnapshots = await client.serves("/apis/snapshot.storage.k8s.io/v1");
  if (!volumeSnapshots) log.warn("snapshot.storage.k8s.io/v1 is not served (no CSI snapshot CRDs): SnapVaults will not run");
  registerControllers(manager, {
    agentImage: cfg.agentImage,
    volumeSnapshots,
    snapRetryMaxAttempts: cfg.snapRetryMaxAttempts,
    snapRetryMaxDays: cfg.snapRetryMaxDays,
    probeLibraries: cfg.probeLibraries,
    autoAuxCopy: cfg.autoAuxCopy,
    dataAging: cfg.dataAging,
    allowHostPathLibraries: cfg.allowHostPathLibraries,
    allowNfsLibraries: cfg.allowNfsLibraries,
    allowRepositoryPathsOutsideNamespace: cfg.allowRepositoryPathsOutsideNamespace,
  });
  await manager.start();
  log.info({ identity, ports: manager.ports }, "operator started");
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, "shutting down: draining workers and releasing the lease");
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  await manager.stop();
  log.info("stopped");
  return 0;
}
