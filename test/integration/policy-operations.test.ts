// Policy operations end to end: promotion, Recopy and Use Most Recent Full (docs/operations.md), through the real
// control plane, with the operator, the node runner's MediaAgent pods and real restic repositories on a filesystem
// library. A promotion waits while jobs of the primary are not on the candidate, takes effect once an aux copy brings
// them, re-points the cascade, swaps precedences and sends later aux copies from the new primary; a forced promotion
// names what it leaves behind.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
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
import { admin, freshNamespace, resticAsAgent, world, waitForStatus } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let mgr: Manager;
const scratch = mkdtempSync(path.join(os.tmpdir(), "auxo-promotion-test-"));
const password = "promotion-repository-passphrase";
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const enc = { passwordSecret: { name: "repo-password" } };
const restic = resticAsAgent(scratch, password);

async function hostRepo(copy: string): Promise<string> {
  const pvc = await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/disk`);
  return path.join(world().controlPlaneDir, "node", "claims", ns, `disk-${pvc.metadata.uid}`, ns, "gold", copy);
}

function jobsOn(repo: string): string[] {
  const snaps = JSON.parse(restic(repo, {}, "snapshots", "--json")) as { tags?: string[] }[];
  return snaps.map((s) => (s.tags ?? []).find((t) => t.startsWith("auxo.dev/job="))?.slice("auxo.dev/job=".length) ?? "?").sort();
}

/** The policy's client Secret, once it points at `copy`, as environment variables. */
async function clientEnv(copy: string): Promise<Record<string, string>> {
  return await waitFor(
    `the client Secret to point at ${copy}`,
    async () => {
      const sec = await kube.get(`/api/v1/namespaces/${ns}/secrets/gold-auxo-client`).catch(() => undefined);
      const env = Object.fromEntries(Object.entries(sec?.data ?? {}).map(([k, v]) => [k, Buffer.from(v as string, "base64").toString()]));
      return env.RESTIC_REPOSITORY?.endsWith(`/gold/${copy}`) ? env : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 250 },
  );
}

/**
 * Job ids listed by a plain restic client configured only by a client Secret's environment (RESTIC_REPOSITORY and
 * RESTIC_PASSWORD; no -r, no password file), with the library's volume where the Secret expects it.
 */
async function jobsOnWith(env: Record<string, string>, ...backupPaths: string[]): Promise<string[]> {
  const mount = "/libraries/client/";
  expect(env.RESTIC_REPOSITORY?.startsWith(mount)).toBe(true);
  const pvc = await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/disk`);
  const host = path.join(
    world().controlPlaneDir,
    "node",
    "claims",
    ns,
    `disk-${pvc.metadata.uid}`,
    (env.RESTIC_REPOSITORY as string).slice(mount.length),
  );
  const asProducer = (...args: string[]) =>
    execFileSync(
      "setpriv",
      ["--reuid=65532", "--regid=65532", "--clear-groups", "--", path.join(world().dir, "bin", "restic"), "--no-cache", ...args],
      {
        env: { PATH: process.env.PATH, HOME: scratch, RESTIC_REPOSITORY: host, RESTIC_PASSWORD: env.RESTIC_PASSWORD },
        encoding: "utf8",
      },
    );
  // A producer's backup with that environment alone (a foreign snapshot: a completed full of its host and paths).
  if (backupPaths[0] === "--forget-producer") {
    const ids = (JSON.parse(asProducer("snapshots", "--json", "--host", "producer")) as { id: string }[]).map((x) => x.id);
    asProducer("forget", ...ids);
  } else if (backupPaths.length) asProducer("backup", "-q", "--host", "producer", ...backupPaths);
  const out = asProducer("snapshots", "--json");
  return (JSON.parse(out) as { tags?: string[] }[])
    .map((x) => (x.tags ?? []).find((t) => t.startsWith("auxo.dev/job="))?.slice("auxo.dev/job=".length) ?? "?")
    .sort();
}

