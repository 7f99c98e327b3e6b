// SnapVault: its destination library, the password Secret and the storage policy it names must exist. Pure.
import type { SnapVaultSpec } from "../api/v1alpha1/index.ts";
import { checkSecrets, type Problem, type SecretKeys } from "./references.ts";

export interface SnapVaultFacts {
  spec: SnapVaultSpec;
  libraryExists: boolean;
  /** The storage policy it belongs to exists (true when it names none). */
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
  if (f.spec.storagePolicy && !f.policyExists)
    problems.push({
      reason: "StoragePolicyNotFound",
      message: `storagePolicy "${f.spec.storagePolicy}" does not exist in this namespace`,
    });
  return problems;
}

/** The reference problems of a SnapVault (none: its runs may start). */
export const referenceProblems = snapVaultProblems;
