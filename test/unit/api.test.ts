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

describe("ajv validation of bad input (the API server also runs the CEL rules)", () => {
  const copy = (spec: object) => ({
    storagePolicy: "gold",
    library: "offsite-s3",
    encryption: { passwordSecret: { name: "repo-password" } },
    ...spec,
  });
  const paths = (problems: { path: string }[]) => [...new Set(problems.map((p) => p.path))];

  it("takes repository paths that stay inside the library, and the default layout", () => {
    for (const p of ["team-a/gold/primary", "a", "team_a/v1.2/x-y", "A/B_c/d..e", "x".repeat(512)]) {
      expect(validateSpec("PolicyCopy", copy({ repositoryPath: p })), p).toEqual([]);
    }
    const sv = { source: { persistentVolumeClaims: ["data"] }, destination: { encryption: { passwordSecret: { name: "pw" } } } };
    expect(
      validateSpec("SnapVault", { ...sv, destination: { ...sv.destination, library: "l", repositoryPath: "team-a/snapvault/db" } }),
    ).toEqual([]);
  });

  it("refuses repository paths that escape the library or are empty, absolute or oversized", () => {
    for (const p of ["a/../../../..", "/etc/passwd", "/", "", "..", ".", "a/./b", "a//b", "a/", ".hidden", "-x", "a b", "x".repeat(513)]) {
      expect(paths(validateSpec("PolicyCopy", copy({ repositoryPath: p }))), JSON.stringify(p)).toEqual(["spec.repositoryPath"]);
    }
    const lib = (fs: object) => validateSpec("Library", { filesystem: { persistentVolumeClaim: { claimName: "disk" }, ...fs } });
    expect(lib({ path: "auxo" })).toEqual([]);
    expect(lib({ path: "auxo/" })).toEqual([]);
    expect(lib({ path: "" })).toEqual([]);
    for (const p of ["../etc", "auxo/..", "/auxo", "a//b"]) expect(paths(lib({ path: p })), p).toEqual(["spec.filesystem.path"]);
  });

  it("refuses durations that are not durations (the bounds are CEL rules: see examples/invalid)", () => {
    expect(paths(validateSpec("StoragePolicy", { primaryCopy: "p", auxCopySchedule: { every: "every 5 minutes" } }))).toEqual([
      "spec.auxCopySchedule.every",
    ]);
    expect(validateSpec("StoragePolicy", { primaryCopy: "p", auxCopySchedule: { every: "1h30m" } })).toEqual([]);
  });

  it("takes an operation window without days (every day)", () => {
    const window = { name: "night", operations: ["DataAging"], start: "01:00", end: "03:00" };
    expect(validateSpec("StoragePolicy", { primaryCopy: "p", operationWindows: [window] })).toEqual([]);
    expect(validateSpec("StoragePolicy", { primaryCopy: "p", operationWindows: [{ ...window, days: [] }] })).toEqual([]);
  });

  it("checks the MediaAgent settings that pods would refuse", () => {
    const ma = (mediaAgent: object) => validateSpec("PolicyCopy", copy({ mediaAgent }));
    expect(
      ma({
        resources: { requests: { cpu: "250m", memory: "256Mi", "example.com/gpu": 1 }, limits: { memory: "1Gi", cpu: 2 } },
        tolerations: [
          { key: "dedicated", operator: "Equal", value: "backup", effect: "NoExecute", tolerationSeconds: 60 },
          { operator: "Exists" },
        ],
        nodeSelector: { "kubernetes.io/os": "linux" },
        priorityClassName: "backup-low",
      }),
    ).toEqual([]);
    expect(paths(ma({ resources: { requests: { cpu: -1 } } }))).toContain("spec.mediaAgent.resources.requests.cpu");
    expect(paths(ma({ resources: { requests: { cpu: "-1" } } }))).toContain("spec.mediaAgent.resources.requests.cpu");
    expect(paths(ma({ resources: { limits: { memory: "lots" } } }))).toContain("spec.mediaAgent.resources.limits.memory");
    expect(paths(ma({ resources: { claims: [{ name: "x" }] } }))).toEqual(["spec.mediaAgent.resources"]);
    expect(paths(ma({ tolerations: [{ key: "k", effect: "Explode" }] }))).toEqual(["spec.mediaAgent.tolerations.0.effect"]);
    expect(paths(ma({ tolerations: [{ key: "k", operator: "Maybe" }] }))).toEqual(["spec.mediaAgent.tolerations.0.operator"]);
    expect(paths(ma({ priorityClassName: "High Priority!" }))).toEqual(["spec.mediaAgent.priorityClassName"]);
    expect(paths(ma({ nodeSelector: { zone: "x".repeat(64) } }))).toEqual(["spec.mediaAgent.nodeSelector.zone"]);
  });

  it("takes S3 endpoints and REST URLs (user:password in them is a CEL rule: see examples/invalid)", () => {
    const s3 = (endpoint: string) => validateSpec("Library", { s3: { endpoint, bucket: "backups", credentialsSecret: { name: "s3" } } });
    expect(s3("https://s3.eu-west-1.amazonaws.com")).toEqual([]);
    expect(s3("http://127.0.0.1:9000/")).toEqual([]);
    expect(paths(s3("s3.example.com"))).toEqual(["spec.s3.endpoint"]);
    expect(validateSpec("Library", { rest: { url: "https://rest.backup:8000/" } })).toEqual([]);
    expect(paths(validateSpec("Library", { rest: { url: "rest.backup:8000" } }))).toEqual(["spec.rest.url"]);
  });
});

describe("bounds in the schemas", () => {
  const walk = (node: any, where: string, visit: (node: any, where: string) => void) => {
    visit(node, where);
    for (const [k, v] of Object.entries<any>(node?.properties ?? {})) walk(v, `${where}.${k}`, visit);
    if (node?.items) walk(node.items, `${where}[]`, visit);
    if (typeof node?.additionalProperties === "object") walk(node.additionalProperties, `${where}{}`, visit);
  };

  it("give every duration a floor and a ceiling the API server checks", () => {
    const durations: string[] = [];
    const unbounded: string[] = [];
    for (const k of kinds)
      walk(k.spec, `${k.kind}.spec`, (n, where) => {
        if (typeof n?.pattern !== "string" || !n.pattern.includes("(ms|s|m|h)")) return;
        durations.push(where);
        const rules = (n["x-kubernetes-validations"] ?? []).map((r: { rule: string }) => r.rule).join(" ");
        if (!/duration\(self\) >= duration\('\d+[a-z]+'\)/.test(rules) || !/duration\(self\) <= duration\('\d+[a-z]+'\)/.test(rules))
          unbounded.push(where);
      });
    expect(durations.sort()).toEqual([
      "AuxCopyJob.spec.maxRunningTime",
      "Library.spec.probeInterval",
      "PolicyCopy.spec.dataVerification.schedule.every",
      "SnapVault.spec.backupCopy.fullEvery",
      "SnapVault.spec.backupCopy.schedule.every",
      "SnapVault.spec.schedule.every",
      "SnapVault.spec.stagingTimeout",
      "StoragePolicy.spec.auxCopySchedule.every",
    ]);
    expect(unbounded).toEqual([]);
  });

  it("bound every string a user writes (CEL cost estimates and generated names depend on it)", () => {
    const unbounded: string[] = [];
    for (const k of kinds)
      walk(k.spec, `${k.kind}.spec`, (n, where) => {
        if (n?.type === "string" && n.maxLength === undefined && n.enum === undefined) unbounded.push(where);
      });
    expect(unbounded).toEqual([]);
  });
});
