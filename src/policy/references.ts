// Cross-object checks that a schema cannot make: does what a resource names exist, and do the copies of a policy
// form a tree? Pure functions of plain data; controllers gather the inputs and report the answers as conditions.

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
  /** The latest promotion: the old primary and the precedence its successor had before (reference §7). */
  promotedFrom?: { name: string; precedence?: number };
}

/** The source a copy is filled from: its sourceCopy, else its policy's primary (none for the primary itself). */
export function effectiveSource(copy: CopyFacts, policy: PolicyFacts | undefined): string | undefined {
  if (policy && policy.primaryCopy === copy.name) return undefined;
  // After a promotion, copies that were filled from the old primary are filled from the new one.
  if (policy && copy.sourceCopy !== undefined && copy.sourceCopy === policy.promotedFrom?.name) return policy.primaryCopy;
  return copy.sourceCopy ?? policy?.primaryCopy;
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
