// The MediaAgent pod builder: a pure function from a task to a Pod. Same image as the operator, `auxo agent
// <task>`, non-root, read-only root filesystem, bounded resources, placement from the copy's mediaAgent settings,
// owned by the resource it serves, credentials only from Secrets (env valueFrom or mounted files). The task's
// non-secret parameters travel in one env var as JSON; the result comes back in the termination message.
import { createHash } from "node:crypto";
import type { OwnerReference } from "../kube/resources.ts";
import type { RepositoryAccess } from "../policy/repository.ts";
import type { CopyRules } from "../policy/selection.ts";
import type { RetentionOverride, RetentionSpec } from "../policy/retention.ts";

export type AgentTask = "probe" | "init" | "scan" | "copy" | "plan" | "age" | "verify" | "prune";

/** What the agent reads from AUXO_TASK (no secrets: passwords and keys are files and env from Secrets). */
export interface TaskSpec {
  task: AgentTask;
  target: Omit<RepositoryAccess, "volumes" | "env">;
  source?: Omit<RepositoryAccess, "volumes" | "env">;
  snapshotIds?: string[];
  /** For copy: select the jobs in the pod, from both catalogs, by the copy's rules (policy/selection.ts). */
  plan?: CopyTaskPlan;
  /**
   * For age: the copies that source from the target, whose needs hold its jobs (read-only). For plan (a promotion
   * check): the copies the promotion re-points to the target, whose needs count too.
   */
  downstream?: DownstreamTask[];
  /** For age: the target copy's retention. */
  aging?: AgingTask;
  /**
   * Locks: before it works on a repository the agent removes restic's stale locks and the locks of these hosts (pod
   * names of Auxo MediaAgents the operator knows have ended), never any other lock (docs/job-metadata.md).
   */
  locks?: { deadHosts?: string[] };
  timeoutSeconds?: number;
}

export interface CopyTaskPlan {
  rules: CopyRules;
  /** Do not pick new backups: the run's start time. */
  cutoff?: string;
  /** When the run started: the agent counts the run's copied jobs from the job events since then. */
  runStart?: string;
  skipVerificationFailed?: boolean;
  limit?: number;
  /** Use Most Recent Full: the latest successful full of each subclient goes to a selective copy. */
  mostRecentFull?: boolean;
}

export interface DownstreamTask {
  name: string;
  access: Omit<RepositoryAccess, "volumes" | "env">;
  /** Its selection rules: what it will take from the target decides what it still needs. */
  rules: CopyRules;
  active: boolean;
  /** Its library is not Ready: it cannot be read, so it needs every job (hold until copied). */
  unreachable?: boolean;
}

export interface AgingTask {
  retention?: RetentionSpec;
  overrides?: RetentionOverride[];
  timeZone?: string;
  /** The mass-deletion breaker: most percent of the copy's jobs one run may age. */
  maxSharePercent: number;
  /** Only report what would age. */
  dryRun?: boolean;
  /** Decide as of this time (a preview of the next run); default now. */
  at?: string;
}

export interface PodPlacement {
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
  resources?: Record<string, unknown>;
  priorityClassName?: string;
}

export interface AgentPodInput {
  task: AgentTask;
  namespace: string;
  /** Deterministic: the same work gets the same pod name, so a retried reconcile never starts it twice. */
  name: string;
  owner: OwnerReference;
  image: string;
  serviceAccountName?: string;
  target: RepositoryAccess;
  source?: RepositoryAccess;
  snapshotIds?: string[];
  plan?: CopyTaskPlan;
  locks?: TaskSpec["locks"];
  downstream?: (Omit<DownstreamTask, "access"> & { access: RepositoryAccess })[];
  aging?: AgingTask;
  placement?: PodPlacement;
  deadlineSeconds: number;
  labels?: Record<string, string>;
}

