// What kubectl auxo reads before it decides: the policy, its copies and their libraries (the user's get/list rights),
// and the copies' catalogs through list pods (create pods, get pods/log). The decisions are policy/joblisting.ts's.
import type { CatalogEntry } from "../policy/catalog.ts";
import { repositoryRefusal } from "../controllers/agent/busy.ts";
import type { CopyObj, LibraryObj, PolicyObj } from "../controllers/resources.ts";
import { Libraries, PolicyCopies, StoragePolicies } from "../controllers/resources.ts";
import type { KubeClient } from "../kube/client.ts";
import { isNotFound } from "../kube/errors.ts";
import type { KubeObject, ResourceType } from "../kube/resources.ts";
import type { ListedJob, ListedJobEvents, ListResult } from "../mediaagent/protocol.ts";
import { rulesOf } from "../policy/copyrules.ts";
import type { CopyHistory } from "../policy/jobevents.ts";
import type { ListedCopy } from "../policy/joblisting.ts";
import { type CopyFacts, effectiveSource, type PolicyFacts } from "../policy/references.ts";
import type { RunRecord } from "../policy/runrecords.ts";
import { cliPodInput, runPod } from "./pods.ts";

export class CliError extends Error {}

/** An object the user named; a missing one is a CliError in kubectl's words (`storagepolicy "x" not found ...`). */
export async function getNamed<T extends KubeObject>(kube: KubeClient, r: ResourceType, namespace: string, name: string): Promise<T> {
  try {
    return await kube.get<T>(r, namespace, name);
  } catch (err) {
    if (isNotFound(err)) throw new CliError(`${r.kind.toLowerCase()} "${name}" not found in namespace "${namespace}"`, { cause: err });
    throw err;
  }
}

export interface PolicyView {
  namespace: string;
  policy: PolicyObj;
  /** The policy's copies, by precedence. */
  copies: CopyObj[];
  libraries: Map<string, LibraryObj>;
  /** The primary in force. */
  primary: string;
  image?: string;
}

const factsOf = (c: CopyObj): CopyFacts => ({
  name: c.metadata.name,
  storagePolicy: c.spec.storagePolicy,
  copyType: c.spec.copyType ?? "Synchronous",
  sourceCopy: c.spec.sourceCopy,
  precedence: c.spec.precedence,
  active: c.spec.active !== false,
  createdAt: c.metadata.creationTimestamp ?? "",
});

export async function policyView(kube: KubeClient, namespace: string, name: string, image?: string): Promise<PolicyView> {
  const policy = await getNamed<PolicyObj>(kube, StoragePolicies, namespace, name);
  const [copies, libraries] = await Promise.all([
    kube.list<CopyObj>(PolicyCopies, { namespace }),
    kube.list<LibraryObj>(Libraries, { namespace }),
  ]);
  const mine = copies.items
    .filter((c) => c.spec.storagePolicy === name)
    .sort((a, b) => (a.status?.precedence ?? 99) - (b.status?.precedence ?? 99) || a.metadata.name.localeCompare(b.metadata.name));
  if (mine.length === 0) throw new CliError(`storagepolicy "${name}" has no copies`);
  return {
    namespace,
    policy,
    copies: mine,
    libraries: new Map(libraries.items.map((l) => [l.metadata.name, l])),
    primary: policy.status?.primaryCopy ?? policy.spec.primaryCopy,
    image: image ?? policy.status?.mediaAgentImage,
  };
}

/** The copy's source in force (none for the primary). */
export function sourceOf(v: PolicyView, copy: CopyObj): string | undefined {
  const pf: PolicyFacts = {
    name: v.policy.metadata.name,
    primaryCopy: v.primary,
    promotedFrom: v.policy.status?.lastPromotion ? { name: v.policy.status.lastPromotion.from } : undefined,
  };
  return effectiveSource(factsOf(copy), pf);
}

/** Why no pod can read the copy now (its library not Ready, its repository refused), or undefined. */
export function unreadable(v: PolicyView, copy: CopyObj): string | undefined {
  const lib = v.libraries.get(copy.spec.library);
  if (!lib) return `library "${copy.spec.library}" not found`;
  if (lib.status?.phase !== "Ready")
    return `library "${copy.spec.library}" is ${lib.status?.phase ?? "not probed yet"}${lib.status?.message ? `: ${lib.status.message}` : ""}`;
  const refused = repositoryRefusal(copy);
  if (refused) return `${refused.reason}: ${refused.message}`;
  if (!copy.status?.repositoryReady) return "its repository is not ready yet";
  return undefined;
}

