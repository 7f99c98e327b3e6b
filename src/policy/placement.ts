// Where a backup copy pod runs (docs/snapvault.md, "Where backup copies run"), Commvault's access-node rule mapped
// onto the scheduler: access nodes (the SnapVault's node selector, or node names a PVC names in its annotation) are
// required; the MediaAgent placement of the copy being written (its `mediaAgent.nodeSelector`) is preferred inside
// them, and required when no access node is set; with neither the pod has no hard placement and real resource
// requests, so that the scheduler's least-allocated scoring picks the node with the most available resources. The
// restored volume's topology is the scheduler's own constraint (a PV's node affinity), which these terms only add to.
// Pure.
import type { PodPlacement } from "../mediaagent/pod.ts";
import { type LabelSelectorSpec, selectorMatches } from "./labelselector.ts";

/** Requests of a backup copy pod without its copy's own: restic reading and deduplicating a volume needs them. */
export const BACKUP_COPY_RESOURCES = { requests: { cpu: "500m", memory: "512Mi" }, limits: { memory: "2Gi" } };

export interface AccessNodes {
  /** Nodes by label (spec.backupCopy.accessNodes). */
  selector?: LabelSelectorSpec;
  /** Nodes by name (the PVC's auxo.dev/access-nodes annotation): wins over the selector. */
  names?: string[];
}

export interface PlacementInput {
  access?: AccessNodes;
  /** The mediaAgent settings of the copy the pod writes to. */
  copy?: PodPlacement;
  /** The cluster's nodes, to tell a selector that matches none. */
  nodes?: { name: string; labels?: Record<string, string> }[];
}

export interface PlacementDecision {
  placement: PodPlacement;
  /** Set when the access nodes match no node: the pod would stay Pending, so it is not started. */
  unmatched?: string;
  /** How the pod is placed, for the status and the docs. */
  rule: "AccessNodes" | "MediaAgent" | "MostResources";
}

type Expr = { key: string; operator: string; values?: string[] };

const exprsOf = (sel: LabelSelectorSpec): Expr[] => [
  ...Object.entries(sel.matchLabels ?? {}).map(([key, v]) => ({ key, operator: "In", values: [v] })),
  ...(sel.matchExpressions ?? []).map((e) => ({ key: e.key, operator: e.operator, ...(e.values ? { values: [...e.values] } : {}) })),
];

/** The access nodes as the pod's required node affinity term. */
function requiredTerm(a: AccessNodes): Record<string, unknown> {
  if (a.names?.length) return { matchFields: [{ key: "metadata.name", operator: "In", values: [...a.names].sort() }] };
  return { matchExpressions: exprsOf(a.selector ?? {}) };
}

export const describeAccessNodes = (a: AccessNodes): string =>
  a.names?.length
    ? `access nodes ${a.names.join(", ")}`
    : `access node selector ${JSON.stringify({ ...(a.selector?.matchLabels ? { matchLabels: a.selector.matchLabels } : {}), ...(a.selector?.matchExpressions ? { matchExpressions: a.selector.matchExpressions } : {}) })}`;

const hasAccess = (a?: AccessNodes): a is AccessNodes =>
  !!a && ((a.names?.length ?? 0) > 0 || (a.selector !== undefined && exprsOf(a.selector).length > 0));

export function backupCopyPlacement(i: PlacementInput): PlacementDecision {
  const copy = i.copy ?? {};
  const base: PodPlacement = {
    resources: copy.resources ?? BACKUP_COPY_RESOURCES,
    ...(copy.tolerations ? { tolerations: copy.tolerations } : {}),
    ...(copy.priorityClassName ? { priorityClassName: copy.priorityClassName } : {}),
  };
  const ma = copy.nodeSelector && Object.keys(copy.nodeSelector).length ? copy.nodeSelector : undefined;
  if (hasAccess(i.access)) {
    const a = i.access;
    const matches = (n: { name: string; labels?: Record<string, string> }) =>
      a.names?.length ? a.names.includes(n.name) : selectorMatches(a.selector ?? {}, n.labels);
    const unmatched = i.nodes && !i.nodes.some(matches) ? `${describeAccessNodes(a)} match no node` : undefined;
    return {
      rule: "AccessNodes",
      unmatched,
      placement: {
        ...base,
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [requiredTerm(a)] },
            // An access node that is also the copy's MediaAgent is preferred.
            ...(ma
              ? {
                  preferredDuringSchedulingIgnoredDuringExecution: [
                    { weight: 100, preference: { matchExpressions: exprsOf({ matchLabels: ma }) } },
                  ],
                }
              : {}),
          },
        },
      },
    };
  }
  if (ma) return { rule: "MediaAgent", placement: { ...base, nodeSelector: { ...ma } } };
  return { rule: "MostResources", placement: base };
}

/** The PVC annotation's node names: comma or space separated. */
export const accessNodeNames = (annotation: string | undefined): string[] | undefined => {
  const names = (annotation ?? "")
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  return names.length ? [...new Set(names)] : undefined;
};
