// Cross-object checks that a schema cannot make: does what a resource names exist, and do the copies of a policy
// form a tree? Pure functions of plain data; controllers gather the inputs and report the answers as conditions.
import { DateTime } from "luxon";

export interface Problem {
  reason: string; // CamelCase, for the Ready condition
  message: string;
}

export interface SecretRefCheck {
  /** Which field names the Secret, for the message. */
  field: string;
  name: string;
  key: string;
}

/** Secret data keys by Secret name; a missing entry means the Secret does not exist. */
export type SecretKeys = ReadonlyMap<string, ReadonlySet<string>>;

export function checkSecrets(refs: SecretRefCheck[], secrets: SecretKeys): Problem[] {
  const out: Problem[] = [];
  const missing = new Set<string>();
  for (const r of refs) {
    const keys = secrets.get(r.name);
    if (!keys && missing.has(r.name)) continue; // one message per missing Secret
    if (!keys) missing.add(r.name);
    if (!keys)
      out.push({ reason: "SecretNotFound", message: `${r.field} names Secret "${r.name}", which does not exist in this namespace` });
    else if (!keys.has(r.key)) out.push({ reason: "SecretKeyNotFound", message: `${r.field}: Secret "${r.name}" has no key "${r.key}"` });
  }
  return out;
}

export interface CopyFacts {
  name: string;
  storagePolicy: string;
  copyType: "Synchronous" | "Selective";
  sourceCopy?: string;
  precedence?: number;
  active: boolean;
  createdAt: string;
}

export interface PolicyFacts {
  name: string;
  /** The primary in force: status.primaryCopy once recorded, else spec.primaryCopy. */
  primaryCopy: string;
  /** The latest promotion: the old primary and the precedence its successor had before (the two swap precedence). */
  promotedFrom?: { name: string; precedence?: number };
}

/** The source a copy is filled from: its sourceCopy, else its policy's primary (none for the primary itself). */
export function effectiveSource(copy: CopyFacts, policy: PolicyFacts | undefined): string | undefined {
  if (policy && policy.primaryCopy === copy.name) return undefined;
  // After a promotion, copies that were filled from the old primary are filled from the new one.
  if (policy && copy.sourceCopy !== undefined && copy.sourceCopy === policy.promotedFrom?.name) return policy.primaryCopy;
  return copy.sourceCopy ?? policy?.primaryCopy;
}

/**
 * The copies whose data aging holds jobs for `copy`, and whether they can read it (docs/retention.md, safety rule 1).
 * Its source holds what it still needs. A copy that the last promotion re-pointed from the old primary to the new one
 * (no sourceCopy, or the old primary's name) is also held by the old primary: the new primary may lack jobs it still
 * needs (a `backups` date), and the old primary is where they are. A copy whose chain of sources does not reach the
 * primary (a misspelled sourceCopy, a cycle, another policy's copy) is held by the primary as a copy it cannot read,
 * so every job waits for it: safety first.
 */
export function holdersOf(
  copy: CopyFacts,
  policy: PolicyFacts,
  copies: ReadonlyMap<string, CopyFacts>,
): { name: string; unreadable?: boolean }[] {
  if (copy.storagePolicy !== policy.name || copy.name === policy.primaryCopy) return [];
  const problems = checkCopyPlacement(copy, policy, copies);
  if (problems.some((p) => SOURCE_PROBLEMS.has(p.reason))) return [{ name: policy.primaryCopy, unreadable: true }];
  const source = effectiveSource(copy, policy);
  if (source === undefined) return [];
  const out: { name: string; unreadable?: boolean }[] = [{ name: source }];
  const old = policy.promotedFrom?.name;
  if (old !== undefined && old !== copy.name && source === policy.primaryCopy && (copy.sourceCopy ?? old) === old && copies.has(old))
    out.push({ name: old });
  return out;
}

/** Reasons of checkCopyPlacement for a copy whose sources never reach its primary. */
const SOURCE_PROBLEMS = new Set(["SourceCopyNotFound", "SourceCycle", "SourceCopyInOtherPolicy"]);

