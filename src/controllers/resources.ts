// Resource types of the Auxo API and the typed objects the controllers read.
import { AuxCopyJob, Library, PolicyCopy, SnapVault, StoragePolicy } from "../api/v1alpha1/index.ts";
import type {
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
export type SecretObj = { metadata: { name: string; namespace?: string }; data?: Record<string, string> };

/** The status field manager of the operator (one writer per status field). */
export const statusManager = "auxo-operator";
