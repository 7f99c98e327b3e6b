// Finalizer and owner-reference helpers. They compute the new metadata; callers write it with server-side apply
// under their own field manager, which adds or removes only their finalizer (metadata.finalizers is a set).
import { type KubeObject, type OwnerReference, type ResourceType, apiVersionOf } from "../kube/resources.ts";

export const hasFinalizer = (obj: KubeObject, finalizer: string): boolean => (obj.metadata.finalizers ?? []).includes(finalizer);

export function withFinalizer(obj: KubeObject, finalizer: string): string[] {
  const f = obj.metadata.finalizers ?? [];
  return f.includes(finalizer) ? f : [...f, finalizer];
}

export function withoutFinalizer(obj: KubeObject, finalizer: string): string[] {
  return (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer);
}

export const isBeingDeleted = (obj: KubeObject): boolean => obj.metadata.deletionTimestamp !== undefined;

/** The controller owner reference of `owner`; owned objects are deleted with it (garbage collection). */
export function controllerRef(owner: KubeObject, type: ResourceType): OwnerReference {
  if (!owner.metadata.uid) throw new Error(`${type.kind} ${owner.metadata.name} has no uid yet`);
  return {
    apiVersion: apiVersionOf(type),
    kind: type.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** The owner that controls `obj`, if any. */
export function controllerOf(obj: KubeObject): OwnerReference | undefined {
  return (obj.metadata.ownerReferences ?? []).find((r) => r.controller === true);
}

/**
 * Checks an owner reference the way controller-runtime does: namespaced objects may be owned only by objects of
 * the same namespace (the API server would otherwise let the garbage collector delete them as orphans).
 */
export function validateOwner(owner: KubeObject, ownerType: ResourceType, obj: KubeObject): void {
  if (!ownerType.namespaced) return;
  if (!obj.metadata.namespace) throw new Error(`cluster-scoped ${obj.kind ?? "object"} must not have a namespace-scoped owner`);
  if (owner.metadata.namespace !== obj.metadata.namespace) throw new Error("cross-namespace owner references are disallowed");
}