let fedCount = 0;
/** A real backup, tagged as a job, into a copy's repository (as a backup producer writing to the primary would). */
async function backup(copy: string, n: number, type: "full" | "incremental" = "incremental"): Promise<string[]> {
  const data = path.join(scratch, "data");
  mkdirSync(data, { recursive: true });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = ++fedCount;
    writeFileSync(path.join(data, `f${k}`), randomBytes(4096));
    execFileSync("chown", ["-R", "65532:65532", data]);
    const job = {
      jobId: `job-${String(k).padStart(2, "0")}`,
      type: k === 1 ? "full" : type,
      status: "completed",
      client: "app",
      subclient: "data",
    } as const;
    const time = new Date(Date.UTC(2026, 10, 1) + k * 3600_000).toISOString().slice(0, 19).replace("T", " ");
    restic(await hostRepo(copy), {}, "backup", "-q", "--host", "app", "--time", time, ...tagsFor(job).flatMap((t) => ["--tag", t]), data);
    ids.push(job.jobId);
  }
  return ids;
}

async function policyStatus(check: (s: Obj) => boolean, what: string, timeoutMs = 120_000): Promise<Obj> {
  return await waitForStatus(kube, api("storagepolicies", "gold"), `policy gold ${what}`, check, { timeoutMs });
}

async function runAuxCopy(name: string, spec: Obj = {}): Promise<Obj> {
  await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", name, { storagePolicy: "gold", ...spec }));
  return await waitFor(
    `${name} to finish`,
    async () => {
      const s = (await kube.get(api("auxcopyjobs", name))).status;
      return ["Completed", "CompletedWithErrors", "Failed", "Killed"].includes(s?.phase) ? s : undefined;
    },
    { timeoutMs: 180_000, intervalMs: 250 },
  );
}

const promotionCondition = (s: Obj) => (s.conditions ?? []).find((c: Obj) => c.type === "Promotion");

