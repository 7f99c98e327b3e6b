// Builds the CustomResourceDefinition of a kind from its schemas. Pure: hack/generate.ts writes the result to
// crds/, and a test checks that crds/ matches.
import * as yaml from "js-yaml";
import type { KindDefinition } from "./index.ts";

/** Strips what JSON Schema allows but a structural CRD schema does not (additionalProperties: false beside properties). */
function structural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(structural);
  if (typeof node !== "object" || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "additionalProperties" && v === false) continue;
    if (k === "$id" || k === "$schema") continue;
    out[k] = structural(v);
  }
  return out;
}

export function crdFor(k: KindDefinition): Record<string, unknown> {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${k.plural}.${k.group}`, labels: { "app.kubernetes.io/part-of": "auxo" } },
    spec: {
      group: k.group,
      names: {
        kind: k.kind,
        listKind: `${k.kind}List`,
        plural: k.plural,
        singular: k.singular,
        shortNames: k.shortNames,
        categories: ["auxo"],
      },
      scope: k.namespaced ? "Namespaced" : "Cluster",
      versions: [
        {
          name: k.version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: k.columns,
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: k.description,
              required: ["spec"],
              properties: {
                apiVersion: { type: "string", description: "APIVersion of the object: auxo.dev/v1alpha1." },
                kind: { type: "string", description: `Kind of the object: ${k.kind}.` },
                metadata: { type: "object" },
                spec: structural(k.spec),
                status: structural(k.status),
              },
            },
          },
        },
      ],
    },
  };
}

export function crdYaml(k: KindDefinition): string {
  return `# Generated from src/api/v1alpha1 by \`make generate\`. Do not edit.\n${yaml.dump(crdFor(k), { lineWidth: -1, noRefs: true, sortKeys: false })}`;
}
