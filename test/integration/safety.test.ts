// Data safety end to end (issue 12): what a careless user or another tenant could do to a repository, and how the
// operator answers. A policy with a primary on a filesystem library, a filesystem copy and an S3 copy whose library
// reaches the world's S3 server through a relay this file owns. Real MediaAgent pods, restic and S3; every outcome is
// read back with the plain restic CLI.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerControllers } from "../../src/controllers/index.ts";
import { tagsFor } from "../../src/policy/catalog.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { sleep, waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import { Relay } from "../harness/relay.ts";
import { admin, createBucket, freshNamespace, resticAsAgent, world } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let nsB: string;
const cleanups: (() => Promise<void>)[] = [];
let mgr: Manager;
let relay: Relay;
const scratch = mkdtempSync(path.join(os.tmpdir(), "auxo-safety-test-"));
const password = "safety-test-passphrase";
const bucket = "safety";
const api = (plural: string, name = "", namespace = ns) =>
  `/apis/auxo.dev/v1alpha1/namespaces/${namespace}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const enc = { passwordSecret: { name: "repo-password" } };
const restic = resticAsAgent(scratch, password);
const s3env = () => ({ AWS_ACCESS_KEY_ID: world().s3.accessKey, AWS_SECRET_ACCESS_KEY: world().s3.secretKey });
const finished = (s: Obj) => ["Completed", "CompletedWithErrors", "Failed", "Killed"].includes(s?.phase);
const JOBS = 16;
const fed: string[] = [];

function jobsOn(repo: string, env: Record<string, string> = {}): string[] {
  const snaps = JSON.parse(restic(repo, env, "snapshots", "--json")) as { tags?: string[] }[];
  return snaps.map((s) => (s.tags ?? []).find((t) => t.startsWith("auxo.dev/job="))?.slice("auxo.dev/job=".length) ?? "?").sort();
}

async function hostRepo(...p: string[]): Promise<string> {
  const pvc = await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/disk`);
  return path.join(world().controlPlaneDir, "node", "claims", ns, `disk-${pvc.metadata.uid}`, ...p);
}

const ready = (o: Obj) => (o?.status?.conditions ?? []).find((c: Obj) => c.type === "Ready");

