// A policy's copies get real restic repositories from MediaAgent pods: the primary on a filesystem library, a
// deduplicating secondary on the S3 server with the primary's chunker parameters; a primary's catalog of 50 mixed
// jobs, fed by a plain restic client, shows up in status as counts, on a filesystem library and on S3; verification
// results written beside the repository come back through the scan; a failed init is retried until it works.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerControllers } from "../../src/controllers/index.ts";
import { buildAgentPod } from "../../src/mediaagent/pod.ts";
import { type JobStatus, type JobType, tagsFor } from "../../src/policy/catalog.ts";
import { repositoryAccess } from "../../src/policy/repository.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import { admin, createBucket, freshNamespace, phaseIs, waitForPod, world, resticAsAgent } from "../harness/testing.ts";

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

const restic = resticAsAgent(scratch, password);

const s3env = () => ({ AWS_ACCESS_KEY_ID: world().s3.accessKey, AWS_SECRET_ACCESS_KEY: world().s3.secretKey });

/** The host folder of a repository on the `disk` claim. */
async function onDisk(...repoPath: string[]): Promise<string> {
  const pvc = await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/disk`);
  return path.join(world().controlPlaneDir, "node", "claims", ns, `disk-${pvc.metadata.uid}`, ...repoPath);
}

const types: JobType[] = ["full", "incremental", "incremental", "differential", "log", "synthfull"];
const statuses: JobStatus[] = ["completed", "completed", "completedWithErrors", "completed", "failed", "completed", "killed"];

/** Backs up `count` jobs of mixed types and statuses with the plain restic CLI, each adding a file; returns how many are valid. */
function feed(repo: string, env: Record<string, string>, count: number, name: string, first = 0): number {
  const data = path.join(scratch, name);
  mkdirSync(data, { recursive: true });
  execFileSync("chown", ["-R", "65532:65532", data]);
  let valid = 0;
  for (let i = first; i < first + count; i++) {
    writeFileSync(path.join(data, `f${i}`), `${name} rows ${i}\n`.repeat(500 + i));
    const job = {
      jobId: `${name}-${i}`,
      type: types[i % types.length],
      status: statuses[i % statuses.length],
      client: "db",
      subclient: `pg${i % 3}`,
    };
    if (job.status === "completed" || job.status === "completedWithErrors") valid++;
    restic(repo, env, "backup", "-q", "--host", "db", ...tagsFor(job as never).flatMap((t) => ["--tag", t]), data);
  }
  return valid;
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
  // No automatic aux copy: continuous copying would copy the fed jobs into the copies these tests inspect.
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    probeTimeoutSeconds: 15,
    scanIntervalSeconds: 3,
    retryBaseMs: 2000,
    autoAuxCopy: false,
  });
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

  it("scans 50 jobs of mixed types and statuses on a filesystem library into status", async () => {
    const valid = feed(await onDisk(ns, "p", "primary"), {}, 50, "fs");
    const status = await copyStatus("primary", (s) => s.jobs?.available === valid, `showing ${valid} valid jobs of 50`);
    expect(valid).toBeLessThan(50); // failed and killed jobs are in the repository but not available
    expect(status.bytes).toBeGreaterThan(50 * 500 * 8);
    expect(Date.parse(status.newestJob)).toBeGreaterThan(Date.parse(status.oldestJob));
    const ready = (await kube.get(api("policycopies", "primary"))).status.conditions.find((c: Obj) => c.type === "Ready");
    expect(ready.status).toBe("True");
  }, 180_000);

  it("initialises and scans a primary of 50 jobs on the S3 server", async () => {
    await kube.create(api("storagepolicies"), auxo("StoragePolicy", "cloud", { primaryCopy: "cloud-primary" }));
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", "cloud-primary", { storagePolicy: "cloud", library: "objects", repositoryPath: `${ns}/cloud`, encryption: enc }),
    );
    const ready = await copyStatus("cloud-primary", (s) => s.repositoryReady === true, "initialised");
    expect(ready.repository).toBe(`s3:${world().s3.endpoint}/repos/${ns}/cloud`);
    const valid = feed(ready.repository, s3env(), 50, "s3");
    const status = await copyStatus("cloud-primary", (s) => s.jobs?.available === valid, `showing ${valid} valid jobs of 50`);
    expect(status.bytes).toBeGreaterThan(50 * 500 * 8);
    expect(status.verification).toEqual({ verified: 0, failed: 0 }); // metadata folder read, nothing verified yet
  }, 180_000);

  it("keeps verification results beside the repository and shows them in status", async () => {
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", "checked", { storagePolicy: "p", library: "disk", backups: { mode: "All" }, encryption: enc }),
    );
    await copyStatus("checked", (s) => s.repositoryReady === true, "initialised");
    const hostRepo = await onDisk(ns, "p", "checked");
    feed(hostRepo, {}, 2, "verify");
    const packs = () => new Set(restic(hostRepo, {}, "list", "packs").split("\n").filter(Boolean));
    const before = packs();
    feed(hostRepo, {}, 1, "verify", 2);
    const snaps = JSON.parse(restic(hostRepo, {}, "snapshots", "--json")) as { id: string; time: string }[];
    expect(snaps).toHaveLength(3);
    // The packs the last backup wrote hold only its own data and trees: flip bytes all through them.
    const added = [...packs()].filter((p) => !before.has(p));
    expect(added.length).toBeGreaterThan(0);
    for (const id of added) {
      const file = path.join(hostRepo, "data", id.slice(0, 2), id);
      const buf = readFileSync(file);
      for (let i = 20; i < buf.length - 20; i += 31) buf[i] = (buf[i] as number) ^ 0xff;
      writeFileSync(file, buf);
    }

    // A verify MediaAgent pod, as the operator builds it, over all three jobs.
    const copy = await kube.get(api("policycopies", "checked"));
    const lib = await kube.get(api("libraries", "disk"));
    const pod = buildAgentPod({
      task: "verify",
      namespace: ns,
      name: "checked-verify-1",
      owner: { apiVersion: "auxo.dev/v1alpha1", kind: "PolicyCopy", name: "checked", uid: copy.metadata.uid, controller: true },
      image: "auxo:dev",
      target: repositoryAccess(lib.spec, `${ns}/p/checked`, { secret: "repo-password", key: "password" }),
      snapshotIds: snaps.map((s) => s.id),
      deadlineSeconds: 300,
    });
    await kube.create(`/api/v1/namespaces/${ns}/pods`, pod);
    const done = await waitForPod(kube, ns, "checked-verify-1", "to finish", phaseIs("Succeeded", "Failed"), 120_000);
    const result = JSON.parse(done.status.containerStatuses[0].state.terminated.message);
    expect(result).toMatchObject({ ok: false, kind: "CorruptData", verified: 2, failedJobs: ["verify-2"] });
    expect(result.message).toContain("1 of 3 jobs failed verification: verify-2");

    // The events are plain JSON files beside the repository: the view can be rebuilt from the library alone.
    const events = readdirSync(`${hostRepo}.auxo/jobs`, { recursive: true }).filter((f) => String(f).endsWith(".json"));
    expect(events.map((f) => String(f).replace(/\/.*-(verify-(ok|failed))-.*/, " $1")).sort()).toEqual([
      "verify-0 verify-ok",
      "verify-1 verify-ok",
      "verify-2 verify-failed",
    ]);
    const status = await copyStatus("checked", (s) => s.verification?.failed === 1, "showing the failed verification");
    expect(status.verification).toMatchObject({ verified: 2, failed: 1, failedJobs: ["verify-2"] });
    expect(Date.parse(status.verification.lastVerificationTime)).toBeGreaterThan(Date.now() - 300_000);
  }, 180_000);

  it("reports a copy whose repository does not open with its password as WrongPassword", async () => {
    await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: "other-password" },
      stringData: { password: "not-the-one-the-repository-has" },
    });
    // An existing repository that no copy owns (made by a plain restic client, as one that outlived its cluster),
    // named by a copy with another password. (The primary's repository would be refused: one repository, one copy.)
    restic(await onDisk(ns, "found"), {}, "init");
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", "imposter", {
        storagePolicy: "p",
        library: "disk",
        repositoryPath: `${ns}/found`,
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
    expect(ready.message).toMatch(/attempt \d+.*next attempt at/);
    expect(c.status.repositoryReady).toBe(false);
    expect(c.status.initFailure).toMatchObject({ reason: "WrongPassword" });
    expect(JSON.stringify(c)).not.toContain("not-the-one-the-repository-has");

    // Retried with back-off: once the Secret holds the right password, a later attempt opens the repository.
    await kube.request(
      "PATCH",
      `/api/v1/namespaces/${ns}/secrets/other-password`,
      { stringData: { password } },
      "application/merge-patch+json",
    );
    const fixed = await copyStatus("imposter", (s) => s.repositoryReady === true, "initialised after the fix");
    expect(fixed.initFailure).toBeUndefined();
    const after = (await kube.get(api("policycopies", "imposter"))).status.conditions.find((x: Obj) => x.type === "Ready");
    expect(after.status).toBe("True");
  }, 120_000);
});
