// The operator's configuration: flags, then AUXO_* environment variables, then defaults. Every value is checked
// here, so that a typo stops the operator at start with a message that names the flag, never later.
import os from "node:os";
import { parseArgs } from "node:util";
import { parseDuration as parseDurationRule } from "./policy/duration.ts";

export interface OperatorConfig {
  kubeconfig?: string;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  identity: string;
  probeAddress: string;
  metricsAddress: string;
  logLevel: string;
  agentImage: string;
  probeLibraries: boolean;
  autoAuxCopy: boolean;
  dataAging: boolean;
  /** Accept hostPath and NFS libraries (off: refused, docs/tenancy.md). */
  allowHostPathLibraries: boolean;
  allowNfsLibraries: boolean;
  allowRepositoryPathsOutsideNamespace: boolean;
  /** Default retry budget of a SnapVault's snapshots (spec.retry overrides it). */
  snapRetryMaxAttempts: number;
  snapRetryMaxDays: number;
}

export class ConfigError extends Error {}

const levels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export function parseDuration(flag: string, value: string): number {
  try {
    return parseDurationRule(flag, value);
  } catch (err) {
    throw new ConfigError((err as Error).message, { cause: err });
  }
}

function address(flag: string, value: string): string {
  if (value === "0") return "";
  const m = /^(.*):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535)
    throw new ConfigError(`--${flag}: "${value}" is not host:port (":8080", "127.0.0.1:0"), or "0" to disable`);
  return value;
}

function bool(flag: string, value: string | boolean): boolean {
  if (typeof value === "boolean") return value;
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new ConfigError(`--${flag}: "${value}" is not true or false`);
}

/** A whole number from 1 to `max`. */
function count(flag: string, value: string, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > max) throw new ConfigError(`--${flag}: "${value}" is not a whole number from 1 to ${max}`);
  return n;
}

export const operatorUsage = `usage: auxo operator [flags]

flags (environment variable in brackets):
  --kubeconfig FILE                     cluster to use [KUBECONFIG]; else in-cluster, else ~/.kube/config
  --leader-elect BOOL                   elect a leader among replicas (default true) [AUXO_LEADER_ELECT]
  --leader-election-namespace NS        namespace of the Lease (default: the pod's, else auxo-system) [POD_NAMESPACE]
  --leader-election-id NAME             name of the Lease (default auxo-operator)
  --leader-election-lease-duration D    (default 15s)
  --leader-election-renew-deadline D    (default 10s)
  --leader-election-retry-period D      (default 2s)
  --identity NAME                       this replica's identity (default: pod name or host name) [POD_NAME]
  --health-probe-bind-address ADDR      /healthz and /readyz, with /metrics (default :8081, "0" disables) [AUXO_HEALTH_PROBE_BIND_ADDRESS]
  --metrics-bind-address ADDR           /metrics (default :8080, "0" disables) [AUXO_METRICS_BIND_ADDRESS]
  --log-level LEVEL                     fatal|error|warn|info|debug|trace (default info) [AUXO_LOG_LEVEL]
  --agent-image IMAGE                   image of MediaAgent pods (default ghcr.io/auxo-dev/auxo:dev) [AUXO_AGENT_IMAGE]
  --probe-libraries BOOL                probe libraries with MediaAgent pods (default true) [AUXO_PROBE_LIBRARIES]
  --auto-aux-copy BOOL                  run the policies' automatic aux copies (default true) [AUXO_AUTO_AUX_COPY]
  --data-aging BOOL                     run data aging on the copies, with its previews (default true) [AUXO_DATA_AGING]
  --allow-host-path-libraries BOOL      accept hostPath libraries: any folder of a node (default false) [AUXO_ALLOW_HOST_PATH_LIBRARIES]
  --allow-nfs-libraries BOOL            accept NFS libraries: any export the nodes reach (default false) [AUXO_ALLOW_NFS_LIBRARIES]
  --allow-repository-paths-outside-namespace BOOL
                                        let spec.repositoryPath leave <namespace>/ on a library (default false) [AUXO_ALLOW_REPOSITORY_PATHS_OUTSIDE_NAMESPACE]
  --snap-retry-max-attempts N           attempts per snapshot before it is Missing (default 10) [AUXO_SNAP_RETRY_MAX_ATTEMPTS]
  --snap-retry-max-days N               days from a snapshot's first failed attempt before it is Missing (default 5) [AUXO_SNAP_RETRY_MAX_DAYS]
`;