export function requireImage(v: PolicyView): string {
  if (!v.image)
    throw new CliError(
      `storagepolicy "${v.policy.metadata.name}" does not name its MediaAgent image yet (status.mediaAgentImage; an operator older than this plugin): pass --image`,
    );
  return v.image;
}

export interface CopyListing {
  catalog: CatalogEntry[];
  history?: CopyHistory;
  snapJobs: Set<string>;
  runs: RunRecord[];
  metadataError?: string;
}

/** Reads a copy's listing through a list pod; throws CliError when the pod fails or its log was cut. */
export async function listCopy(
  kube: KubeClient,
  v: PolicyView,
  copy: CopyObj,
  opts: { jobs: boolean; runs: number },
): Promise<CopyListing> {
  const lib = v.libraries.get(copy.spec.library) as LibraryObj;
  const input = cliPodInput("list", copy, lib, requireImage(v), { listing: { runs: opts.runs, ...(opts.jobs ? {} : { jobs: false }) } });
  const { outcome, log } = await runPod(kube, input, { wantLog: true });
  const r = outcome.data as Partial<ListResult>;
  if (!outcome.ok) throw new CliError(`copy ${copy.metadata.name}: ${outcome.message}`);
  const out: CopyListing = { catalog: [], snapJobs: new Set(), runs: [], metadataError: r.metadataError };
  const events: ListedJobEvents[] = [];
  for (const line of (log ?? "").split("\n")) {
    if (!line.startsWith('{"msg":"')) continue;
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (m.msg === "job") {
      const { msg: _m, snap, originalId, ...e } = m as unknown as ListedJob;
      out.catalog.push({ ...e, originalId: originalId ?? e.snapshotId, tagged: true });
      if (snap) out.snapJobs.add(e.jobId);
    } else if (m.msg === "jobevents") events.push(m as unknown as ListedJobEvents);
    else if (m.msg === "run") {
      const { msg: _m, ...rec } = m;
      out.runs.push(rec as unknown as RunRecord);
    }
  }
  // The result counts the lines: fewer read means the log was cut (a kubelet rotates large logs).
  if (out.catalog.length !== (r.jobs ?? 0) || events.length !== (r.events ?? 0) || out.runs.length !== (r.runs ?? 0))
    throw new CliError(
      `copy ${copy.metadata.name}: the listing pod printed ${r.jobs ?? 0} jobs, ${r.events ?? 0} job records and ${r.runs ?? 0} runs, its log holds ${out.catalog.length}, ${events.length} and ${out.runs.length} (the log was cut)`,
    );
  if (r.events !== undefined && !r.metadataError) {
    const h: CopyHistory = { lastCopied: new Map(), partial: new Set(), bad: new Set() };
    for (const e of events) {
      if (e.lastCopied) h.lastCopied.set(e.jobId, e.lastCopied);
      if (e.partial) h.partial.add(e.jobId);
      if (e.bad) h.bad.add(e.jobId);
    }
    out.history = h;
  }
  out.catalog.sort((a, b) => a.startTime.localeCompare(b.startTime));
  return out;
}

/** Every copy of the view read in parallel: a listed copy each, with the reason for one that could not be read. */
export async function listCopies(kube: KubeClient, v: PolicyView, names: Set<string>, now: number): Promise<ListedCopy[]> {
  return await Promise.all(
    v.copies
      .filter((c) => names.has(c.metadata.name))
      .map(async (c): Promise<ListedCopy> => {
        const base: ListedCopy = {
          name: c.metadata.name,
          primary: c.metadata.name === v.primary,
          copyType: c.spec.copyType ?? "Synchronous",
          precedence: c.status?.precedence ?? 0,
          source: sourceOf(v, c),
          rules: rulesOf(c, v.policy, now),
        };
        const why = unreadable(v, c);
        if (why) return { ...base, error: why };
        try {
          const l = await listCopy(kube, v, c, { jobs: true, runs: 0 });
          return { ...base, catalog: l.catalog, history: l.history, snapJobs: l.snapJobs };
        } catch (err) {
          return { ...base, error: err instanceof Error ? err.message : String(err) };
        }
      }),
  );
}
