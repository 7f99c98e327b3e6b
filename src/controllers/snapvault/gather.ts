// The facts one SnapVault reconcile decides on, read from the caches into plain objects: its references, the
// destination library and repository access, the PVCs it snapshots, the VolumeSnapshots it cut or adopts, the volumes
// restored for copies and its MediaAgent pods (results, live progress, and for those not started the provisioner's
// or the kubelet's latest failure, read from their events), and the streams in use on the destination library.
import type { Informer } from "../../kube/informer.ts";
import { Events, type KubeObject, parseTime } from "../../kube/resources.ts";
import type { SnapCopyResult } from "../../mediaagent/protocol.ts";
import { Annotation, Label } from "../../policy/labels.ts";
import { selectorMatches } from "../../policy/labelselector.ts";
import { labelValue } from "../../policy/names.ts";
import { repositoryAccess } from "../../policy/repository.ts";
import { secretKeys } from "../../policy/references.ts";
import { budgetOf } from "../../policy/snapretry.ts";
import { referenceProblems } from "../../policy/snapvault.ts";
import type { ClaimFacts, PodFacts, PvcFacts, SnapVaultRunFacts, VsFacts } from "../../policy/snapvault-run.ts";
import type { Window } from "../../policy/windows.ts";
import type { Manager } from "../../runtime/manager.ts";
import { controllerRef } from "../../runtime/objects.ts";
import { accessNodeNames } from "../../policy/placement.ts";
import { COPY_TASKS, podActive, taskOf } from "../agent/busy.ts";
import { endedAgentHosts } from "../agent/pods.ts";
import { podProgress } from "../agent/progress.ts";
import { agentResult, type PodObj } from "../agent/results.ts";
import type { CopyObj, LibraryObj, PolicyObj, SnapVaultObj } from "../resources.ts";
import { SnapVaults } from "../resources.ts";
import { backupTarget, needsNodes, nodesOf } from "./backup.ts";
import type { ControllerSettings } from "../settings.ts";

export interface PvcObj extends KubeObject {
  spec?: { storageClassName?: string; resources?: { requests?: { storage?: string } } };
  status?: { phase?: string; capacity?: { storage?: string } };
}

export interface VsObj extends KubeObject {
  spec?: { source?: { persistentVolumeClaimName?: string; volumeSnapshotContentName?: string } };
  status?: {
    creationTime?: string;
    readyToUse?: boolean;
    restoreSize?: string;
    boundVolumeSnapshotContentName?: string;
    error?: { message?: string; time?: string };
  };
}

export interface Caches {
  mgr: Manager;
  settings: ControllerSettings;
  vaults: Informer<SnapVaultObj>;
  libraries: Informer<LibraryObj>;
  policies: Informer<PolicyObj>;
  copies: Informer<CopyObj>;
  claims: Informer<PvcObj>;
  snapshots?: Informer<VsObj>;
  agentPods: Informer<PodObj>;
  progressReadAt: Map<string, number>;
  /** The latest progress read of each pod, shown between reads. */
  progress: Map<string, NonNullable<PodFacts["progress"]>>;
  /** The cluster's nodes, read at most every 30 s and only for SnapVaults with access nodes (undefined: not allowed). */
  nodes?: { at: number; list?: { name: string; labels?: Record<string, string> }[] };
}

const ownedBy = (o: KubeObject, uid: string | undefined) => o.metadata.ownerReferences?.some((r) => r.uid === uid) ?? false;