async function until(what: string, get: () => Promise<Obj>, check: (o: Obj) => boolean, timeoutMs = 120_000): Promise<Obj> {
  let last: Obj | undefined;
  try {
    return await waitFor(
      what,
      async () => {
        last = await get();
        return last && check(last) ? last : undefined;
      },
      { timeoutMs, intervalMs: 250 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last: ${JSON.stringify(last?.status ?? last)}`, { cause: err });
  }
}

const copyObj = (name: string, namespace = ns) => kube.get(api("policycopies", name, namespace));
const acj = (name: string) => kube.get(api("auxcopyjobs", name)).then((o: Obj) => o.status);

async function events(name: string, namespace = ns): Promise<Obj[]> {
  return (await kube.get(`/api/v1/namespaces/${namespace}/events?fieldSelector=involvedObject.name=${name}`)).items;
}

async function podsOwnedBy(uid: string, namespace = ns): Promise<Obj[]> {
  const pods = (await kube.get(`/api/v1/namespaces/${namespace}/pods`)).items as Obj[];
  return pods.filter((p) => (p.metadata.ownerReferences ?? []).some((o: Obj) => o.uid === uid));
}

beforeAll(async () => {
  execFileSync("chown", ["65532:65532", scratch]);
  kube = admin();
  await installCrds(kube);
  for (const prefix of ["safety", "tenant"]) {
    const n = await freshNamespace(kube, prefix);
    cleanups.push(n.remove);
    if (prefix === "safety") ns = n.name;
    else nsB = n.name;
  }
  await createBucket(bucket);
  relay = new Relay(Number(new URL(world().s3.endpoint).port));
  await relay.open();
  const s3 = world().s3;
  for (const namespace of [ns, nsB]) {
    await kube.create(`/api/v1/namespaces/${namespace}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
    await kube.create(`/api/v1/namespaces/${namespace}/secrets`, {
      metadata: { name: "s3" },
      stringData: { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey },
    });
  }
  await kube.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    metadata: { name: "disk" },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "5Gi" } } },
  });
  mgr = testManager(world().kubeconfig);
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    probeTimeoutSeconds: 5,
    scanIntervalSeconds: 3600,
    retryBaseMs: 1000,
    progressIntervalMs: 300,
    dataAging: true,
  });
  await mgr.start();
  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { persistentVolumeClaim: { claimName: "disk" } } }));
  // Probed every 5 minutes (the default): an outage must show sooner than that.
  await kube.create(
    api("libraries"),
    auxo("Library", "objects", { s3: { endpoint: `http://127.0.0.1:${relay.port}`, bucket, credentialsSecret: { name: "s3" } } }),
  );
  // Data aging's daily time 12 hours away: only runs asked for happen.
  const at = `${String((new Date().getUTCHours() + 12) % 24).padStart(2, "0")}:00`;
  await kube.create(
    api("storagepolicies"),
    auxo("StoragePolicy", "gold", { primaryCopy: "primary", timeZone: "UTC", auxCopySchedule: { enabled: false }, dataAging: { at } }),
  );
  await kube.create(api("policycopies"), auxo("PolicyCopy", "primary", { storagePolicy: "gold", library: "disk", encryption: enc }));
  for (const [name, library] of [
    ["second", "disk"],
    ["remote", "objects"],
  ] as const)
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", name, { storagePolicy: "gold", library, backups: { mode: "All" }, encryption: enc }),
    );
  for (const c of ["primary", "second", "remote"])
    await until(
      `${c} initialised`,
      () => copyObj(c),
      (o) => o.status?.repositoryReady === true,
    );

  const primary = await hostRepo(ns, "gold", "primary");
  const data = path.join(scratch, "data");
  mkdirSync(data, { recursive: true });
  for (let i = 0; i < JOBS; i++) {
    writeFileSync(path.join(data, `blob${i}`), randomBytes(4 << 20));
    execFileSync("chown", ["-R", "65532:65532", data]);
    const job = {
      jobId: `app-${String(i).padStart(2, "0")}`,
      type: i === 0 ? "full" : "incremental",
      status: "completed",
      client: "app",
      subclient: "files",
    } as const;
    fed.push(job.jobId);
    restic(primary, {}, "backup", "-q", "--host", "app", ...tagsFor(job).flatMap((t) => ["--tag", t]), data);
  }
}, 300_000);