/**
 * The copies a promotion from `from` to `to` re-points to `to` (no sourceCopy, or `from`'s name), with those whose
 * sources never reach the primary: the jobs they still need must be on `to`, or stay on `from` (docs/operations.md,
 * "Promoting a copy to primary").
 */
export function promotionDownstream(
  from: string,
  to: string,
  policy: PolicyFacts,
  copies: ReadonlyMap<string, CopyFacts>,
): { name: string; unreadable?: boolean }[] {
  const after: PolicyFacts = { name: policy.name, primaryCopy: to, promotedFrom: { name: from } };
  return [...copies.values()]
    .filter((c) => c.storagePolicy === policy.name && c.name !== from && c.name !== to)
    .flatMap((c) => {
      const h = holdersOf(c, after, copies).find((x) => x.name === (x.unreadable ? to : from));
      return h ? [{ name: c.name, ...(h.unreadable ? { unreadable: true } : {}) }] : [];
    });
}

/** A StoragePolicy's spec.timeZone must be a zone the time library knows: windows, schedules and calendars use it. */
export function checkTimeZone(zone: string | undefined): Problem[] {
  if (zone === undefined || DateTime.now().setZone(zone).isValid) return [];
  return [
    {
      reason: "InvalidTimeZone",
      message: `spec.timeZone "${zone}" is not a known IANA time zone (for example Europe/Paris or UTC): no aux copy, data aging or promotion acts on this policy until it is fixed`,
    },
  ];
}

/** What the operator allows of filesystem libraries: hostPath and NFS reach storage outside the namespace. */
export interface LibraryAllowance {
  hostPath?: boolean;
  nfs?: boolean;
}

/**
 * hostPath and NFS libraries are refused unless the operator allows them: a hostPath library lets MediaAgent pods
 * read and write any folder of a node, an NFS library any export the nodes reach, both outside what the namespace
 * owns (docs/tenancy.md). A PersistentVolumeClaim stays the namespace's own.
 */
export function checkLibraryVolume(spec: { filesystem?: { hostPath?: unknown; nfs?: unknown } }, allow: LibraryAllowance): Problem[] {
  if (spec.filesystem?.hostPath !== undefined && !allow.hostPath)
    return [
      {
        reason: "HostPathNotAllowed",
        message:
          "spec.filesystem.hostPath: hostPath libraries are not allowed by this operator (they reach any folder of a node); use a persistentVolumeClaim, or an administrator starts the operator with --allow-host-path-libraries",
      },
    ];
  if (spec.filesystem?.nfs !== undefined && !allow.nfs)
    return [
      {
        reason: "NFSNotAllowed",
        message:
          "spec.filesystem.nfs: NFS libraries are not allowed by this operator (they reach any export the nodes can mount); use a persistentVolumeClaim, or an administrator starts the operator with --allow-nfs-libraries",
      },
    ];
  return [];
}

