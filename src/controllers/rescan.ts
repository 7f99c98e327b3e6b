// Asking the PolicyCopy controller to read a copy's catalog now.
import { isNotFound } from "../kube/errors.ts";
import { Annotation } from "./agent/labels.ts";
import type { Manager } from "../runtime/manager.ts";
import { PolicyCopies, type CopyObj } from "./resources.ts";

/** Asks the copy controller to read the copy's catalog now (its status shows a change without waiting an interval). */
export async function requestRescan(mgr: Manager, copy: CopyObj): Promise<void> {
  await mgr.client
    .mergePatch(PolicyCopies, copy.metadata.namespace as string, copy.metadata.name, {
      metadata: { annotations: { [Annotation.rescanRequested]: new Date().toISOString() } },
    })
    .catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
}