export function parseOperatorConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        kubeconfig: { type: "string" },
        "leader-elect": { type: "string" },
        "leader-election-namespace": { type: "string" },
        "leader-election-id": { type: "string" },
        "leader-election-lease-duration": { type: "string" },
        "leader-election-renew-deadline": { type: "string" },
        "leader-election-retry-period": { type: "string" },
        identity: { type: "string" },
        "health-probe-bind-address": { type: "string" },
        "metrics-bind-address": { type: "string" },
        "log-level": { type: "string" },
        "agent-image": { type: "string" },
        "probe-libraries": { type: "string" },
        "auto-aux-copy": { type: "string" },
        "data-aging": { type: "string" },
        "allow-host-path-libraries": { type: "string" },
        "allow-nfs-libraries": { type: "string" },
        "allow-repository-paths-outside-namespace": { type: "string" },
        "snap-retry-max-attempts": { type: "string" },
        "snap-retry-max-days": { type: "string" },
      },
    }));
  } catch (err) {
    throw new ConfigError((err as Error).message, { cause: err });
  }
  const v = (flag: string, envName?: string): string | undefined =>
    (values[flag] as string | undefined) ?? (envName ? env[envName] || undefined : undefined);
  const cfg: OperatorConfig = {
    kubeconfig: v("kubeconfig"),
    leaderElect: bool("leader-elect", v("leader-elect", "AUXO_LEADER_ELECT") ?? true),
    leaderElectionNamespace: v("leader-election-namespace", "POD_NAMESPACE") ?? "auxo-system",
    leaderElectionId: v("leader-election-id") ?? "auxo-operator",
    leaseDurationMs: parseDuration("leader-election-lease-duration", v("leader-election-lease-duration") ?? "15s"),
    renewDeadlineMs: parseDuration("leader-election-renew-deadline", v("leader-election-renew-deadline") ?? "10s"),
    retryPeriodMs: parseDuration("leader-election-retry-period", v("leader-election-retry-period") ?? "2s"),
    identity: v("identity", "POD_NAME") ?? os.hostname(),
    probeAddress: address("health-probe-bind-address", v("health-probe-bind-address", "AUXO_HEALTH_PROBE_BIND_ADDRESS") ?? ":8081"),
    metricsAddress: address("metrics-bind-address", v("metrics-bind-address", "AUXO_METRICS_BIND_ADDRESS") ?? ":8080"),
    logLevel: v("log-level", "AUXO_LOG_LEVEL") ?? "info",
    agentImage: v("agent-image", "AUXO_AGENT_IMAGE") ?? "ghcr.io/auxo-dev/auxo:dev",
    probeLibraries: bool("probe-libraries", v("probe-libraries", "AUXO_PROBE_LIBRARIES") ?? true),
    autoAuxCopy: bool("auto-aux-copy", v("auto-aux-copy", "AUXO_AUTO_AUX_COPY") ?? true),
    dataAging: bool("data-aging", v("data-aging", "AUXO_DATA_AGING") ?? true),
    allowHostPathLibraries: bool("allow-host-path-libraries", v("allow-host-path-libraries", "AUXO_ALLOW_HOST_PATH_LIBRARIES") ?? false),
    allowNfsLibraries: bool("allow-nfs-libraries", v("allow-nfs-libraries", "AUXO_ALLOW_NFS_LIBRARIES") ?? false),
    allowRepositoryPathsOutsideNamespace: bool(
      "allow-repository-paths-outside-namespace",
      v("allow-repository-paths-outside-namespace", "AUXO_ALLOW_REPOSITORY_PATHS_OUTSIDE_NAMESPACE") ?? false,
    ),
    snapRetryMaxAttempts: count("snap-retry-max-attempts", v("snap-retry-max-attempts", "AUXO_SNAP_RETRY_MAX_ATTEMPTS") ?? "10", 1000),
    snapRetryMaxDays: count("snap-retry-max-days", v("snap-retry-max-days", "AUXO_SNAP_RETRY_MAX_DAYS") ?? "5", 365),
  };
  if (!levels.includes(cfg.logLevel)) throw new ConfigError(`--log-level: "${cfg.logLevel}" is not one of ${levels.join(", ")}`);
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(cfg.leaderElectionNamespace)) {
    throw new ConfigError(`--leader-election-namespace: "${cfg.leaderElectionNamespace}" is not a namespace name`);
  }
  if (!(cfg.leaseDurationMs > cfg.renewDeadlineMs && cfg.renewDeadlineMs > cfg.retryPeriodMs * 1.2)) {
    throw new ConfigError("leader election needs lease-duration > renew-deadline > 1.2 × retry-period");
  }
  return cfg;
}
