// A library's status: its references (credentials Secrets and keys, the claim of a filesystem library), what the
// operator allows (hostPath, NFS), and probe rounds. The probe of the storage itself runs in a MediaAgent pod, one
// at a time: every probeInterval while the library is healthy, with a back-off while it is down, and now when a
// MediaAgent that could not reach it asked. Pure: the controller gathers the facts and applies the plan.
import type { LibrarySpec, LibraryStatus } from "../api/v1alpha1/index.ts";
import { formatTime, parseTime } from "./time.ts";
import type { OwnerReference } from "../kube/resources.ts";
import { podName } from "./names.ts";
import type { AgentPodInput } from "../mediaagent/pod.ts";
import type { Plan } from "./plan.ts";
import { nextProbeAt } from "./probe.ts";
import {
  checkLibraryVolume,
  checkSecrets,
  type LibraryAllowance,
  type Problem,
  type SecretKeys,
  type SecretRefCheck,
} from "./references.ts";
import { repositoryAccess } from "./repository.ts";

/** The Secrets (and keys) a library names. */
export function librarySecretRefs(s: LibrarySpec): SecretRefCheck[] {
  const refs: SecretRefCheck[] = [];
  if (s.s3) {
    const c = s.s3.credentialsSecret;
    refs.push({ field: "spec.s3.credentialsSecret", name: c.name, key: c.accessKeyIdKey ?? "AWS_ACCESS_KEY_ID" });
    refs.push({ field: "spec.s3.credentialsSecret", name: c.name, key: c.secretAccessKeyKey ?? "AWS_SECRET_ACCESS_KEY" });
    if (s.s3.caSecret) refs.push({ field: "spec.s3.caSecret", name: s.s3.caSecret.name, key: s.s3.caSecret.key ?? "ca.crt" });
  }
  if (s.rest?.credentialsSecret) {
    const c = s.rest.credentialsSecret;
    refs.push({ field: "spec.rest.credentialsSecret", name: c.name, key: c.usernameKey ?? "username" });
    refs.push({ field: "spec.rest.credentialsSecret", name: c.name, key: c.passwordKey ?? "password" });
  }
  if (s.rest?.caSecret) refs.push({ field: "spec.rest.caSecret", name: s.rest.caSecret.name, key: s.rest.caSecret.key ?? "ca.crt" });
  return refs;
}

/** A probe pod of the library, with its verdict once it ended. */
export interface ProbePod {
  name: string;
  result?: { ok: boolean; message: string; at?: string };
}

export interface LibraryFacts {
  name: string;
  namespace: string;
  spec: LibrarySpec;
  status: LibraryStatus;
  /** The Secrets the library names, as read. */
  secrets: SecretKeys;
  /** The claim a filesystem library names exists (true when it names none). */
  claimExists: boolean;
  allow: LibraryAllowance;
  /** The operator probes libraries (off: a library is Ready as far as its configuration goes). */
  probes: boolean;
  /** Probe pods the library controls. */
  probePods: ProbePod[];
  /** When a MediaAgent that could not reach the library last asked for a probe. */
  askedAt?: number;
  owner: OwnerReference;
  image: string;
  probeTimeoutSeconds: number;
}

export interface LibraryStatusFields {
  phase: NonNullable<LibraryStatus["phase"]>;
  lastProbeTime?: string;
  message?: string;
  consecutiveFailures: number;
  nextProbeTime?: string;
}

interface Round {
  fields: LibraryStatusFields;
  problems: Problem[];
  pods?: AgentPodInput[];
  deletePods?: string[];
  requeueAfterMs?: number;
}

const interval = (f: LibraryFacts) => f.spec.probeInterval ?? "5m";

/** A verdict in status: failures count up (and probes back off), a success resets them. */
function verdict(f: LibraryFacts, ok: boolean, message: string, at: number): Partial<LibraryStatusFields> {
  const failures = ok ? 0 : (f.status.consecutiveFailures ?? 0) + 1;
  return {
    phase: ok ? "Ready" : "Unreachable",
    message,
    lastProbeTime: formatTime(at),
    consecutiveFailures: failures,
    nextProbeTime: formatTime(nextProbeAt({ lastProbeTime: at, consecutiveFailures: failures, probeInterval: interval(f) })),
  };
}

/**
 * A finished probe: its verdict is recorded first, and the pod removed only once status shows it, so a reconcile on
 * a cache without the new status never finds "no probe yet" and starts another pod.
 */
function probeVerdictStep(f: LibraryFacts, fields: LibraryStatusFields, pod: ProbePod, now: number): Round {
  const r = pod.result as NonNullable<ProbePod["result"]>;
  const at = parseTime(r.at) ?? now;
  if (f.status.lastProbeTime === formatTime(at)) return { fields, problems: [], deletePods: [pod.name] };
  return { fields: { ...fields, ...verdict(f, r.ok, r.message, parseTime(formatTime(at)) as number) }, problems: [] };
}

