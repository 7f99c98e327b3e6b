// metav1.LabelSelector matching, as the API server does it: every matchLabels pair and every requirement must hold;
// an empty selector matches everything. Pure.

export interface LabelSelectorSpec {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: "In" | "NotIn" | "Exists" | "DoesNotExist"; values?: string[] }[];
}

export function selectorMatches(sel: LabelSelectorSpec, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const r of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(l, r.key);
    const inValues = has && (r.values ?? []).includes(l[r.key] as string);
    if (r.operator === "In" && !inValues) return false;
    if (r.operator === "NotIn" && inValues) return false;
    if (r.operator === "Exists" && !has) return false;
    if (r.operator === "DoesNotExist" && has) return false;
  }
  return true;
}
