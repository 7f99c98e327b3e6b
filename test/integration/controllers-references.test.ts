// Cross-object problems show as Ready=False with a reason and a message, and a Warning event; fixing the cause
// turns Ready back to True. The operator's controllers run in this process against the real API server.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerControllers } from "../../src/controllers/index.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import { admin, freshNamespace, world } from "../harness/testing.ts";
import { repoRoot } from "../harness/tools.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let mgr: Manager;

const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const kubectl = (...args: string[]) =>
  execFileSync("kubectl", [`--kubeconfig=${world().kubeconfig}`, "-n", ns, ...args], { encoding: "utf8" });

async function ready(plural: string, name: string, status: "True" | "False", reason?: string): Promise<Obj> {
  return await waitFor(`${plural}/${name} Ready=${status}${reason ? ` (${reason})` : ""}`, async () => {
    const o = await kube.get(api(plural, name));
    const c = (o.status?.conditions ?? []).find((x: Obj) => x.type === "Ready");
    return c?.status === status && (!reason || c.reason === reason) && o.status.observedGeneration === o.metadata.generation
      ? o
      : undefined;
  });
}

async function warning(name: string, reason: string): Promise<Obj> {
  return await waitFor(`a Warning event ${reason} on ${name}`, async () => {
    const list = await kube.get(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=${name}`);
    return list.items.find((e: Obj) => e.type === "Warning" && e.reason === reason);
  });
}

const copy = (name: string, spec: Obj) => ({
  apiVersion: "auxo.dev/v1alpha1",
  kind: "PolicyCopy",
  metadata: { name },
  spec: { library: "onsite-disk", encryption: { passwordSecret: { name: "repo-password" } }, ...spec },
});

beforeAll(async () => {
  kube = admin();
  await installCrds(kube);
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "refs"));
  mgr = testManager(world().kubeconfig);
  // The gold example's S3 library names a real cloud endpoint: no probe pods here (tests reach only 127.0.0.1). The
  // vault-tape library is a hostPath one, which the operator refuses unless allowed.
  registerControllers(mgr, { agentImage: "auxo:dev", probeLibraries: false, allowHostPathLibraries: true });
  await mgr.start();
  kubectl("apply", "-f", path.join(repoRoot, "examples/gold"));
});

afterAll(async () => {
  await mgr?.stop();
  await removeNs?.();
  kube?.close();
});

describe("reference checks", () => {
  it("reports the gold example Ready, with its copies by precedence", async () => {
    const gold = await ready("storagepolicies", "gold", "True", "CopiesResolved");
    expect(gold.status.copyCount).toBe(3);
    expect(gold.status.copies.map((c: Obj) => [c.name, c.precedence, c.primary])).toEqual([
      ["primary", 1, true],
      ["offsite", 2, false],
      ["monthly", 3, false],
    ]);
    const primary = await ready("policycopies", "primary", "True", "ReferencesResolved");
    expect(primary.status).toMatchObject({ primary: true, precedence: 1 });
    await ready("libraries", "onsite-disk", "True", "Configured");
    await ready("libraries", "offsite-s3", "True", "Configured");
    console.log(kubectl("get", "auxo"));
  });

  it("flags a copy whose library does not exist, until it does", async () => {
    await kube.create(api("policycopies"), copy("tape", { storagePolicy: "gold", library: "vault-tape" }));
    const bad = await ready("policycopies", "tape", "False", "LibraryNotFound");
    expect(bad.status.conditions[0].message).toContain('library "vault-tape" does not exist');
    const ev = await warning("tape", "LibraryNotFound");
    expect(ev.message).toContain("vault-tape");
    await kube.create(api("libraries"), {
      apiVersion: "auxo.dev/v1alpha1",
      kind: "Library",
      metadata: { name: "vault-tape" },
      spec: { filesystem: { hostPath: { path: "/srv/tape" } } },
    });
    await ready("policycopies", "tape", "True");
  });

  it("flags a policy whose primaryCopy is a copy of another policy", async () => {
    await kube.create(api("storagepolicies"), {
      apiVersion: "auxo.dev/v1alpha1",
      kind: "StoragePolicy",
      metadata: { name: "silver" },
      spec: { primaryCopy: "offsite" },
    });
    const silver = await ready("storagepolicies", "silver", "False", "PrimaryCopyInOtherPolicy");
    expect(silver.status.conditions[0].message).toBe('primaryCopy "offsite" is a copy of policy "gold", not of "silver"');
    await warning("silver", "PrimaryCopyInOtherPolicy");
  });

  it("flags a copy whose source is in another policy", async () => {
    await kube.create(api("policycopies"), copy("silver-offsite", { storagePolicy: "silver", sourceCopy: "primary" }));
    const c = await ready("policycopies", "silver-offsite", "False", "SourceCopyInOtherPolicy");
    expect(c.status.conditions[0].message).toBe('source copy "primary" belongs to policy "gold", not "silver"');
  });

  it("flags copies whose sources form a cycle", async () => {
    await kube.create(api("policycopies"), copy("loop-a", { storagePolicy: "gold", sourceCopy: "loop-b" }));
    await kube.create(api("policycopies"), copy("loop-b", { storagePolicy: "gold", sourceCopy: "loop-a" }));
    const a = await ready("policycopies", "loop-a", "False", "SourceCycle");
    expect(a.status.conditions[0].message).toContain("form a cycle");
    await ready("policycopies", "loop-b", "False", "SourceCycle");
    await warning("loop-a", "SourceCycle");
  });

  it("flags a missing Secret key, and recovers when the Secret gains it", async () => {
    await kube.create(api("policycopies"), {
      ...copy("keyed", { storagePolicy: "gold" }),
      spec: {
        storagePolicy: "gold",
        library: "onsite-disk",
        encryption: { passwordSecret: { name: "repo-password", key: "restic-password" } },
      },
    });
    const c = await ready("policycopies", "keyed", "False", "SecretKeyNotFound");
    expect(c.status.conditions[0].message).toBe('spec.encryption.passwordSecret: Secret "repo-password" has no key "restic-password"');
    await kube.patch(`/api/v1/namespaces/${ns}/secrets/repo-password`, { stringData: { "restic-password": "another-long-passphrase" } });
    await ready("policycopies", "keyed", "True");
  });

  it("flags a library whose credentials Secret is missing, without putting a secret value anywhere", async () => {
    await kube.create(api("libraries"), {
      apiVersion: "auxo.dev/v1alpha1",
      kind: "Library",
      metadata: { name: "dr-site" },
      spec: { s3: { endpoint: "https://s3.dr.example.com", bucket: "dr-backups", credentialsSecret: { name: "dr-credentials" } } },
    });
    const lib = await ready("libraries", "dr-site", "False", "SecretNotFound");
    expect(lib.status.conditions[0].message).toBe(
      'spec.s3.credentialsSecret names Secret "dr-credentials", which does not exist in this namespace',
    );
    const describe = kubectl("describe", "library", "dr-site");
    expect(describe).toContain("SecretNotFound");
    // The status and events of every object in the namespace never carry a secret value.
    const everything =
      JSON.stringify(await kube.get(`/apis/auxo.dev/v1alpha1/namespaces/${ns}/policycopies`)) +
      JSON.stringify(await kube.get(`/api/v1/namespaces/${ns}/events`));
    for (const secret of ["change-me-to-a-long-random-passphrase", "another-long-passphrase", "replace-with-the-secret-access-key"])
      expect(everything).not.toContain(secret);
  });
});
