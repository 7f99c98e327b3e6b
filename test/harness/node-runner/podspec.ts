// Pure parts of the local node runner: how a pod's spec turns into processes (environment, volumes, command) and
// how exits turn into pod status. No I/O here, so unit tests cover them without a cluster.
import type { Obj } from "../kube-rest.ts";

/** Kubernetes' $(VAR) expansion: $(NAME) is replaced when NAME is defined, $$ escapes a dollar sign. */
export function expandVars(input: string, vars: ReadonlyMap<string, string>): string {
  let out = "";
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c === "$" && input[i + 1] === "$") {
      out += "$";
      i++;
    } else if (c === "$" && input[i + 1] === "(") {
      const end = input.indexOf(")", i + 2);
      const name = end < 0 ? undefined : input.slice(i + 2, end);
      if (name !== undefined && vars.has(name)) {
        out += vars.get(name);
        i = end;
      } else if (name !== undefined) {
        out += input.slice(i, end + 1);
        i = end;
      } else {
        out += c;
      }
    } else {
      out += c;
    }
  }
  return out;
}

/** Lookups the environment needs; each returns undefined when the object (or key) does not exist. */
export interface EnvSources {
  secret(name: string): Record<string, string> | undefined; // decoded values
  configMap(name: string): Record<string, string> | undefined;
}

/** Why a container cannot start yet: the kubelet's CreateContainerConfigError. */
export class ContainerConfigError extends Error {}

function fieldRef(pod: Obj, fieldPath: string): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (m) return pod.metadata?.[m[1] as string]?.[m[2] as string] ?? "";
  switch (fieldPath) {
    case "metadata.name":
      return pod.metadata.name;
    case "metadata.namespace":
      return pod.metadata.namespace;
    case "metadata.uid":
      return pod.metadata.uid;
    case "spec.nodeName":
      return pod.spec.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec.serviceAccountName ?? "";
    case "status.hostIP":
    case "status.podIP":
      return "127.0.0.1";
    default:
      throw new ContainerConfigError(`unsupported fieldRef ${fieldPath}`);
  }
}

/**
 * The environment of one container, in the kubelet's order: envFrom first, then env (later entries win, and env
 * values may refer to earlier variables with $(NAME)). Missing required Secrets or ConfigMaps throw
 * ContainerConfigError with the kubelet's wording.
 */
export function resolveEnv(pod: Obj, container: Obj, src: EnvSources): Map<string, string> {
  const env = new Map<string, string>();
  for (const from of container.envFrom ?? []) {
    const prefix: string = from.prefix ?? "";
    const ref = from.secretRef ?? from.configMapRef;
    const kind = from.secretRef ? "secret" : "configmap";
    const data = from.secretRef ? src.secret(ref.name) : src.configMap(ref.name);
    if (!data) {
      if (ref.optional) continue;
      throw new ContainerConfigError(`${kind} "${ref.name}" not found`);
    }
    for (const [k, v] of Object.entries(data)) env.set(prefix + k, v);
  }
  for (const e of container.env ?? []) {
    if (e.valueFrom === undefined) {
      env.set(e.name, expandVars(e.value ?? "", env));
      continue;
    }
    const vf = e.valueFrom;
    if (vf.secretKeyRef || vf.configMapKeyRef) {
      const ref = vf.secretKeyRef ?? vf.configMapKeyRef;
      const kind = vf.secretKeyRef ? "secret" : "configmap";
      const data = vf.secretKeyRef ? src.secret(ref.name) : src.configMap(ref.name);
      if (!data) {
        if (ref.optional) continue;
        throw new ContainerConfigError(`${kind} "${ref.name}" not found`);
      }
      if (!(ref.key in data)) {
        if (ref.optional) continue;
        throw new ContainerConfigError(
          `couldn't find key ${ref.key} in ${kind === "secret" ? "Secret" : "ConfigMap"} ${pod.metadata.namespace}/${ref.name}`,
        );
      }
      env.set(e.name, data[ref.key] as string);
    } else if (vf.fieldRef) {
      env.set(e.name, fieldRef(pod, vf.fieldRef.fieldPath));
    } else if (vf.resourceFieldRef) {
      const r = vf.resourceFieldRef.resource as string;
      const val = r.startsWith("limits.") ? container.resources?.limits?.[r.slice(7)] : container.resources?.requests?.[r.slice(9)];
      env.set(e.name, String(val ?? "0"));
    } else {
      throw new ContainerConfigError(`env ${e.name}: unsupported valueFrom`);
    }
  }
  return env;
}

