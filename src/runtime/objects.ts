// Owner-reference helpers: the controller reference an owned object carries, and the owner that controls an object.
import { type KubeObject, type OwnerReference, type ResourceType, apiVersionOf } from "../kube/resources.ts";

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