afterAll(async () => {
  await mgr?.stop();
  await relay?.cut();
  for (const c of cleanups) await c();
  kube?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe("data safety", () => {
  it("records each copy's repository ID and location, and keeps a second copy off a repository another copy owns", async () => {
    const primary = await copyObj("primary");
    const id = JSON.parse(restic(await hostRepo(ns, "gold", "primary"), {}, "cat", "config")).id as string;
    expect(primary.status.repositoryId).toBe(id);
    expect(primary.status.repositoryLocation).toMatch(new RegExp(`^pvc:${ns}/disk//${ns}/gold/primary$`));

    // A copy aimed at the primary's repository, with a retention that would age almost everything.
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", "twin", {
        storagePolicy: "gold",
        library: "disk",
        repositoryPath: `${ns}/gold/primary`,
        backups: { mode: "All" },
        retention: { days: 0, cycles: 0 },
        encryption: enc,
      }),
    );
    const twin = await until(
      "twin refused",
      () => copyObj("twin"),
      (o) => ready(o)?.reason === "RepositoryShared",
    );
    expect(ready(twin).status).toBe("False");
    expect(ready(twin).message).toContain(`the repository location of ${ns}/primary`);
    expect(twin.status.repositoryReady).toBe(false);
    expect((await events("twin")).some((e) => e.type === "Warning" && e.reason === "RepositoryShared")).toBe(true);
    // Asked to age now, it does nothing: no pod ever works for it, and every job is still on the primary.
    await kube.patch(api("policycopies", "twin"), {
      metadata: { annotations: { "auxo.dev/data-aging-requested": new Date().toISOString() } },
    });
    await until(
      "twin's data aging to say why not",
      () => copyObj("twin"),
      (o) => /no data aging/.test(o.status?.dataAging?.message ?? ""),
    );
    await sleep(3000);
    expect(await podsOwnedBy(twin.metadata.uid)).toEqual([]);
    expect(jobsOn(await hostRepo(ns, "gold", "primary"))).toEqual(fed);
    expect(ready(await copyObj("primary")).status).toBe("True");

    // Two new copies on one new location at once: exactly one gets it, and the repository opens.
    for (const n of ["pair-a", "pair-b"])
      await kube.create(
        api("policycopies"),
        auxo("PolicyCopy", n, {
          storagePolicy: "gold",
          library: "disk",
          repositoryPath: `${ns}/pair`,
          backups: { mode: "All" },
          encryption: enc,
        }),
      );
    const settled = await until(
      "one of the pair initialised, the other refused",
      async () => ({ status: { pair: await Promise.all(["pair-a", "pair-b"].map((n) => copyObj(n))) } }),
      (o) =>
        o.status.pair.some((c: Obj) => c.status?.repositoryReady) &&
        o.status.pair.some((c: Obj) => ready(c)?.reason === "RepositoryShared"),
    );
    const owner = (settled.status.pair as Obj[]).find((c) => c.status.repositoryReady) as Obj;
    const refused = (settled.status.pair as Obj[]).find((c) => ready(c)?.reason === "RepositoryShared") as Obj;
    expect(owner.metadata.name).not.toBe(refused.metadata.name);
    expect(JSON.parse(restic(await hostRepo(ns, "pair"), {}, "cat", "config")).id).toBe(owner.status.repositoryId);
    expect(await podsOwnedBy(refused.metadata.uid)).toEqual([]);
    for (const n of ["twin", "pair-a", "pair-b"]) await kube.deleteIfExists(api("policycopies", n));
  }, 240_000);

  it("keeps a tenant of another namespace out of this namespace's repositories on a shared bucket", async () => {
    const remote = `s3:${world().s3.endpoint}/${bucket}/${ns}/gold/remote`;
    const before = restic(remote, s3env(), "cat", "config");
    await kube.create(
      api("libraries", "", nsB),
      auxo("Library", "shared", { s3: { endpoint: `http://127.0.0.1:${relay.port}`, bucket, credentialsSecret: { name: "s3" } } }),
    );
    await kube.create(
      api("libraries", "", nsB),
      auxo("Library", "inside", {
        s3: { endpoint: `http://127.0.0.1:${relay.port}`, bucket, prefix: `${ns}/gold/remote`, credentialsSecret: { name: "s3" } },
      }),
    );
    await kube.create(
      api("storagepolicies", "", nsB),
      auxo("StoragePolicy", "steal", { primaryCopy: "mine", auxCopySchedule: { enabled: false } }),
    );
    // By path: the repository of namespace A's S3 copy.
    await kube.create(
      api("policycopies", "", nsB),
      auxo("PolicyCopy", "mine", { storagePolicy: "steal", library: "shared", repositoryPath: `${ns}/gold/remote`, encryption: enc }),
    );
    // By a library prefix inside that repository, with a path in its own namespace.
    await kube.create(
      api("policycopies", "", nsB),
      auxo("PolicyCopy", "nested", { storagePolicy: "steal", library: "inside", encryption: enc }),
    );
    const mine = await until(
      "the path outside the namespace refused",
      () => copyObj("mine", nsB),
      (o) => ready(o)?.status === "False",
    );
    expect(ready(mine).reason).toBe("RepositoryPathNotAllowed");
    expect(ready(mine).message).toContain(`must start with the copy's namespace ("${nsB}/...")`);
    const nested = await until(
      "the nested repository refused",
      () => copyObj("nested", nsB),
      (o) => ready(o)?.reason === "RepositoryShared",
    );
    expect(ready(nested).message).toContain(`${ns}/remote`);
    await sleep(3000);
    for (const c of [mine, nested]) expect(await podsOwnedBy(c.metadata.uid, nsB)).toEqual([]);
    expect(restic(remote, s3env(), "cat", "config")).toBe(before);
    expect(JSON.stringify([mine, nested])).not.toContain(password);
  }, 120_000);

  it("waits for an outside restic's exclusive lock on the primary, never removes it, and completes once it is gone", async () => {
    const repo = await hostRepo(ns, "gold", "primary");
    const locks = path.join(repo, "locks");
    // A restic check (exclusive lock) of the primary, stopped while it holds its lock: a producer's maintenance.
    let holder: ReturnType<typeof spawn> | undefined;
    let lockFile = "";
    for (let tries = 0; tries < 5 && !lockFile; tries++) {
      writeFileSync(path.join(scratch, "pw"), password, { mode: 0o644 });
      holder = spawn(
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
          path.join(scratch, "pw"),
          "--no-cache",
          "check",
          "--read-data",
        ],
        { env: { ...process.env, HOME: scratch }, stdio: "ignore" },
      );
      const t0 = Date.now();
      while (Date.now() - t0 < 10_000 && holder.exitCode === null) {
        const l = existsSync(locks) ? readdirSync(locks) : [];
        if (l.length === 1) {
          holder.kill("SIGSTOP");
          // Only a lock that is the stopped check's own, exclusive one will do (another process may have had a
          // passing lock there, and the check then gave up); else end this holder and start another.
          await sleep(300);
          const mine = (() => {
            try {
              const lock = JSON.parse(restic(repo, {}, "cat", "lock", l[0] as string, "--no-lock")) as {
                exclusive?: boolean;
                pid?: number;
              };
              return holder.exitCode === null && lock.exclusive === true && lock.pid === holder.pid;
            } catch {
              return false;
            }
          })();
          if (mine) lockFile = l[0] as string;
          else {
            // Let it end cleanly (restic removes its lock on SIGTERM), and clear what a dead process of this host left.
            holder.kill("SIGCONT");
            holder.kill("SIGTERM");
            for (let i = 0; i < 100 && holder.exitCode === null && holder.signalCode === null; i++) await sleep(100);
            restic(repo, {}, "unlock");
          }
          break;
        }
        await sleep(5);
      }
    }
    expect(lockFile).not.toBe("");
    try {
      await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "locked", { storagePolicy: "gold", copies: ["second"] }));
      const waiting = await until(
        "the run to wait for the lock, twice",
        () => kube.get(api("auxcopyjobs", "locked")),
        (o) => o.status?.phase === "Waiting" && o.status.copies?.[0]?.reason === "LockHeld" && (o.status.copies[0].lockWaits ?? 0) >= 2,
        90_000,
      );
      expect(waiting.status.reason).toBe("LockHeld");
      expect(waiting.status.copies[0].message).toMatch(new RegExp(`locked.*exclusive.*pid ${holder?.pid}`));
      // The holder's lock is still there: Auxo cannot prove it is its own, so it never removes it.
      expect(readdirSync(locks)).toContain(lockFile);
      expect((await events("locked")).some((e) => e.type === "Warning" && e.reason === "LockHeld")).toBe(true);
    } finally {
      holder?.kill("SIGCONT");
    }
    await until(
      "the holder to finish",
      async () => ({ status: { code: holder?.exitCode } }),
      (o) => o.status.code !== null,
      60_000,
    );
    expect(holder?.exitCode).toBe(0); // its check passed: nothing pulled the lock from under it
    const done = await until("the run to finish", () => acj("locked"), finished, 120_000);
    expect(done.phase).toBe("Completed");
    expect(done.copies[0].jobsCopied).toBe(JOBS);
    expect(jobsOn(await hostRepo(ns, "gold", "second"))).toEqual(fed);
    expect(
      done.history
        .filter((h: Obj) => h.result === "Copied")
        .map((h: Obj) => h.jobId)
        .sort(),
    ).toEqual(fed);
  }, 240_000);

  it("shows an S3 outage during a copy within 30 s (probe interval 5 minutes), waits, and completes once S3 is back", async () => {
    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "outage", { storagePolicy: "gold", copies: ["remote"], streams: 1 }));
    await until(
      "copying",
      () => acj("outage"),
      (s) => s?.copies?.[0]?.phase === "Running" && s.copies[0].jobsCopied >= 1 && s.copies[0].jobsCopied < JOBS - 4,
    );
    await relay.cut();
    const cutAt = Date.now();
    try {
      const lib = await until(
        "the library to show the outage",
        () => kube.get(api("libraries", "objects")),
        (o) => o.status?.phase === "Unreachable",
        30_000,
      );
      expect(Date.now() - cutAt).toBeLessThan(30_000);
      expect(ready(lib).status).toBe("False");
      const st = await until(
        "the run to wait",
        () => acj("outage"),
        (s) => s.phase === "Waiting",
        15_000,
      );
      expect(st.copies[0].message).toBe('library "objects" is Unreachable');
    } finally {
      await relay.open();
    }
    const done = await until("the run to finish", () => acj("outage"), finished, 180_000);
    expect(done.phase).toBe("Completed");
    expect(jobsOn(`s3:${world().s3.endpoint}/${bucket}/${ns}/gold/remote`, s3env())).toEqual(fed);
  }, 300_000);

  it("names a library whose bucket does not exist, and a library is not Ready before its first probe", async () => {
    await kube.create(
      api("libraries"),
      auxo("Library", "nobucket", { s3: { endpoint: world().s3.endpoint, bucket: "no-such-bucket", credentialsSecret: { name: "s3" } } }),
    );
    const first = await until(
      "a Ready condition",
      () => kube.get(api("libraries", "nobucket")),
      (o) => !!ready(o),
    );
    expect(ready(first).status).not.toBe("True");
    const lib = await until(
      "the probe's verdict",
      () => kube.get(api("libraries", "nobucket")),
      (o) => o.status?.phase === "Unreachable",
    );
    expect(ready(lib)).toMatchObject({ status: "False", reason: "Unreachable" });
    expect(lib.status.message).toContain("no-such-bucket");
  });

  it("reports a MediaAgent pod the API refuses, and one that never starts, on the copy within about a minute", async () => {
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", "picky", {
        storagePolicy: "gold",
        library: "disk",
        backups: { mode: "All" },
        encryption: enc,
        mediaAgent: { priorityClassName: "no-such-class" },
      }),
    );
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", "stranded", {
        storagePolicy: "gold",
        library: "disk",
        backups: { mode: "All" },
        encryption: enc,
        mediaAgent: { nodeSelector: { "auxo.dev/zone": "nowhere" } },
      }),
    );
    const picky = await until(
      "picky to say why",
      () => copyObj("picky"),
      (o) => ready(o)?.reason === "PodRejected",
    );
    expect(ready(picky).message).toContain("no-such-class");
    // The event is written beside the status write, not before it: it may land a moment later.
    const rejected = await until(
      "picky's PodRejected event",
      async () => ({ items: await events("picky") }),
      (o) => o.items.some((e: Obj) => e.reason === "PodRejected"),
      10_000,
    );
    expect(rejected.items.find((e: Obj) => e.reason === "PodRejected")?.type).toBe("Warning");
    expect(picky.status.initFailure).toMatchObject({ attempts: 1, reason: "PodRejected" });
    const stranded = await until(
      "stranded to say why",
      () => copyObj("stranded"),
      (o) => ready(o)?.reason === "PodNotScheduled",
      100_000,
    );
    expect(ready(stranded).message).toMatch(/has been Pending for \d+ s/);
    for (const n of ["picky", "stranded"]) await kube.deleteIfExists(api("policycopies", n));
  }, 180_000);

  it("refuses what it must not act on: a Recopy dated ahead, a mass-aging confirmation beyond 7 days, a user's Secret", async () => {
    const ahead = new Date(Date.now() + 3600_000).toISOString();
    await kube.patch(api("policycopies", "second"), {
      spec: {
        jobOverrides: [{ jobId: "app-00", action: "Recopy", at: ahead }],
        retention: { confirmMassAgingUntil: new Date(Date.now() + 30 * 86_400_000).toISOString() },
      },
    });
    const second = await until(
      "the Recopy refused",
      () => copyObj("second"),
      (o) => ready(o)?.reason === "RecopyInFuture",
    );
    expect(ready(second).message).toContain('Recopy of "app-00" has an "at" in the future');
    const aging = await until(
      "the confirmation refused",
      () => copyObj("second"),
      (o) => /more than 7 days ahead/.test(o.status?.dataAging?.message ?? ""),
    );
    expect(aging.status.dataAging.message).toContain("is not honoured");
    expect((await events("second")).some((e) => e.type === "Warning" && e.reason === "ConfirmationTooFar")).toBe(true);
    await kube.request(
      "PATCH",
      api("policycopies", "second"),
      { spec: { jobOverrides: null, retention: { confirmMassAgingUntil: null } } },
      "application/merge-patch+json",
    );
    await until(
      "second Ready again",
      () => copyObj("second"),
      (o) => ready(o)?.status === "True",
    );

    // A Secret of the user's with the name a client Secret would have: never taken over.
    await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "silver-auxo-client" }, stringData: { mine: "keep" } });
    await kube.create(
      api("storagepolicies"),
      auxo("StoragePolicy", "silver", { primaryCopy: "silver-primary", auxCopySchedule: { enabled: false } }),
    );
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", "silver-primary", { storagePolicy: "silver", library: "disk", encryption: enc }),
    );
    const silver = await until(
      "silver to say why",
      () => kube.get(api("storagepolicies", "silver")),
      (o) => ready(o)?.reason === "ClientSecretConflict",
    );
    expect(ready(silver).message).toContain('Secret "silver-auxo-client" exists and was not made by Auxo');
    const theirs = await kube.get(`/api/v1/namespaces/${ns}/secrets/silver-auxo-client`);
    expect(Object.keys(theirs.data)).toEqual(["mine"]);
    expect(theirs.metadata.ownerReferences).toBeUndefined();
    // A policy whose primaryCopy names another policy's copy gets no client Secret with that copy's credentials.
    await kube.create(
      api("storagepolicies"),
      auxo("StoragePolicy", "bronze", { primaryCopy: "primary", auxCopySchedule: { enabled: false } }),
    );
    await until(
      "bronze refused",
      () => kube.get(api("storagepolicies", "bronze")),
      (o) => ready(o)?.reason === "PrimaryCopyInOtherPolicy",
    );
    await sleep(2000);
    expect(await kube.get(`/api/v1/namespaces/${ns}/secrets/bronze-auxo-client`).catch(() => undefined)).toBeUndefined();
    for (const n of ["silver", "bronze"]) await kube.deleteIfExists(api("storagepolicies", n));
    await kube.deleteIfExists(api("policycopies", "silver-primary"));
  }, 120_000);

  it("backs off a data aging preview that fails, instead of recreating its pod at once", async () => {
    await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "fragile-pw" }, stringData: { password } });
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", "fragile", {
        storagePolicy: "gold",
        library: "disk",
        backups: { mode: "All" },
        encryption: { passwordSecret: { name: "fragile-pw" } },
      }),
    );
    await until(
      "fragile initialised",
      () => copyObj("fragile"),
      (o) => o.status?.repositoryReady === true,
    );
    // Its password changes under it: every read of its repository fails from now on, the preview's too.
    await kube.request(
      "PATCH",
      `/api/v1/namespaces/${ns}/secrets/fragile-pw`,
      { stringData: { password: "not-it" } },
      "application/merge-patch+json",
    );
    await kube.patch(api("policycopies", "fragile"), {
      metadata: { annotations: { "auxo.dev/rescan-requested": new Date().toISOString() } },
    });
    const failing = await until(
      "previews to fail twice",
      () => copyObj("fragile"),
      (o) => (o.status?.dataAging?.previewFailures ?? 0) >= 2,
      90_000,
    );
    const previews = async () =>
      ((await podsOwnedBy(failing.metadata.uid)) as Obj[])
        .filter((p) => p.metadata.name.includes("age-preview"))
        .map((p) => p.metadata.name);
    const seen = new Set(await previews());
    for (let i = 0; i < 20; i++) {
      for (const n of await previews()) seen.add(n);
      await sleep(500);
    }
    // 1 s doubling (the test's retry base): at most a few more pods in 10 s, where the old loop made one every pod's lifetime.
    expect(seen.size).toBeLessThanOrEqual(4);
    await kube.deleteIfExists(api("policycopies", "fragile"));
  }, 150_000);

  it("runs the automatic aux copy of a policy with a 60-character name", async () => {
    const long = `p${"x".repeat(58)}d`;
    expect(long).toHaveLength(60);
    await kube.create(api("storagepolicies"), auxo("StoragePolicy", long, { primaryCopy: "first", auxCopySchedule: { every: "1m" } }));
    await kube.create(api("policycopies"), auxo("PolicyCopy", "first", { storagePolicy: long, library: "disk", encryption: enc }));
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", "next", { storagePolicy: long, library: "disk", backups: { mode: "All" }, encryption: enc }),
    );
    for (const c of ["first", "next"])
      await until(
        `${c} initialised`,
        () => copyObj(c),
        (o) => o.status?.repositoryReady === true,
      );
    const job = { jobId: "long-1", type: "full", status: "completed", client: "app", subclient: "files" } as const;
    restic(
      await hostRepo(ns, long, "first"),
      {},
      "backup",
      "-q",
      "--host",
      "app",
      ...tagsFor(job).flatMap((t) => ["--tag", t]),
      path.join(scratch, "data"),
    );
    // Ask for a scan now, so continuous copying sees the job.
    await kube.patch(api("policycopies", "first"), {
      metadata: { annotations: { "auxo.dev/rescan-requested": new Date().toISOString() } },
    });
    const run = await until(
      "an automatic run to complete",
      async () => ({
        status: ((await kube.get(`${api("auxcopyjobs")}?labelSelector=auxo.dev/trigger%3Dschedule`)).items as Obj[]).find(
          (j) => j.spec.storagePolicy === long && finished(j.status),
        ),
      }),
      (o) => !!o.status,
      150_000,
    );
    expect(run.status.status.phase).toBe("Completed");
    expect(run.status.metadata.name.length).toBeLessThanOrEqual(253);
    expect(jobsOn(await hostRepo(ns, long, "next"))).toEqual(["long-1"]);
    const policy = await kube.get(api("storagepolicies", long));
    expect(ready(policy).status).toBe("True");
    const secret = await kube.get(`/api/v1/namespaces/${ns}/secrets/${policy.status.clientSecret}`);
    expect(secret.metadata.labels["auxo.dev/storage-policy"].length).toBeLessThanOrEqual(63);
  }, 240_000);
});
