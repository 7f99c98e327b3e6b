// SnapVault: its destination library, the password Secret and the backup copy's policy must exist. Pure.
import type { SnapVaultSpec } from "../api/v1alpha1/index.ts";
import type { Plan } from "./plan.ts";
import { checkSecrets, type Problem, type SecretKeys } from "./references.ts";

export interface SnapVaultFacts {
  spec: SnapVaultSpec;
  libraryExists: boolean;
  /** The backup copy's storage policy exists (true when it names none). */
  policyExists: boolean;
  secrets: SecretKeys;
}

function snapVaultProblems(f: SnapVaultFacts): Problem[] {
  const problems: Problem[] = [];
  if (!f.libraryExists)
    problems.push({
      reason: "LibraryNotFound",
      message: `destination library "${f.spec.destination.library}" does not exist in this namespace`,
    });
  const pw = f.spec.destination.encryption.passwordSecret;
  problems.push(
    ...checkSecrets([{ field: "spec.destination.encryption.passwordSecret", name: pw.name, key: pw.key ?? "password" }], f.secrets),
  );
  const bc = f.spec.backupCopy;
  if (bc?.enabled && bc.storagePolicy && !f.policyExists)
    problems.push({
      reason: "StoragePolicyNotFound",
      message: `backupCopy.storagePolicy "${bc.storagePolicy}" does not exist in this namespace`,
    });
  return problems;
}

export function planSnapVault(f: SnapVaultFacts): Plan<Record<string, never>, never> {
  return {
    status: {},
    ready: {
      problems: snapVaultProblems(f),
      ok: { reason: "ReferencesResolved", message: "destination library and password Secret resolve" },
    },
  };
}
