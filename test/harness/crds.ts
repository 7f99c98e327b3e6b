// Installs Auxo's CRDs (crds/) into a control plane and waits until the API server serves them.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import * as yaml from "js-yaml";
import { type KubeRest, type Obj, isConflict } from "./kube-rest.ts";
import { waitFor } from "./net.ts";
import { repoRoot } from "./tools.ts";

export async function installCrds(kube: KubeRest): Promise<void> {
  const dir = path.join(repoRoot, "crds");
  const names: string[] = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    const crd = yaml.load(readFileSync(path.join(dir, f), "utf8")) as Obj;
    names.push(crd.metadata.name);
    // Server-side apply: creates, or updates a CRD an earlier test file installed.
    await kube
      .patch(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`, crd, "apply", "auxo-tests")
      .catch(async (err) => {
        if (!isConflict(err)) throw err;
      });
  }
  for (const name of names) {
    await waitFor(`CRD ${name} established`, async () => {
      const crd = await kube.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      return crd.status?.conditions?.some((c: Obj) => c.type === "Established" && c.status === "True") ? true : undefined;
    });
  }
}