async function events(reason: string): Promise<string[]> {
  const list = await kube.get(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=gold,reason=${reason}`);
  return list.items.map((e: Obj) => e.message as string);
}

beforeAll(async () => {
  execFileSync("chown", ["65532:65532", scratch]);
  kube = admin();
  await installCrds(kube);
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "promotion"));
  // As `kubectl create secret generic repo-password --from-file=password=<file>` makes it: the file's newline is in
  // the Secret. The MediaAgents read it from a file, and restic trims it; the client Secret must give producers the same.
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password: `${password}\n` } });
  await kube.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    metadata: { name: "disk" },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  });
  mgr = testManager(world().kubeconfig);
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    probeTimeoutSeconds: 15,
    scanIntervalSeconds: 3600,
    retryBaseMs: 1000,
    autoAuxCopy: false,
  });
  await mgr.start();
  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { persistentVolumeClaim: { claimName: "disk" } } }));
  await kube.create(api("storagepolicies"), auxo("StoragePolicy", "gold", { primaryCopy: "primary" }));
  await kube.create(api("policycopies"), auxo("PolicyCopy", "primary", { storagePolicy: "gold", library: "disk", encryption: enc }));
  // offsite: the synchronous copy to promote, explicit precedence 3; vault: a cascade that names the primary.
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "offsite", { storagePolicy: "gold", library: "disk", precedence: 3, backups: { mode: "All" }, encryption: enc }),
  );
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "vault", {
      storagePolicy: "gold",
      library: "disk",
      sourceCopy: "primary",
      backups: { mode: "All" },
      encryption: enc,
    }),
  );
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "monthly", {
      storagePolicy: "gold",
      library: "disk",
      copyType: "Selective",
      selection: { frequency: "Monthly", full: "First" },
      backups: { mode: "All" },
      encryption: enc,
    }),
  );
  for (const c of ["primary", "offsite", "vault", "monthly"])
    await waitFor(`${c} initialised`, async () => ((await kube.get(api("policycopies", c))).status?.repositoryReady ? true : undefined), {
      timeoutMs: 120_000,
      intervalMs: 300,
    });
}, 300_000);

afterAll(async () => {
  await mgr?.stop();
  await removeNs?.();
  kube?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe("promotion", () => {
  it("waits for uncopied jobs, then promotes, re-points the cascade, swaps precedences and copies from the new primary", async () => {
    const first = await backup("primary", 5);
    expect((await runAuxCopy("run-1")).phase).toBe("Completed");
    const late = await backup("primary", 2); // on the primary only

    // A selective copy cannot become the primary: refused, and the primary in force does not change.
    await kube.patch(api("storagepolicies", "gold"), { spec: { primaryCopy: "monthly" } });
    let s = await policyStatus((x) => x.promotion?.phase === "Refused", "to refuse the selective copy");
    expect(s.primaryCopy).toBe("primary");
    expect(promotionCondition(s)).toMatchObject({ status: "False", reason: "PromotionRefused" });
    expect(s.promotion.message).toContain("only an active Synchronous copy");

    // The synchronous copy lacks the two late jobs: the plan pod counts them and the request waits.
    await kube.patch(api("storagepolicies", "gold"), { spec: { primaryCopy: "offsite" } });
    s = await policyStatus((x) => x.promotion?.to === "offsite" && x.promotion.phase === "Refused", "to refuse for uncopied jobs");
    expect(s.primaryCopy).toBe("primary");
    expect(promotionCondition(s)).toMatchObject({ status: "False", reason: "JobsNotCopied" });
    expect(s.promotion.lastCheck).toMatchObject({ ok: true, notCopied: 2, sample: late });
    expect(s.promotion.message).toContain('2 jobs of "primary" are not on "offsite" yet (job-06, job-07)');
    expect((await events("JobsNotCopied")).length).toBeGreaterThan(0);
    expect((await kube.get(api("policycopies", "primary"))).status.primary).toBe(true);

    // An aux copy brings them; its end makes the count stale, the recount finds none, and the promotion takes effect.
    expect((await runAuxCopy("run-2")).phase).toBe("Completed");
    s = await policyStatus((x) => x.primaryCopy === "offsite", "to promote offsite");
    expect(s.promotion).toBeUndefined();
    expect(s.lastPromotion).toMatchObject({ from: "primary", to: "offsite", forced: false, notCopied: 0, fromPrecedence: 3 });
    expect(promotionCondition(s)).toMatchObject({ status: "True", reason: "Promoted" });
    expect((await events("Promoted"))[0]).toContain('"offsite" is the primary copy now; "primary" is a synchronous secondary');
    s = await policyStatus(
      (x) => x.copies?.[0]?.name === "offsite" && x.primaryRepository?.endsWith("/gold/offsite"),
      "to list offsite first",
    );
    // Precedence: the promoted copy is 1 and the old primary takes its 3; nothing in spec was written.
    expect(s.copies.map((c: Obj) => [c.name, c.precedence, c.primary])).toEqual([
      ["offsite", 1, true],
      ["monthly", 2, false], // created in the same second as vault: by name
      ["primary", 3, false],
      ["vault", 4, false],
    ]);
    expect((await kube.get(api("policycopies", "vault"))).spec.sourceCopy).toBe("primary");
    // The client Secret a backup producer mounts now points at the new primary; a restic client with its
    // environment (the library's volume at /libraries/client) lists the promoted copy's jobs.
    expect(s.clientSecret).toBe("gold-auxo-client");
    const env = await clientEnv("offsite");
    expect(env.RESTIC_PASSWORD).toBe(password); // the Secret's trailing newline trimmed, as restic trims a password file
    expect(await jobsOnWith(env)).toEqual([...first, ...late].sort());
    await waitFor(
      "copy statuses to follow",
      async () => {
        const [p, o] = [(await kube.get(api("policycopies", "primary"))).status, (await kube.get(api("policycopies", "offsite"))).status];
        return p.primary === false && o.primary === true && o.conditions.find((c: Obj) => c.type === "Ready")?.status === "True"
          ? true
          : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );

    // New backups go to the new primary; the next aux copy fills the old primary and the re-pointed cascade from it.
    const after = await backup("offsite", 3);
    const run3 = await runAuxCopy("run-3");
    expect(run3.phase).toBe("Completed");
    const parts = Object.fromEntries(run3.copies.map((c: Obj) => [c.name, c]));
    expect(Object.keys(parts).sort()).toEqual(["monthly", "primary", "vault"]);
    expect(parts.primary).toMatchObject({ source: "offsite", jobsCopied: 3 });
    expect(parts.vault).toMatchObject({ source: "offsite", jobsCopied: 3 });
    const all = [...first, ...late, ...after].sort();
    // Job states on each copy, as the run left them.
    expect(parts.primary.jobStates).toEqual({ ToBeCopied: 0, PartiallyCopied: 0, Available: all.length, DoNotCopy: 0, Bad: 0 });
    await policyStatus((x) => x.copies?.find((c: Obj) => c.name === "vault")?.jobStates?.Available === all.length, "to sum up job states");
    for (const c of ["offsite", "primary", "vault"]) expect(jobsOn(await hostRepo(c))).toEqual(all);

    // A producer that knows only the client Secret backs up to the new primary (its snapshot, without Auxo tags, is
    // removed again so that the next test counts only its own jobs).
    const produced = path.join(scratch, "produced");
    mkdirSync(produced, { recursive: true });
    writeFileSync(path.join(produced, "file"), randomBytes(1024));
    execFileSync("chown", ["-R", "65532:65532", produced]);
    const withProducer = await jobsOnWith(env, produced);
    expect(withProducer.filter((j) => j === "?")).toHaveLength(1);
    expect(jobsOn(await hostRepo("offsite")).filter((j) => j === "?")).toHaveLength(1);
    await jobsOnWith(env, "--forget-producer");
    expect(jobsOn(await hostRepo("offsite"))).toEqual(all);
  }, 300_000);

  it("promotes back only with force while a job of the current primary is not copied, and records what it left behind", async () => {
    const [orphan] = await backup("offsite", 1);
    await kube.patch(api("storagepolicies", "gold"), { spec: { primaryCopy: "primary" } });
    let s = await policyStatus((x) => x.promotion?.phase === "Refused" && x.promotion.to === "primary", "to refuse without force");
    expect(s.promotion.lastCheck).toMatchObject({ notCopied: 1, sample: [orphan] });
    expect(s.primaryCopy).toBe("offsite");

    await kube.patch(api("storagepolicies", "gold"), { spec: { forcePromotionTo: "primary" } });
    s = await policyStatus((x) => x.primaryCopy === "primary", "to promote primary with force");
    expect(s.lastPromotion).toMatchObject({ from: "offsite", to: "primary", forced: true, notCopied: 1 });
    expect(await jobsOnWith(await clientEnv("primary"))).not.toContain(orphan);
    const warning = (await kube.get(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=gold,reason=Promoted,type=Warning`))
      .items;
    expect(warning.map((e: Obj) => e.message)).toEqual([expect.stringContaining('forced: 1 jobs of "offsite" are not on it')]);
    // The job left behind is still on the old primary, which now receives it by aux copy like any secondary.
    expect(jobsOn(await hostRepo("offsite"))).toContain(orphan);
    expect(jobsOn(await hostRepo("primary"))).not.toContain(orphan);
    // Aux copies flow from the primary again: offsite is a target now, and keeps the job it alone holds.
    const run4 = await runAuxCopy("run-4");
    expect(run4.copies.find((c: Obj) => c.name === "offsite")).toMatchObject({ phase: "Completed", source: "primary", jobsCopied: 0 });
    expect(jobsOn(await hostRepo("offsite"))).toContain(orphan);
    expect(jobsOn(await hostRepo("primary"))).not.toContain(orphan);
  }, 300_000);
});

