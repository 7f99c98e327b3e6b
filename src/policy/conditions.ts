// Kubernetes conditions (metav1.Condition) as kstatus, Argo CD and Flux read them: lastTransitionTime changes only
// when status changes, and every condition carries the generation it was computed for.
import { formatTime } from "./time.ts";

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export function setCondition(
  existing: Condition[] | undefined,
  next: Omit<Condition, "lastTransitionTime" | "observedGeneration">,
  generation: number | undefined,
  now: number,
): Condition[] {
  const list = [...(existing ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const prior = i >= 0 ? list[i] : undefined;
  const cond: Condition = {
    ...next,
    observedGeneration: generation,
    lastTransitionTime: prior && prior.status === next.status ? prior.lastTransitionTime : formatTime(now),
  };
  if (i >= 0) list[i] = cond;
  else list.push(cond);
  return list;
}

export const getCondition = (list: Condition[] | undefined, type: string): Condition | undefined => list?.find((c) => c.type === type);
