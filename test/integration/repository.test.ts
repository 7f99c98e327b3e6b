// A policy's copies get real restic repositories from MediaAgent pods: the primary on a filesystem library, a
// deduplicating secondary on the S3 server with the primary's chunker parameters; the primary's catalog, fed by a
// plain restic client, shows up in status as counts.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerControllers } from "../../src/controllers/index.ts";
import { tagsFor } from "../../src/policy/catalog.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import { admin, createBucket, freshNamespace, world } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let mgr: Manager;
const scratch = mkdtempSync(path.join(os.tmpdir(), "auxo-repo-test-"));
const password = "a-long-repository-passphrase";
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const enc = { passwordSecret: { name: "repo-password" } };

async function copyStatus(name: string, check: (s: Obj) => boolean, what: string): Promise<Obj> {
  return await waitFor(
    `policycopy ${name} ${what}`,
    async () => {
      const c = await kube.get(api("policycopies", name));
      return c.status && check(c.status) ? c.status : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 300 },
  );
}

/** restic as uid 65532, like the MediaAgent pods (repository files are private to their owner). */
function restic(repo: string, env: Record<string, string>, ...args: string[]): string {
  const pwFile = path.join(scratch, "pw");
  writeFileSync(pwFile, password, { mode: 0o644 });
  // The world's copy of restic: the tool cache may sit in a home folder uid 65532 cannot enter.
  return execFileSync(
    "setpriv",
    [
      "--reuid=65532",
      "--regid=65532",
      "--clear-groups",
      "--",
      path.join(world().dir, "bin", "restic"),
      "-r",
      repo,
      "--password-file",
      pwFile,
      "--no-cache",
      ...args,
    ],
    {
      env: { ...process.env, ...env, HOME: scratch },
      encoding: "utf8",
    },
  );
}

beforeAll(async () => {
  execFileSync("chown", ["65532:65532", scratch]);
  kube = admin();
  await installCrds(kube);
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "repos"));
  const s3 = world().s3;
  await createBucket("repos");
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
    metadata: { name: "s3" },
    stringData: { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey },
  });
  await kube.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    metadata: { name: "disk" },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  });
  mgr = testManager(world().kubeconfig);
  registerControllers(mgr, { agentImage: "auxo:dev", probeTimeoutSeconds: 15, scanIntervalSeconds: 3 });
  await mgr.start();
  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { persistentVolumeClaim: { claimName: "disk" } } }));
  await kube.create(
    api("libraries"),
    auxo("Library", "objects", { s3: { endpoint: s3.endpoint, bucket: "repos", credentialsSecret: { name: "s3" } } }),
  );
  await kube.create(api("storagepolicies"), auxo("StoragePolicy", "p", { primaryCopy: "primary" }));
  await kube.create(api("policycopies"), auxo("PolicyCopy", "primary", { storagePolicy: "p", library: "disk", encryption: enc }));
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "offsite", {
      storagePolicy: "p",
      library: "objects",
      deduplication: { enabled: true },
      backups: { mode: "All" },
      encryption: enc,
    }),
  );
});

afterAll(async () => {
  await mgr?.stop();
  await removeNs?.();
  kube?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe("copy repositories", () => {
  it("initialises the primary and a deduplicating secondary with the same chunker parameters", async () => {
    const primary = await copyStatus("primary", (s) => s.repositoryReady === true, "initialised");
    expect(primary.repository).toBe(`/libraries/target/${ns}/p/primary`);
    const offsite = await copyStatus("offsite", (s) => s.repositoryReady === true, "initialised");
    expect(offsite.repository).toBe(`s3:${world().s3.endpoint}/repos/${ns}/p/offsite`);
    const pvc = await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/disk`);
    const hostRepo = path.join(world().controlPlaneDir, "node", "claims", ns, `disk-${pvc.metadata.uid}`, ns, "p", "primary");
    const s3env = { AWS_ACCESS_KEY_ID: world().s3.accessKey, AWS_SECRET_ACCESS_KEY: world().s3.secretKey };
    const polynomial = (repo: string, env: Record<string, string> = {}) =>
      JSON.parse(restic(repo, env, "cat", "config")).chunker_polynomial;
    expect(polynomial(offsite.repository, s3env)).toBe(polynomial(hostRepo));
  }, 120_000);

  it("scans the primary's catalog into status after a restic client backs up into it", async () => {
    const pvc = await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/disk`);
    const hostRepo = path.join(world().controlPlaneDir, "node", "claims", ns, `disk-${pvc.metadata.uid}`, ns, "p", "primary");
    const data = path.join(scratch, "data");
    execFileSync("mkdir", ["-p", data]);
    execFileSync("chown", ["-R", "65532:65532", data]);
    for (let i = 0; i < 5; i++) {
      writeFileSync(path.join(data, `f${i}`), `rows ${i}\n`.repeat(1000));
      const job = {
        jobId: `j${i}`,
        type: i === 0 ? "full" : "incremental",
        status: i === 3 ? "failed" : "completed",
        client: "db",
        subclient: "pg",
      } as const;
      restic(hostRepo, {}, "backup", "-q", "--host", "db", ...tagsFor(job).flatMap((t) => ["--tag", t]), data);
    }
    const status = await copyStatus("primary", (s) => s.jobs?.available === 4, "showing 4 available jobs (one failed)");
    expect(status.bytes).toBeGreaterThan(0);
    expect(Date.parse(status.newestJob)).toBeGreaterThanOrEqual(Date.parse(status.oldestJob));
    const ready = (await kube.get(api("policycopies", "primary"))).status.conditions.find((c: Obj) => c.type === "Ready");
    expect(ready.status).toBe("True");
  }, 120_000);

  it("reports a copy whose repository does not open with its password as WrongPassword", async () => {
    await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: "other-password" },
      stringData: { password: "not-the-one-the-repository-has" },
    });
    // An existing repository (the primary's) named by a copy with another password.
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", "imposter", {
        storagePolicy: "p",
        library: "disk",
        repositoryPath: `${ns}/p/primary`,
        backups: { mode: "All" },
        encryption: { passwordSecret: { name: "other-password" } },
      }),
    );
    const c = await waitFor(
      "imposter Ready=False",
      async () => {
        const o = await kube.get(api("policycopies", "imposter"));
        const ready = (o.status?.conditions ?? []).find((x: Obj) => x.type === "Ready");
        return ready?.status === "False" ? o : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 300 },
    );
    const ready = c.status.conditions.find((x: Obj) => x.type === "Ready");
    expect(ready.reason).toBe("WrongPassword");
    expect(ready.message).toContain("the repository password is wrong");
    expect(c.status.repositoryReady).toBe(false);
    expect(JSON.stringify(c)).not.toContain("not-the-one-the-repository-has");
  }, 120_000);
});
