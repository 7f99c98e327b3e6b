// Resource types of the Auxo API and the typed objects the controllers read.
import { AuxCopyJob, Library, PolicyCopy, SnapVault, StoragePolicy } from "../api/v1alpha1/index.ts";
import type {
  AuxCopyJobSpec,
  AuxCopyJobStatus,
  LibrarySpec,
  LibraryStatus,
  PolicyCopySpec,
  PolicyCopyStatus,
  SnapVaultSpec,
  SnapVaultStatus,
  StoragePolicySpec,
  StoragePolicyStatus,
  Typed,
} from "../api/v1alpha1/index.ts";
import type { ResourceType } from "../kube/resources.ts";
import type { PolicyFacts } from "../policy/references.ts";

export const Libraries: ResourceType = Library;
export const StoragePolicies: ResourceType = StoragePolicy;
export const PolicyCopies: ResourceType = PolicyCopy;
export const AuxCopyJobs: ResourceType = AuxCopyJob;
export const SnapVaults: ResourceType = SnapVault;
export const PersistentVolumeClaims: ResourceType = {
  group: "",
  version: "v1",
  plural: "persistentvolumeclaims",
  kind: "PersistentVolumeClaim",
  namespaced: true,
};

export type LibraryObj = Typed<LibrarySpec, LibraryStatus>;
export type PolicyObj = Typed<StoragePolicySpec, StoragePolicyStatus>;
export type CopyObj = Typed<PolicyCopySpec, PolicyCopyStatus>;
export type SnapVaultObj = Typed<SnapVaultSpec, SnapVaultStatus>;
export type AcjObj = Typed<AuxCopyJobSpec, AuxCopyJobStatus>;

/** The status field manager of the operator (one writer per status field). */
export const statusManager = "auxo-operator";

/**
 * A policy as the rules see it: the primary in force is the one status records (a change of spec.primaryCopy is a
 * promotion request until the policy controller carries it out), and the latest promotion re-points cascades.
 */
export function policyFacts(p: PolicyObj): PolicyFacts {
  const last = p.status?.lastPromotion;
  const primaryCopy = p.status?.primaryCopy ?? p.spec.primaryCopy;
  return {
    name: p.metadata.name,
    primaryCopy,
    ...(last && last.to === primaryCopy ? { promotedFrom: { name: last.from, precedence: last.fromPrecedence } } : {}),
  };
}
