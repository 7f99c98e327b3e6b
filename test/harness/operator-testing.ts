// Helpers for runtime tests: a manager in the test process, talking to a given kubeconfig.
import { KubeClient } from "../../src/kube/client.ts";
import { loadClusterConfig } from "../../src/kube/config.ts";
import { createLogger } from "../../src/observability/log.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import { type LeaderElectionConfig, Manager } from "../../src/runtime/manager.ts";

export function testManager(
  kubeconfig: string,
  opts: { identity?: string; leaderElection?: LeaderElectionConfig | false; probeAddress?: string; stallTimeoutMs?: number } = {},
): Manager {
  const metrics = new Metrics({ defaultMetrics: false });
  const client = new KubeClient(loadClusterConfig(kubeconfig, {}).kubeConfig, {
    observe: (method, code) => metrics.restClientRequests.inc({ code: String(code), method, host: "test" }),
  });
  return new Manager({
    client,
    log: createLogger(process.env.AUXO_TEST_LOG_LEVEL ?? "silent"),
    metrics,
    identity: opts.identity ?? `test-${process.pid}`,
    leaderElection: opts.leaderElection ?? false,
    probeAddress: opts.probeAddress,
    onFatal: (reason) => {
      throw new Error(reason);
    },
    informerDefaults: { backoffBaseMs: 200, backoffMaxMs: 2000, stallTimeoutMs: opts.stallTimeoutMs },
  });
}
