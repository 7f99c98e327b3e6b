// The Auxo API, auxo.dev/v1alpha1: the single source for the TypeScript types (Static<> of the schemas), the ajv
// validators (validate.ts) and the CRDs in crds/ (hack/generate.ts). Change a schema here, run `make generate`.
import type { TSchema } from "@sinclair/typebox";
import type { KubeObject, ResourceType } from "../../kube/resources.ts";
import { AuxCopyJobSpec, AuxCopyJobStatus } from "./auxcopyjob.ts";
import { LibrarySpec, LibraryStatus } from "./library.ts";
import { PolicyCopySpec, PolicyCopyStatus } from "./policycopy.ts";
import { SnapVaultSpec, SnapVaultStatus } from "./snapvault.ts";
import { StoragePolicySpec, StoragePolicyStatus } from "./storagepolicy.ts";

export const group = "auxo.dev";
export const version = "v1alpha1";

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  priority?: number;
}

export interface KindDefinition extends ResourceType {
  singular: string;
  shortNames: string[];
  description: string;
  spec: TSchema;
  status: TSchema;
  columns: PrinterColumn[];
}

const ready: PrinterColumn = {
  name: "Ready",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: "Whether the resource is ready.",
};
const reason: PrinterColumn = {
  name: "Reason",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
  description: "Why it is (not) ready.",
  priority: 1,
};
const age: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp", description: "Age." };

const kind = (k: Omit<KindDefinition, "group" | "version" | "namespaced">): KindDefinition => ({ group, version, namespaced: true, ...k });

export const Library = kind({
  kind: "Library",
  plural: "libraries",
  singular: "library",
  shortNames: ["lib"],
  description: "A storage target for backup data: a filesystem volume, an S3-compatible bucket or a restic REST server.",
  spec: LibrarySpec,
  status: LibraryStatus,
  columns: [
    { name: "Phase", type: "string", jsonPath: ".status.phase", description: "Pending, Ready or Unreachable." },
    { name: "Streams", type: "integer", jsonPath: ".spec.maxStreams", description: "Stream cap." },
    { name: "Last Probe", type: "date", jsonPath: ".status.lastProbeTime", description: "Last probe." },
    ready,
    reason,
    age,
  ],
});

export const StoragePolicy = kind({
  kind: "StoragePolicy",
  plural: "storagepolicies",
  singular: "storagepolicy",
  shortNames: ["sp"],
  description: "A storage policy: the primary copy that receives backups and the secondary copies that aux copies fill.",
  spec: StoragePolicySpec,
  status: StoragePolicyStatus,
  columns: [
    { name: "Primary", type: "string", jsonPath: ".spec.primaryCopy", description: "The primary copy." },
    { name: "Copies", type: "integer", jsonPath: ".status.copyCount", description: "Number of copies." },
    ready,
    reason,
    { name: "Repository", type: "string", jsonPath: ".status.primaryRepository", description: "Where new backups go.", priority: 1 },
    age,
  ],
});

export const PolicyCopy = kind({
  kind: "PolicyCopy",
  plural: "policycopies",
  singular: "policycopy",
  shortNames: ["pcopy"],
  description: "One copy of a storage policy: a restic repository on a library, with its source, selection and retention.",
  spec: PolicyCopySpec,
  status: PolicyCopyStatus,
  columns: [
    { name: "Policy", type: "string", jsonPath: ".spec.storagePolicy", description: "The storage policy." },
    { name: "Type", type: "string", jsonPath: ".spec.copyType", description: "Synchronous or Selective." },
    { name: "Library", type: "string", jsonPath: ".spec.library", description: "The library." },
    { name: "Precedence", type: "integer", jsonPath: ".status.precedence", description: "Restore precedence." },
    { name: "Available", type: "integer", jsonPath: ".status.jobs.available", description: "Jobs available on the copy." },
    { name: "To Be Copied", type: "integer", jsonPath: ".status.jobs.toBeCopied", description: "Jobs waiting for an aux copy." },
    ready,
    reason,
    { name: "Active", type: "boolean", jsonPath: ".spec.active", description: "Whether aux copies fill it.", priority: 1 },
    age,
  ],
});

export const AuxCopyJob = kind({
  kind: "AuxCopyJob",
  plural: "auxcopyjobs",
  singular: "auxcopyjob",
  shortNames: ["acj"],
  description: "One run of an auxiliary copy: finished backup jobs copied from source copies to secondary copies.",
  spec: AuxCopyJobSpec,
  status: AuxCopyJobStatus,
  columns: [
    { name: "Policy", type: "string", jsonPath: ".spec.storagePolicy", description: "The storage policy." },
    { name: "Phase", type: "string", jsonPath: ".status.phase", description: "Lifecycle phase." },
    { name: "Progress", type: "string", jsonPath: ".status.progress", description: "Jobs copied of selected." },
    { name: "Bytes", type: "integer", jsonPath: ".status.bytesCopied", description: "Bytes copied.", priority: 1 },
    { name: "Reason", type: "string", jsonPath: ".status.reason", description: "Why it is in that phase.", priority: 1 },
    { name: "Started", type: "date", jsonPath: ".status.startTime", description: "When it started running." },
    ready,
    age,
  ],
});

export const SnapVault = kind({
  kind: "SnapVault",
  plural: "snapvaults",
  singular: "snapvault",
  shortNames: ["sv"],
  description: "Vault or mirror copies of volume snapshots, with a retry budget per snapshot.",
  spec: SnapVaultSpec,
  status: SnapVaultStatus,
  columns: [
    { name: "Mode", type: "string", jsonPath: ".spec.mode", description: "Vault or Mirror." },
    { name: "Phase", type: "string", jsonPath: ".status.phase", description: "Result of the current or last run." },
    { name: "Copied", type: "integer", jsonPath: ".status.counts.copied", description: "Snapshots copied." },
    { name: "Retrying", type: "integer", jsonPath: ".status.counts.retrying", description: "Snapshots waiting for another attempt." },
    {
      name: "Missing",
      type: "integer",
      jsonPath: ".status.counts.missing",
      description: "Snapshots out of retries or whose source is gone.",
    },
    { name: "Current", type: "string", jsonPath: ".status.current.snapshot", description: "The snapshot being copied.", priority: 1 },
    {
      name: "Backup Copied",
      type: "integer",
      jsonPath: ".status.backupCopy.counts.copied",
      description: "Snapshots backed up into the storage policy's primary copy.",
      priority: 1,
    },
    { name: "Last Run", type: "date", jsonPath: ".status.lastRunTime", description: "When the last run started." },
    { name: "Next Run", type: "string", jsonPath: ".status.nextRunTime", description: "When the next scheduled run starts.", priority: 1 },
    ready,
    age,
  ],
});

export const kinds: KindDefinition[] = [Library, StoragePolicy, PolicyCopy, AuxCopyJob, SnapVault];

export type Typed<Spec, Status> = KubeObject & { spec: Spec; status?: Status };
export type { LibrarySpec, LibraryStatus } from "./library.ts";
export type { StoragePolicySpec, StoragePolicyStatus } from "./storagepolicy.ts";
export type { PolicyCopySpec, PolicyCopyStatus } from "./policycopy.ts";
export type { AuxCopyJobSpec, AuxCopyJobStatus } from "./auxcopyjob.ts";
export type { SnapshotEntry, SnapVaultSpec, SnapVaultStatus } from "./snapvault.ts";
