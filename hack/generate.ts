// `make generate`: writes the CRDs from src/api/v1alpha1 into crds/ and into the Helm chart.
//   node hack/generate.ts          write
//   node hack/generate.ts --check  exit 1 when a generated file is missing or stale
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { crdYaml } from "../src/api/v1alpha1/crd.ts";
import { kinds } from "../src/api/v1alpha1/index.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const generatedFiles = (): Map<string, string> => {
  const files = new Map<string, string>();
  for (const k of kinds) {
    const text = crdYaml(k);
    files.set(path.join(root, "crds", `${k.group}_${k.plural}.yaml`), text);
    files.set(path.join(root, "charts", "auxo", "crds", `${k.group}_${k.plural}.yaml`), text);
  }
  return files;
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes("--check");
  let stale = 0;
  for (const [file, text] of generatedFiles()) {
    const current = existsSync(file) ? readFileSync(file, "utf8") : undefined;
    if (current === text) continue;
    if (check) {
      console.error(`stale: ${path.relative(root, file)} (run make generate)`);
      stale++;
    } else {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, text);
      console.log(`wrote ${path.relative(root, file)}`);
    }
  }
  process.exitCode = stale > 0 ? 1 : 0;
}
