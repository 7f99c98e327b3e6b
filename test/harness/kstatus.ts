// kstatus' verdict on a custom resource, as GitOps tools compute it (sigs.k8s.io/cli-utils/pkg/kstatus/status:
// checkGenericProperties, then Current for a kind without built-in rules): being deleted → Terminating; a generation
// the controller has not observed → InProgress; Reconciling=True → InProgress; Stalled=True → Failed; else Current.
// Argo CD and Flux read the Ready condition beside it; tests check both.

export type KStatus = "Current" | "InProgress" | "Failed" | "Terminating";

interface Obj {
  metadata: { generation?: number; deletionTimestamp?: string };
  status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
}

export function kstatus(obj: Obj): KStatus {
  if (obj.metadata.deletionTimestamp) return "Terminating";
  const observed = obj.status?.observedGeneration;
  if (obj.metadata.generation !== undefined && observed !== undefined && observed !== obj.metadata.generation) return "InProgress";
  for (const c of obj.status?.conditions ?? []) {
    if (c.type === "Reconciling" && c.status === "True") return "InProgress";
    if (c.type === "Stalled" && c.status === "True") return "Failed";
  }
  return "Current";
}