/** A pod name from parts: DNS-safe, at most 63 characters, with a hash when shortened. */
export function podName(...parts: string[]): string {
  const raw = parts
    .join("-")
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-|-$/g, "");
  if (raw.length <= 63) return raw;
  const hash = createHash("sha256").update(raw).digest("hex").slice(0, 8);
  return `${raw.slice(0, 54).replace(/-$/, "")}-${hash}`;
}

const RESTIC_CACHE_DIR = "/tmp/restic-cache";

const defaultResources = { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "1Gi" } };

export function buildAgentPod(i: AgentPodInput): Record<string, unknown> {
  const strip = (a: RepositoryAccess) => ({
    repository: a.repository,
    metadata: a.metadata,
    passwordFile: a.passwordFile,
    caFile: a.caFile,
    insecureTls: a.insecureTls,
    options: a.options,
    repositoryId: a.repositoryId,
  });
  const spec: TaskSpec = { task: i.task, target: strip(i.target), timeoutSeconds: i.deadlineSeconds - 30 };
  if (i.source) spec.source = strip(i.source);
  if (i.snapshotIds) spec.snapshotIds = i.snapshotIds;
  if (i.plan) spec.plan = i.plan;
  if (i.locks) spec.locks = i.locks;
  if (i.aging) spec.aging = i.aging;
  if (i.downstream) spec.downstream = i.downstream.map((d) => ({ ...d, access: strip(d.access) }));
  // Unreachable downstream copies are not mounted: nothing reads them.
  const accesses = [i.target, ...(i.source ? [i.source] : []), ...(i.downstream ?? []).filter((d) => !d.unreachable).map((d) => d.access)];
  // Bounded scratch space: a full node disk evicts every pod on it. restic's cache has its own volume and limit.
  const volumes = [
    { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
    { name: "restic-cache", emptyDir: { sizeLimit: "2Gi" } },
    ...accesses.flatMap((a) => a.volumes.map((v) => ({ name: v.name, ...v.source }))),
  ];
  // One env var per secret key; the same variable twice (a copy within one S3 account) is set once.
  const env = new Map<string, Record<string, unknown>>();
  for (const a of accesses)
    for (const e of a.env)
      if (!env.has(e.name)) env.set(e.name, { name: e.name, valueFrom: { secretKeyRef: { name: e.secret, key: e.key } } });
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: i.name,
      namespace: i.namespace,
      labels: {
        "app.kubernetes.io/name": "auxo",
        "app.kubernetes.io/component": "mediaagent",
        "app.kubernetes.io/managed-by": "auxo",
        "auxo.dev/task": i.task,
        ...i.labels,
      },
      ownerReferences: [i.owner],
    },
    spec: {
      restartPolicy: "Never",
      activeDeadlineSeconds: i.deadlineSeconds,
      terminationGracePeriodSeconds: 30,
      serviceAccountName: i.serviceAccountName,
      automountServiceAccountToken: false,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        fsGroup: 65532,
        seccompProfile: { type: "RuntimeDefault" },
      },
      nodeSelector: i.placement?.nodeSelector,
      tolerations: i.placement?.tolerations,
      priorityClassName: i.placement?.priorityClassName,
      containers: [
        {
          name: "agent",
          image: i.image,
          command: ["auxo", "agent", i.task],
          env: [
            { name: "AUXO_TASK", value: JSON.stringify(spec) },
            { name: "AUXO_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
            { name: "HOME", value: "/tmp" },
            { name: "RESTIC_CACHE_DIR", value: RESTIC_CACHE_DIR },
            ...env.values(),
          ],
          resources: i.placement?.resources ?? defaultResources,
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
          terminationMessagePolicy: "FallbackToLogsOnError",
          volumeMounts: [
            { name: "tmp", mountPath: "/tmp" },
            { name: "restic-cache", mountPath: RESTIC_CACHE_DIR },
            ...accesses.flatMap((a) => a.volumes.map((v) => ({ name: v.name, mountPath: v.mountPath, readOnly: v.readOnly }))),
          ],
        },
      ],
      volumes,
    },
  };
}
