// Writing a resource's status: the complete status this operator owns, by server-side apply, only when it
// changed (an idle operator writes nothing), with a Warning event when Ready turns False and a Normal event when
// it recovers.
import { isDeepStrictEqual } from "node:util";
import type { KubeObject, ResourceType } from "../kube/resources.ts";
import { type Condition, getCondition, setCondition } from "../policy/conditions.ts";
import type { Manager } from "../runtime/manager.ts";
import type { ReadyPlan } from "../policy/plan.ts";
import { statusManager } from "./resources.ts";

export type ReadyInput = ReadyPlan;

/** Applies `status` (all the fields this writer owns) when it differs from what the object shows; true when written. */
export async function writeFields(
  mgr: Manager,
  type: ResourceType,
  obj: KubeObject & { status?: Record<string, unknown> },
  status: Record<string, unknown>,
  /** Server-side apply owns fields per manager: a controller writing other fields of the same status needs its own. */
  manager = statusManager,
): Promise<boolean> {
  const current = { ...obj.status };
  // Compare only what this writer owns: of the conditions (a list keyed by type), the types it writes.
  const owned = Array.isArray(status.conditions) ? new Set((status.conditions as Condition[]).map((c) => c.type)) : undefined;
  const mine = Object.fromEntries(
    Object.keys(status).map((k) => [
      k,
      k === "conditions" && owned ? ((current[k] as Condition[] | undefined) ?? []).filter((c) => owned.has(c.type)) : current[k],
    ]),
  );
  if (isDeepStrictEqual(JSON.parse(JSON.stringify(mine)), JSON.parse(JSON.stringify(status)))) return false;
  const written = await mgr.client.applyStatus(
    type,
    { metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace }, status },
    manager,
  );
  mgr.writes?.record(type, obj, written);
  return true;
}

export async function writeStatus(
  mgr: Manager,
  type: ResourceType,
  obj: KubeObject & { status?: Record<string, unknown> },
  ready: ReadyInput,
  fields: Record<string, unknown>,
  now: number,
): Promise<void> {
  const before = (obj.status?.conditions as Condition[] | undefined) ?? [];
  const first = ready.problems[0];
  let conditions = setCondition(
    before,
    first
      ? { type: "Ready", status: "False", reason: first.reason, message: ready.problems.map((p) => p.message).join("; ") }
      : ready.unknown
        ? { type: "Ready", status: "Unknown", ...ready.unknown }
        : { type: "Ready", status: "True", ...ready.ok },
    obj.metadata.generation,
    now,
  );
  for (const c of ready.others ?? []) conditions = setCondition(conditions, c, obj.metadata.generation, now);
  // Only the conditions this writer sets: another controller may own other types on the same object.
  const types = new Set(["Ready", ...(ready.others ?? []).map((c) => c.type)]);
  const mineOnly = conditions.filter((c) => types.has(c.type));
  if (!(await writeFields(mgr, type, obj, { ...fields, observedGeneration: obj.metadata.generation, conditions: mineOnly }))) return;
  if (ready.events === false) return;
  const was = getCondition(before, "Ready");
  const is = getCondition(conditions, "Ready") as Condition;
  if (is.status === "False" && (was?.status !== "False" || was.reason !== is.reason))
    mgr.events.event(obj, "Warning", is.reason, is.message);
  if (is.status === "True" && was?.status === "False") mgr.events.event(obj, "Normal", is.reason, is.message);
}
