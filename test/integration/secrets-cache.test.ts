// The operator keeps in memory the data of only the Secrets that specs name: the Secrets of other namespaces, and
// the unnamed ones of its own, never reach its caches (on a big cluster a whole-cluster Secret cache is an
// out-of-memory loop, and a compromised operator would hold every credential). The controllers run in this process
// against the real API server; everything reachable from the manager is searched for the Secrets' bytes.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerControllers } from "../../src/controllers/index.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import { admin, freshNamespace, world } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
const others: string[] = [];
const cleanups: (() => Promise<void>)[] = [];
let mgr: Manager;

const b64 = (s: string) => Buffer.from(s).toString("base64");
const marker = () => `unrelated-${randomBytes(12).toString("hex")}`;
/** Values (as the API stores them, base64) of Secrets that nothing names. */
const unrelated: string[] = [];

async function secret(namespace: string, name: string, data: Record<string, string>): Promise<void> {
  await kube.create(`/api/v1/namespaces/${namespace}/secrets`, {
    metadata: { name },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  });
}

async function unrelatedSecret(namespace: string, name: string): Promise<void> {
  const values = { password: marker(), token: marker() };
  unrelated.push(...Object.values(values).map(b64), ...Object.values(values));
  await secret(namespace, name, values);
}

/** Every string reachable from `root` (own properties, symbols, Map and Set entries, array items). */
function reachableStrings(root: unknown): Set<string> {
  const out = new Set<string>();
  const seen = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === "string") {
      out.add(v);
      continue;
    }
    if (v === null || (typeof v !== "object" && typeof v !== "function") || seen.has(v)) continue;
    seen.add(v);
    if (ArrayBuffer.isView(v)) continue;
    if (v instanceof Map) for (const [k, x] of v) stack.push(k, x);
    if (v instanceof Set) for (const x of v) stack.push(x);
    for (const k of Reflect.ownKeys(v)) {
      const d = Object.getOwnPropertyDescriptor(v, k);
      if (d && "value" in d) stack.push(d.value);
    }
  }
  return out;
}

async function ready(name: string, status: "True" | "False", reason: string): Promise<Obj> {
  return await waitFor(`library ${name} Ready=${status} (${reason})`, async () => {
    const o = await kube.get(`/apis/auxo.dev/v1alpha1/namespaces/${ns}/libraries/${name}`);
    const c = (o.status?.conditions ?? []).find((x: Obj) => x.type === "Ready");
    return c?.status === status && c.reason === reason && o.status.observedGeneration === o.metadata.generation ? o : undefined;
  });
}

beforeAll(async () => {
  kube = admin();
  await installCrds(kube);
  const own = await freshNamespace(kube, "secrets");
  ns = own.name;
  cleanups.push(own.remove);
  for (const prefix of ["secrets-other-a", "secrets-other-b"]) {
    const o = await freshNamespace(kube, prefix);
    others.push(o.name);
    cleanups.push(o.remove);
  }
  // Some exist before the operator starts (its first list), some are created while it watches.
  await unrelatedSecret(others[0] as string, "db-credentials");
  await unrelatedSecret(ns, "not-named-by-anything");
  mgr = testManager(world().kubeconfig);
  registerControllers(mgr, { agentImage: "auxo:dev", probeLibraries: false });
  await mgr.start();
  await unrelatedSecret(others[1] as string, "api-token");
  await unrelatedSecret(others[0] as string, "tls-key");
});

afterAll(async () => {
  await mgr?.stop();
  for (const c of cleanups) await c();
  kube?.close();
});

describe("Secrets in the operator's memory", () => {
  it("follows a named Secret as it appears and gains its key, and holds the data of no other Secret", async () => {
    await kube.create(`/apis/auxo.dev/v1alpha1/namespaces/${ns}/libraries`, {
      apiVersion: "auxo.dev/v1alpha1",
      kind: "Library",
      metadata: { name: "offsite" },
      spec: { s3: { endpoint: "https://s3.example.com", bucket: "backups", credentialsSecret: { name: "offsite-credentials" } } },
    });
    await ready("offsite", "False", "SecretNotFound");
    await secret(ns, "offsite-credentials", { AWS_ACCESS_KEY_ID: "AKIANAMEDBYALIBRARY" });
    const lib = await ready("offsite", "False", "SecretKeyNotFound");
    expect(lib.status.conditions.find((c: Obj) => c.type === "Ready").message).toBe(
      'spec.s3.credentialsSecret: Secret "offsite-credentials" has no key "AWS_SECRET_ACCESS_KEY"',
    );
    await kube.patch(`/api/v1/namespaces/${ns}/secrets/offsite-credentials`, {
      data: { AWS_SECRET_ACCESS_KEY: b64("named-secret-access-key") },
    });
    await ready("offsite", "True", "Configured");

    const strings = reachableStrings(mgr);
    // The named Secret is read (this proves the search reaches the caches)...
    expect(strings.has(b64("named-secret-access-key"))).toBe(true);
    // ...and no other Secret's data is there, whatever its namespace.
    const leaked = unrelated.filter((v) => strings.has(v));
    expect(leaked).toEqual([]);
  });
});