/** Command line of a container: command (or the image's known entrypoint) + args, both $(VAR)-expanded. */
export function commandLine(container: Obj, env: ReadonlyMap<string, string>, entrypoints: Readonly<Record<string, string[]>>): string[] {
  const command: string[] | undefined = container.command ?? entrypoints[container.image];
  if (!command || command.length === 0) {
    throw new ContainerConfigError(
      `image ${container.image} has no known entrypoint: the local node runner runs host commands, so set command`,
    );
  }
  return [...command, ...(container.args ?? [])].map((a) => expandVars(a, env));
}

/** True when a pod without a node may be bound to this node: no other scheduler, selectors match, no taints. */
export function schedulable(pod: Obj, node: { name: string; labels: Record<string, string> }): boolean {
  if (pod.spec.nodeName) return pod.spec.nodeName === node.name;
  if (pod.spec.schedulerName && pod.spec.schedulerName !== "default-scheduler") return false;
  if (pod.metadata.deletionTimestamp) return false;
  if (pod.status?.phase && pod.status.phase !== "Pending") return false;
  for (const [k, v] of Object.entries(pod.spec.nodeSelector ?? {})) {
    if (node.labels[k] !== v) return false;
  }
  const terms: Obj[] = pod.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  if (terms.length > 0) {
    const termMatches = (t: Obj) =>
      (t.matchExpressions ?? []).every((e: Obj) => {
        const v = node.labels[e.key];
        switch (e.operator) {
          case "In":
            return v !== undefined && e.values.includes(v);
          case "NotIn":
            return v === undefined || !e.values.includes(v);
          case "Exists":
            return v !== undefined;
          case "DoesNotExist":
            return v === undefined;
          default:
            return false;
        }
      }) && (t.matchFields ?? []).every((f: Obj) => f.key !== "metadata.name" || (f.operator === "In") === f.values.includes(node.name));
    if (!terms.some(termMatches)) return false;
  }
  return true;
}

export interface ContainerExit {
  name: string;
  exitCode: number;
  signal?: string;
  startedAt: string;
  finishedAt: string;
  message?: string;
}

/** The kubelet's rule for a finished container's termination message. */
export function terminationMessage(
  policy: string | undefined,
  fileContent: string | undefined,
  exitCode: number,
  logTail: string,
): string | undefined {
  const fromFile = fileContent?.slice(0, 4096);
  if (fromFile) return fromFile;
  if (policy === "FallbackToLogsOnError" && exitCode !== 0) {
    const lines = logTail.split("\n");
    const tail = lines.slice(-80).join("\n");
    return tail.slice(-2048) || undefined;
  }
  return undefined;
}

/** containerStatuses[].state.terminated for an exit. */
export function terminatedState(exit: ContainerExit, reason?: string): Obj {
  const state: Obj = {
    exitCode: exit.exitCode,
    reason: reason ?? (exit.exitCode === 0 ? "Completed" : "Error"),
    startedAt: exit.startedAt,
    finishedAt: exit.finishedAt,
  };
  if (exit.signal) state.signal = exit.signal === "SIGKILL" ? 9 : exit.signal === "SIGTERM" ? 15 : undefined;
  if (exit.message) state.message = exit.message;
  return state;
}

/**
 * Whether a container that exited should run again, by the pod's restartPolicy (default Always, as in the API).
 */
export function shouldRestart(restartPolicy: string | undefined, exitCode: number): boolean {
  const policy = restartPolicy ?? "Always";
  return policy === "Always" || (policy === "OnFailure" && exitCode !== 0);
}

/** Phase of a pod whose containers have all stopped for good. */
export function finalPhase(exits: ContainerExit[]): "Succeeded" | "Failed" {
  return exits.every((e) => e.exitCode === 0) ? "Succeeded" : "Failed";
}

/** Restart back-off, as the kubelet's: 10 s doubling to 5 min; shortened here by `scale` for tests. */
export function restartBackoffMs(restartCount: number, scale = 1): number {
  return Math.min(10_000 * 2 ** Math.max(0, restartCount - 1), 300_000) * scale;
}

/** The files of a Secret/ConfigMap volume: all keys, or only `items` (key → path), with modes. */
export function projectKeys(
  data: Record<string, string | Buffer>,
  items: Obj[] | undefined,
  defaultMode: number | undefined,
): { path: string; content: string | Buffer; mode: number }[] {
  const mode = defaultMode ?? 0o644;
  if (!items || items.length === 0) {
    return Object.entries(data).map(([k, v]) => ({ path: k, content: v, mode }));
  }
  const out: { path: string; content: string | Buffer; mode: number }[] = [];
  for (const it of items) {
    const v = data[it.key];
    if (v === undefined) {
      if (it.optional) continue;
      throw new ContainerConfigError(`configmap/secret references non-existent key ${it.key}`);
    }
    out.push({ path: it.path, content: v, mode: it.mode ?? mode });
  }
  return out;
}

/** A relative volume path must stay inside its volume. */
export function safeRelative(p: string): boolean {
  return p.length > 0 && !p.startsWith("/") && !p.split("/").includes("..");
}