export async function gather(c: Caches, sv: SnapVaultObj, now: number): Promise<SnapVaultRunFacts> {
  const ns = sv.metadata.namespace as string;
  const spec = sv.spec;
  const lib = c.libraries.get(ns, spec.destination.library);
  const pw = spec.destination.encryption.passwordSecret;
  const problems = referenceProblems({
    spec,
    libraryExists: lib !== undefined,
    policyExists: !spec.storagePolicy || c.policies.get(ns, spec.storagePolicy) !== undefined,
    secrets: secretKeys(await c.mgr.secrets().getMany(ns, [pw.name])),
  });
  if (!c.snapshots)
    problems.push({
      reason: "VolumeSnapshotsNotServed",
      message: "the cluster does not serve snapshot.storage.k8s.io/v1 (install the CSI snapshot CRDs and restart the operator)",
    });
  const policy = spec.storagePolicy ? c.policies.get(ns, spec.storagePolicy) : undefined;
  const uid = sv.metadata.uid as string;
  const mine = c.agentPods.list(ns).filter((p) => ownedBy(p, uid));
  return {
    sv: {
      name: sv.metadata.name,
      namespace: ns,
      uid,
      createdAt: sv.metadata.creationTimestamp,
      spec,
      status: sv.status ?? {},
      owner: controllerRef(sv, SnapVaults),
      runRequested: sv.metadata.annotations?.[Annotation.runRequested],
      repickRequested: sv.metadata.annotations?.[Annotation.repickRequested],
      backupCopyRequested: sv.metadata.annotations?.[Annotation.backupCopyRequested],
    },
    problems,
    library: lib && {
      name: lib.metadata.name,
      phase: lib.status?.phase,
      message: lib.status?.conditions?.find((x) => x.type === "Ready")?.message,
      maxStreams: lib.spec.maxStreams ?? 10,
    },
    access:
      lib &&
      repositoryAccess(lib.spec, spec.destination.repositoryPath ?? `${ns}/snapvault/${sv.metadata.name}`, {
        secret: pw.name,
        key: pw.key ?? "password",
      }),
    policy: policy && { timeZone: policy.spec.timeZone, operationWindows: policy.spec.operationWindows as Window[] | undefined },
    pvcs: sourcePvcs(c, sv),
    listed: spec.source.persistentVolumeClaims ?? [],
    pvcsPresent: c.claims
      .list(ns)
      .filter((p) => !p.metadata.labels?.[Label.snapVault] && !p.metadata.deletionTimestamp)
      .map((p) => p.metadata.name),
    snapshots: c.snapshots ? snapshotsOf(c.snapshots, c.claims, sv) : [],
    claims: await Promise.all(
      c.claims
        .list(ns)
        .filter((p) => ownedBy(p, uid) && p.metadata.labels?.[Label.snapVault] === labelValue(sv.metadata.name))
        .map((p) => claimFacts(c, p)),
    ),
    pods: await Promise.all(mine.map((p) => podFacts(c, p, now))),
    streamsInUse: lib ? streamsOn(c.agentPods.list(ns), lib.metadata.name) : 0,
    deadHosts: endedAgentHosts(mine),
    backupTarget: spec.backupCopy?.enabled && policy ? backupTarget(c, policy) : undefined,
    nodes: spec.backupCopy?.enabled && needsNodes(c, sv) ? await nodesOf(c, now) : undefined,
    settings: {
      agentImage: c.settings.agentImage,
      retryBaseMs: c.settings.retryBaseMs ?? 30_000,
      budget: budgetOf(spec.retry, { maxAttempts: c.settings.snapRetryMaxAttempts ?? 10, maxDays: c.settings.snapRetryMaxDays ?? 5 }),
    },
    now,
  };
}

/** The PVCs Auxo snapshots: listed by name and selected by label, that exist (restored volumes of copies never). */
export function sourcePvcs(c: Caches, sv: SnapVaultObj): PvcFacts[] {
  const ns = sv.metadata.namespace;
  const src = sv.spec.source;
  const out = new Map<string, PvcObj>();
  for (const name of src.persistentVolumeClaims ?? []) {
    const p = c.claims.get(ns, name);
    if (p) out.set(name, p);
  }
  if (src.persistentVolumeClaimSelector)
    for (const p of c.claims.list(ns))
      if (!p.metadata.labels?.[Label.snapVault] && selectorMatches(src.persistentVolumeClaimSelector, p.metadata.labels))
        out.set(p.metadata.name, p);
  return [...out.values()]
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => ({
      name: p.metadata.name,
      bound: p.status?.phase === "Bound",
      storageClassName: p.spec?.storageClassName,
      size: p.status?.capacity?.storage ?? p.spec?.resources?.requests?.storage,
      accessNodes: accessNodeNames(p.metadata.annotations?.[Annotation.accessNodes]),
    }));
}

