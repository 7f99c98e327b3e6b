// The MediaAgent pod builder: a pure function from a task to a Pod. Same image as the operator, `auxo agent
// <task>`, non-root, read-only root filesystem, bounded resources, placement from the copy's mediaAgent settings,
// owned by the resource it serves, credentials only from Secrets (env valueFrom or mounted files). The task's
// non-secret parameters travel in one env var as JSON; the result comes back in the termination message.
export { podName } from "../policy/names.ts";
import type { KubeObject, OwnerReference } from "../kube/resources.ts";
import { Label, MANAGED_BY } from "../policy/labels.ts";
import type { RepositoryAccess } from "../policy/repository.ts";
import type { AgentTask, AgingTask, BackupCopyTask, CopyTaskPlan, DownstreamTask, SnapCopyTask, TaskSpec } from "./protocol.ts";

export type { AgentTask, AgingTask, BackupCopyTask, CopyTaskPlan, DownstreamTask, SnapCopyTask, TaskSpec } from "./protocol.ts";

export interface PodPlacement {
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
  resources?: Record<string, unknown>;
  priorityClassName?: string;
  /** core/v1 Affinity (backup copies: access nodes required, the copy's MediaAgent nodes preferred). */
  affinity?: Record<string, unknown>;
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
  snapshot?: SnapCopyTask;
  backupCopy?: BackupCopyTask;
  verification?: TaskSpec["verification"];
  listing?: TaskSpec["listing"];
  restore?: TaskSpec["restore"];
  /** PVCs the pod mounts, read-only unless said (a volume restored from a VolumeSnapshot for snapcopy; a restore's target). */
  claims?: { name: string; claimName: string; mountPath: string; readOnly?: boolean }[];
  placement?: PodPlacement;
  deadlineSeconds: number;
  labels?: Record<string, string>;
  /** Annotations of the pod (names in full, where a label value may be shortened). */
  annotations?: Record<string, string>;
}

const RESTIC_CACHE_DIR = "/tmp/restic-cache";

const defaultResources = { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "1Gi" } };

/** A repository's access as the task names it: no volumes, no env (those are the pod's). */
const strip = (a: RepositoryAccess): TaskSpec["target"] => ({
  repository: a.repository,
  metadata: a.metadata,
  passwordFile: a.passwordFile,
  caFile: a.caFile,
  insecureTls: a.insecureTls,
  options: a.options,
  repositoryId: a.repositoryId,
});

/** What the agent reads from AUXO_TASK: the input without secrets, with the deadline for restic inside the pod's. */
function taskSpecOf(i: AgentPodInput): TaskSpec {
  const spec: TaskSpec = { task: i.task, target: strip(i.target), timeoutSeconds: i.deadlineSeconds - 30 };
  if (i.source) spec.source = strip(i.source);
  if (i.snapshotIds) spec.snapshotIds = i.snapshotIds;
  if (i.plan) spec.plan = i.plan;
  if (i.locks) spec.locks = i.locks;
  if (i.aging) spec.aging = i.aging;
  if (i.snapshot) spec.snapshot = i.snapshot;
  if (i.backupCopy) spec.backupCopy = i.backupCopy;
  if (i.verification) spec.verification = i.verification;
  if (i.listing) spec.listing = i.listing;
  if (i.restore) spec.restore = i.restore;
  if (i.downstream) spec.downstream = i.downstream.map((d) => ({ ...d, access: strip(d.access) }));
  return spec;
}

export function buildAgentPod(i: AgentPodInput): KubeObject {
  const spec = taskSpecOf(i);
  // Unreachable downstream copies are not mounted: nothing reads them.
  const accesses = [i.target, ...(i.source ? [i.source] : []), ...(i.downstream ?? []).filter((d) => !d.unreachable).map((d) => d.access)];
  // Bounded scratch space: a full node disk evicts every pod on it. restic's cache has its own volume and limit.
  const volumes = [
    { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
    { name: "restic-cache", emptyDir: { sizeLimit: "2Gi" } },
    ...accesses.flatMap((a) => a.volumes.map((v) => ({ name: v.name, ...v.source }))),
    ...(i.claims ?? []).map((c) => ({ name: c.name, persistentVolumeClaim: { claimName: c.claimName, readOnly: c.readOnly ?? true } })),
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
        [Label.managedBy]: MANAGED_BY,
        [Label.task]: i.task,
        ...i.labels,
      },
      ...(i.annotations ? { annotations: i.annotations } : {}),
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
      affinity: i.placement?.affinity,
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
            ...(i.claims ?? []).map((c) => ({ name: c.name, mountPath: c.mountPath, readOnly: c.readOnly ?? true })),
          ],
        },
      ],
      volumes,
    },
  };
}