/** Problems of a copy's place in its policy: policy, source, cycles. `copies` are all copies in the namespace. */
export function checkCopyPlacement(copy: CopyFacts, policy: PolicyFacts | undefined, copies: ReadonlyMap<string, CopyFacts>): Problem[] {
  if (!policy)
    return [{ reason: "StoragePolicyNotFound", message: `storagePolicy "${copy.storagePolicy}" does not exist in this namespace` }];
  const primary = policy.primaryCopy === copy.name;
  // A promoted copy keeps the sourceCopy it had as a secondary in spec; as the primary it is not filled from anywhere.
  if (primary && copy.sourceCopy && !policy.promotedFrom) {
    return [
      {
        reason: "PrimaryCopyHasSource",
        message: `this is the primary copy of policy "${policy.name}"; a primary copy receives backups and has no sourceCopy`,
      },
    ];
  }
  if (primary && copy.copyType === "Selective") {
    return [
      { reason: "SelectivePrimary", message: `the primary copy of policy "${policy.name}" must be Synchronous: it receives every backup` },
    ];
  }
  const source = effectiveSource(copy, policy);
  if (source === undefined) return [];
  if (source === copy.name) return [{ reason: "SourceCycle", message: "sourceCopy names the copy itself" }];
  const src = copies.get(source);
  if (!src) return [{ reason: "SourceCopyNotFound", message: `source copy "${source}" does not exist in this namespace` }];
  if (src.storagePolicy !== copy.storagePolicy) {
    return [
      {
        reason: "SourceCopyInOtherPolicy",
        message: `source copy "${source}" belongs to policy "${src.storagePolicy}", not "${copy.storagePolicy}"`,
      },
    ];
  }
  if (copy.copyType === "Selective" && src.copyType === "Selective") {
    return [
      {
        reason: "SourceNotAllowed",
        message: `a Selective copy takes its data from the primary or a Synchronous copy; "${source}" is Selective`,
      },
    ];
  }
  // Follow the chain of sources: it must reach the primary without coming back.
  const seen = new Set([copy.name]);
  let at: CopyFacts | undefined = src;
  while (at) {
    if (seen.has(at.name))
      return [
        {
          reason: "SourceCycle",
          message: `copies ${[...seen].join(" → ")} → ${at.name} form a cycle; every chain of sources must end at the primary copy`,
        },
      ];
    seen.add(at.name);
    const next = effectiveSource(at, at.storagePolicy === policy.name ? policy : undefined);
    at = next === undefined ? undefined : copies.get(next);
  }
  return [];
}

/** Problems of a policy: its primaryCopy must be a copy of this policy. */
export function checkPolicy(policy: PolicyFacts, copies: ReadonlyMap<string, CopyFacts>): Problem[] {
  const primary = copies.get(policy.primaryCopy);
  if (!primary) return [{ reason: "PrimaryCopyNotFound", message: `primaryCopy "${policy.primaryCopy}" does not exist in this namespace` }];
  if (primary.storagePolicy !== policy.name) {
    return [
      {
        reason: "PrimaryCopyInOtherPolicy",
        message: `primaryCopy "${policy.primaryCopy}" is a copy of policy "${primary.storagePolicy}", not of "${policy.name}"`,
      },
    ];
  }
  return [];
}

/**
 * Restore precedence of a policy's copies: the primary is 1; others keep an explicit precedence, else follow in
 * creation order (then name) after every explicit number, as Commvault numbers new copies.
 */
export function precedences(policy: PolicyFacts, copies: CopyFacts[]): Map<string, number> {
  const out = new Map<string, number>();
  const mine = copies.filter((c) => c.storagePolicy === policy.name);
  const taken = new Set<number>();
  if (mine.some((c) => c.name === policy.primaryCopy)) {
    out.set(policy.primaryCopy, 1);
    taken.add(1);
  }
  // The old primary takes the precedence its successor had (the two swap).
  const former = policy.promotedFrom;
  if (
    former?.precedence !== undefined &&
    former.name !== policy.primaryCopy &&
    mine.some((c) => c.name === former.name) &&
    !taken.has(former.precedence)
  ) {
    out.set(former.name, former.precedence);
    taken.add(former.precedence);
  }
  for (const c of mine) {
    if (!out.has(c.name) && c.precedence !== undefined && !taken.has(c.precedence)) {
      out.set(c.name, c.precedence);
      taken.add(c.precedence);
    }
  }
  const rest = mine.filter((c) => !out.has(c.name)).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name));
  let next = 1;
  for (const c of rest) {
    while (taken.has(next)) next++;
    out.set(c.name, next);
    taken.add(next);
  }
  return out;
}

/** The data keys of the Secrets read by name (a Secret not among them does not exist). */
export function secretKeys(secrets: { metadata: { name: string }; data?: Record<string, string> }[]): SecretKeys {
  return new Map(secrets.map((s) => [s.metadata.name, new Set(Object.keys(s.data ?? {}))]));
}
