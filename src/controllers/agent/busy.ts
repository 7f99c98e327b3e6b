// Which MediaAgent pods are at work on a copy's repository, computed one way for every controller: a pod works on a
// copy's repository when it is labelled with the copy as its target or source, or when the copy owns it. Only live
// pods count (Pending or Running): an ended pod holds no lock.
import { labelValue } from "../../policy/names.ts";
import { Label } from "../../policy/labels.ts";
import type { PodObj } from "./results.ts";
import type { CopyObj } from "../resources.ts";

export const podActive = (p: PodObj): boolean => !p.status?.phase || p.status.phase === "Pending" || p.status.phase === "Running";

/** The task a MediaAgent pod runs (its label). */
export const taskOf = (p: PodObj): string => p.metadata.labels?.[Label.task] ?? "";

/**
 * Tasks that move a job's data through a library: they share its streams (aux copy, snap copy, backup copy, and data
 * verification, which reads every blob of its jobs).
 */
export const COPY_TASKS = ["copy", "snapcopy", "backupcopy", "verify"];

/** A data aging run that prunes: it takes restic's exclusive lock (a preview only reads). */
export const prunes = (p: PodObj): boolean => taskOf(p) === "age" && p.metadata.labels?.[Label.dryRun] !== "true";

/** Tasks that only read a repository's catalog or storage: they never stand in a prune's way. */
export const readsOnly = (p: PodObj): boolean => ["scan", "probe", "plan", "list"].includes(taskOf(p));

/** Live pods at work on the copy's repository. */
export function podsOnRepository(pods: PodObj[], copy: { name: string; uid?: string }): PodObj[] {
  const label = labelValue(copy.name);
  return pods.filter(
    (p) =>
      podActive(p) &&
      (p.metadata.labels?.[Label.copy] === label ||
        p.metadata.labels?.[Label.source] === label ||
        (copy.uid !== undefined && (p.metadata.ownerReferences?.some((o) => o.uid === copy.uid) ?? false))),
  );
}

/** Ready reasons of a copy whose repository no pod may write or read for it (shared, replaced, or outside its namespace). */
export const REPOSITORY_REFUSED = new Set(["RepositoryShared", "RepositoryChanged", "RepositoryPathNotAllowed"]);

/** The condition that keeps every pod off a copy's repository, if any. */
export function repositoryRefusal(copy: CopyObj): { reason: string; message: string } | undefined {
  const c = (copy.status?.conditions ?? []).find((x) => x.type === "Ready" && x.status === "False" && REPOSITORY_REFUSED.has(x.reason));
  return c && { reason: c.reason, message: c.message };
}