/** No probe pod: one starts when the round is due (scheduled, or asked for since the last probe). */
function probeDueStep(f: LibraryFacts, fields: LibraryStatusFields, now: number, rejected: { name: string; message: string }[]): Round {
  const last = parseTime(f.status.lastProbeTime);
  const scheduled = nextProbeAt({
    lastProbeTime: last,
    consecutiveFailures: f.status.consecutiveFailures ?? 0,
    probeInterval: interval(f),
  });
  const asked = f.askedAt !== undefined && f.askedAt > (last ?? 0) + 999 ? f.askedAt : undefined;
  const due = asked !== undefined ? Math.min(scheduled, asked) : scheduled;
  if (due > now) return { fields, problems: [], requeueAfterMs: Math.max(due - now, 1000) };
  const pod: AgentPodInput = {
    task: "probe",
    namespace: f.namespace,
    // One name per probe round: a repeated reconcile finds the pod instead of starting another.
    name: podName(f.name, "probe", String(last ?? 0)),
    owner: f.owner,
    image: f.image,
    target: repositoryAccess(f.spec, "", undefined, "target"),
    deadlineSeconds: f.probeTimeoutSeconds + 30,
  };
  const refused = rejected.find((r) => r.name === pod.name);
  if (!refused) return { fields, problems: [], pods: [pod] };
  // Counted as a failed probe: the library is not Ready, and probes back off like any failure.
  return {
    fields: { ...fields, ...verdict(f, false, refused.message, now) },
    problems: [{ reason: "PodRejected", message: refused.message }],
    pods: [pod],
  };
}

/** Problems of the library's configuration: Secrets, the claim, storage the operator does not allow. */
function libraryProblems(f: LibraryFacts): { problems: Problem[]; refused: Problem[] } {
  const problems = checkSecrets(librarySecretRefs(f.spec), f.secrets);
  // Tenancy: storage outside what the namespace owns only where the operator allows it (docs/tenancy.md).
  const refused = checkLibraryVolume(f.spec, f.allow);
  problems.push(...refused);
  const claim = f.spec.filesystem?.persistentVolumeClaim?.claimName;
  if (claim && !f.claimExists)
    problems.push({
      reason: "ClaimNotFound",
      message: `spec.filesystem.persistentVolumeClaim names claim "${claim}", which does not exist in this namespace`,
    });
  return { problems, refused };
}

/** The library's status plan; `rejected` are the pods of an earlier plan that the API server refused. */
export function planLibrary(
  f: LibraryFacts,
  now: number,
  rejected: { name: string; message: string }[] = [],
): Plan<LibraryStatusFields, AgentPodInput> {
  const { problems, refused } = libraryProblems(f);
  const st = f.status;
  let fields: LibraryStatusFields = {
    phase: st.phase ?? "Pending",
    lastProbeTime: st.lastProbeTime,
    message: st.message,
    consecutiveFailures: st.consecutiveFailures ?? 0,
    nextProbeTime: st.nextProbeTime,
  };
  // A refused library is never Ready, even one probed before the operator stopped allowing it: nothing uses it.
  if (refused.length) fields = { ...fields, phase: "Pending", message: refused[0]?.message };
  let round: Round = { fields, problems: [] };
  if (problems.length === 0 && f.probes) {
    const finished = f.probePods.find((p) => p.result !== undefined);
    if (finished) round = probeVerdictStep(f, fields, finished, now);
    else if (f.probePods.length === 0) round = probeDueStep(f, fields, now, rejected);
  }
  fields = round.fields;
  problems.push(...round.problems);
  // An unreachable library is not Ready, and neither is one not probed yet (only a probe proves the storage works);
  // with probes switched off by the operator, a library is Ready as far as its configuration goes.
  const readyProblems =
    problems.length === 0 && fields.phase === "Unreachable"
      ? [{ reason: "Unreachable", message: String(fields.message ?? "probe failed") }]
      : problems;
  const ok =
    fields.phase === "Ready"
      ? { reason: "Reachable", message: String(fields.message ?? "the last probe succeeded") }
      : { reason: "Configured", message: "every Secret and claim the library names exists; library probes are off" };
  const unknown =
    fields.phase !== "Ready" && f.probes
      ? { reason: "ProbePending", message: "every Secret and claim the library names exists; waiting for the first probe" }
      : undefined;
  return {
    status: fields,
    ready: { problems: readyProblems, ok, unknown },
    pods: round.pods,
    deletePods: round.deletePods,
    requeueAfterMs: round.requeueAfterMs,
  };
}