/** The VolumeSnapshots this SnapVault cut (its label and its ownership), and those it adopts by label. */
function snapshotsOf(inf: Informer<VsObj>, claims: Informer<PvcObj>, sv: SnapVaultObj): VsFacts[] {
  const adopt = sv.spec.source.adopt?.volumeSnapshotSelector;
  const out: VsFacts[] = [];
  for (const s of inf.list(sv.metadata.namespace)) {
    const taken = s.metadata.labels?.[Label.snapVault] === labelValue(sv.metadata.name) && ownedBy(s, sv.metadata.uid);
    if (!taken && !(adopt && selectorMatches(adopt, s.metadata.labels))) continue;
    const pvcName = s.spec?.source?.persistentVolumeClaimName;
    const source = pvcName ? claims.get(s.metadata.namespace, pvcName) : undefined;
    out.push({
      storageClassName: source?.spec?.storageClassName,
      size: source?.status?.capacity?.storage,
      name: s.metadata.name,
      uid: s.metadata.uid as string,
      pvc: s.spec?.source?.persistentVolumeClaimName ?? s.metadata.name,
      origin: taken ? "Taken" : "Adopted",
      creationTime: s.status?.creationTime ?? s.metadata.creationTimestamp,
      readyToUse: s.status?.readyToUse === true,
      error: s.status?.error?.message,
      restoreSize: s.status?.restoreSize,
      handle: s.status?.boundVolumeSnapshotContentName,
      deleting: !!s.metadata.deletionTimestamp,
      trigger: taken ? (s.metadata.labels?.[Label.trigger] as VsFacts["trigger"]) : undefined,
      run: taken ? Number(s.metadata.annotations?.[Annotation.run]) || undefined : undefined,
    });
  }
  return out;
}

/** Copy pods (aux copy and snap copy) at work on the library. */
export function streamsOn(pods: PodObj[], library: string): number {
  const l = labelValue(library);
  return pods.filter(
    (p) =>
      podActive(p) &&
      COPY_TASKS.includes(taskOf(p)) &&
      (p.metadata.labels?.[Label.targetLibrary] === l || p.metadata.labels?.[Label.sourceLibrary] === l),
  ).length;
}

interface EventObj extends KubeObject {
  reason?: string;
  message?: string;
  lastTimestamp?: string;
  eventTime?: string;
}

/** The newest event of `reason` about an object (core/v1 events: the provisioner's and the kubelet's). */
async function latestEvent(c: Caches, ns: string, kind: string, name: string, reason: string): Promise<string | undefined> {
  try {
    const { items } = await c.mgr.client.list<EventObj>(Events, {
      namespace: ns,
      fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
    });
    const t = (e: EventObj) => parseTime(e.lastTimestamp) ?? parseTime(e.eventTime) ?? parseTime(e.metadata.creationTimestamp) ?? 0;
    return items
      .filter((e) => e.reason === reason)
      .sort((a, b) => t(b) - t(a))[0]
      ?.message?.slice(0, 500);
  } catch (err) {
    c.mgr.log.debug({ err, object: `${ns}/${name}` }, "events not readable");
    return undefined;
  }
}

async function claimFacts(c: Caches, p: PvcObj): Promise<ClaimFacts> {
  const phase = p.status?.phase;
  const ns = p.metadata.namespace as string;
  return {
    name: p.metadata.name,
    phase,
    failure: phase === "Pending" ? await latestEvent(c, ns, "PersistentVolumeClaim", p.metadata.name, "ProvisioningFailed") : undefined,
  };
}

async function podFacts(c: Caches, pod: PodObj & { status?: { startTime?: string } }, now: number): Promise<PodFacts> {
  const name = pod.metadata.name;
  const ns = pod.metadata.namespace as string;
  const result = agentResult<SnapCopyResult>(pod);
  const facts: PodFacts = {
    name,
    phase: pod.status?.phase,
    startedAt: parseTime(pod.status?.startTime),
    result: result as PodFacts["result"],
  };
  if (result) return facts;
  if (pod.status?.phase === "Pending" || !pod.status?.phase) {
    if (taskOf(pod) === "snapcopy" || taskOf(pod) === "backupcopy")
      facts.failedMount = await latestEvent(c, ns, "Pod", name, "FailedMount");
    return facts;
  }
  const interval = c.settings.progressIntervalMs ?? 2000;
  if (now - (c.progressReadAt.get(name) ?? 0) >= interval) {
    c.progressReadAt.set(name, now);
    if (c.progressReadAt.size > 10_000) c.progressReadAt.delete(c.progressReadAt.keys().next().value as string);
    const p = await podProgress(c.mgr, ns, name);
    if (p && (p.bytesDone !== undefined || p.percent !== undefined)) {
      c.progress.set(name, { bytesDone: p.bytesDone, bytesTotal: p.bytesTotal, percent: p.percent });
      if (c.progress.size > 1000) c.progress.delete(c.progress.keys().next().value as string);
    }
  }
  facts.progress = c.progress.get(name);
  return facts;
}
