// How a MediaAgent reaches a copy's repository: the library's storage, the copy's path in it (its own, or the
// namespace/policy/copy default) and its password Secret, mounted under the role's folder.
import { defaultRepositoryPath, type RepositoryAccess, repositoryAccess } from "../../policy/repository.ts";
import type { CopyObj, LibraryObj } from "../resources.ts";

/** The copy's repository path inside its library. */
export function copyRepositoryPath(copy: CopyObj): string {
  return copy.spec.repositoryPath ?? defaultRepositoryPath(copy.metadata.namespace as string, copy.spec.storagePolicy, copy.metadata.name);
}

/**
 * Access to the copy's repository for a pod, in the given role ("target", "source", a downstream name). With
 * `checkId`, the restic repository ID the operator recorded goes along: the pod checks it before it writes, so a
 * repository swapped in at the location is never written.
 */
export function copyAccess(copy: CopyObj, library: LibraryObj, role: string, checkId = false): RepositoryAccess {
  const pw = copy.spec.encryption.passwordSecret;
  const access = repositoryAccess(library.spec, copyRepositoryPath(copy), { secret: pw.name, key: pw.key ?? "password" }, role);
  return checkId ? { ...access, repositoryId: copy.status?.repositoryId } : access;
}