describe("job overrides and run options", () => {
  it("Recopy copies a job again once; Use Most Recent Full sends the newest full to a selective copy", async () => {
    // Left by the promotion tests: primary is the primary again, every copy holds the jobs of the first month.
    const onVault = jobsOn(await hostRepo("vault"));
    expect(onVault).toContain("job-03");
    const events = async () =>
      (await readdir(path.join(`${await hostRepo("vault")}.auxo`, "jobs", "job-03"))).filter((f) => f.includes("-copy-ok-")).length;
    const before = await events();

    // A Recopy needs the time it was asked: the API server says so.
    await expect(
      kube.patch(api("policycopies", "vault"), { spec: { jobOverrides: [{ jobId: "job-03", action: "Recopy" }] } }),
    ).rejects.toThrow(/at \(the time of the request\) is required for Recopy/);
    await kube.patch(api("policycopies", "vault"), {
      spec: { jobOverrides: [{ jobId: "job-03", action: "Recopy", at: new Date().toISOString() }] },
    });
    // A new full in the same month: monthly (first full of the month) would not take it, unless the run asks.
    const [full] = await backup("primary", 1, "full");
    const run = await runAuxCopy("run-5", { copies: ["monthly", "vault"], useMostRecentFull: true });
    expect(run.phase).toBe("Completed");
    const parts = Object.fromEntries(run.copies.map((c: Obj) => [c.name, c]));
    expect(parts.vault).toMatchObject({ jobsCopied: 2 }); // job-03 again, and the new full
    expect(parts.monthly).toMatchObject({ jobsCopied: 1 });
    expect(jobsOn(await hostRepo("monthly"))).toContain(full);
    // Still one snapshot of job-03 on the copy, and one more copy event for it.
    expect(jobsOn(await hostRepo("vault"))).toEqual([...onVault, full].sort());
    expect(await events()).toBe(before + 1);
    restic(await hostRepo("vault"), {}, "check");

    // The request is done: the override can stay in spec without copying the job over and over.
    const again = await runAuxCopy("run-6", { copies: ["vault"] });
    expect(again.copies[0]).toMatchObject({ name: "vault", phase: "Completed", jobsCopied: 0 });
    expect(await events()).toBe(before + 1);
  }, 300_000);

  it("places copy pods by the source copy's MediaAgent settings plus the job's node selector", async () => {
    await kube.patch(api("policycopies", "primary"), { spec: { mediaAgent: { nodeSelector: { "kubernetes.io/os": "linux" } } } });
    await backup("primary", 1);
    // No node has rack r9: the pod is created with both selectors and stays Pending, unscheduled.
    await kube.create(
      api("auxcopyjobs"),
      auxo("AuxCopyJob", "run-7", {
        storagePolicy: "gold",
        copies: ["vault"],
        mediaAgent: { from: "Source", nodeSelector: { "auxo.dev/rack": "r9" } },
      }),
    );
    const pod = await waitFor(
      "the copy pod",
      async () => (await kube.get(`/api/v1/namespaces/${ns}/pods/run-7-vault-1`).catch(() => undefined)) ?? undefined,
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(pod.spec.nodeSelector).toEqual({ "kubernetes.io/os": "linux", "auxo.dev/rack": "r9" });
    expect(pod.spec.nodeName).toBeUndefined();
    // Cancel ends it as Killed and removes the pod.
    await kube.patch(api("auxcopyjobs", "run-7"), { spec: { cancel: true } });
    await waitFor(
      "run-7 killed and its pod gone",
      async () => {
        const st = (await kube.get(api("auxcopyjobs", "run-7"))).status;
        const p = await kube.get(`/api/v1/namespaces/${ns}/pods/run-7-vault-1`).catch(() => undefined);
        return st?.phase === "Killed" && !p ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  }, 120_000);
});
