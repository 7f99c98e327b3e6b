// The API's single source of truth: crds/ and the chart's CRDs are what src/api/v1alpha1 generates, and the ajv
// validators built from the same schemas accept the examples and catch typos the API server would only prune.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import * as yaml from "js-yaml";
import { describe, expect, it } from "vitest";
import { kinds } from "../../src/api/v1alpha1/index.ts";
import { validateSpec } from "../../src/api/v1alpha1/validate.ts";
import { generatedFiles } from "../../hack/generate.ts";
import { repoRoot } from "../harness/tools.ts";

describe("generated CRDs", () => {
  it("are current (run make generate after changing src/api)", () => {
    for (const [file, text] of generatedFiles()) {
      expect(existsSync(file), `${path.relative(repoRoot, file)} is missing`).toBe(true);
      expect(readFileSync(file, "utf8"), `${path.relative(repoRoot, file)} is stale`).toBe(text);
    }
  });

  it("describe every field, for kubectl explain", () => {
    const missing: string[] = [];
    const walk = (node: any, where: string) => {
      if (node?.type === "object" && node.properties) {
        for (const [k, v] of Object.entries<any>(node.properties)) {
          if (!v.description && !["apiVersion", "kind", "metadata"].includes(k)) missing.push(`${where}.${k}`);
          walk(v, `${where}.${k}`);
        }
      }
      if (node?.type === "array") walk(node.items, `${where}[]`);
    };
    for (const k of kinds) {
      walk(k.spec, `${k.kind}.spec`);
      walk(k.status, `${k.kind}.status`);
    }
    expect(missing).toEqual([]);
  });

  it("give every kind a short name, the auxo category and a Ready column", () => {
    expect(kinds.map((k) => k.shortNames[0])).toEqual(["lib", "sp", "pcopy", "acj", "sv"]);
    for (const k of kinds) expect(k.columns.some((c) => c.name === "Ready")).toBe(true);
  });
});

describe("ajv validation of the examples", () => {
  const docs = (file: string) =>
    yaml.loadAll(readFileSync(file, "utf8")).filter((d: any) => d?.apiVersion === "auxo.dev/v1alpha1") as any[];
  const dir = path.join(repoRoot, "examples/gold");

  it("accepts every valid example", () => {
    for (const file of [...readdirSync(dir).map((f) => path.join(dir, f)), path.join(repoRoot, "examples/snapvault.yaml")]) {
      for (const d of docs(file)) expect(validateSpec(d.kind, d.spec), `${file} ${d.kind}/${d.metadata.name}`).toEqual([]);
    }
  });

  it("reports a misspelt field that the API server would silently drop", () => {
    const copy = docs(path.join(dir, "30-copies.yaml"))[0];
    const problems = validateSpec("PolicyCopy", { ...copy.spec, retention: { ...copy.spec.retention, cylces: 3 } });
    expect(problems).toContainEqual({ path: "spec.retention", message: "unknown field cylces" });
  });
});
