// Data aging end to end through the real control plane: the operator's dataaging controller, MediaAgent `age` pods
// run by the node runner, real restic repositories on a filesystem library and on the S3 server. Two years of jobs for
// two subclients, three copies with different rules. The breaker trips, the primary holds everything while the copy
// after it is unreachable, each copy then holds exactly the jobs its retention keeps (read back with plain restic),
// and a restore works after the prune.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerControllers } from "../../src/controllers/index.ts";
import { type CatalogEntry, type JobMetadata, tagsFor, toCatalogEntry } from "../../src/policy/catalog.ts";
import { decideRetention, type DownstreamCopy } from "../../src/policy/retention.ts";
import { type CopyRules, planCopy } from "../../src/policy/selection.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { freePort, waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import { admin, createBucket, freshNamespace, resticAsAgent, world, waitForStatus } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let mgr: Manager;
const scratch = mkdtempSync(path.join(os.tmpdir(), "auxo-data-aging-test-"));
const password = "data-aging-repository-passphrase";
const bucket = "data-aging";
const tz = "Europe/Paris";
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const enc = { passwordSecret: { name: "repo-password" } };
const s3env = () => ({ AWS_ACCESS_KEY_ID: world().s3.accessKey, AWS_SECRET_ACCESS_KEY: world().s3.secretKey });
const restic = resticAsAgent(scratch, password);

const rules: Record<string, { retention: Obj; copy: CopyRules }> = {
  primary: { retention: { days: 30, cycles: 1 }, copy: {} },
  offsite: { retention: { days: 90, cycles: 2 }, copy: { copyType: "Synchronous", backups: { mode: "All" } } },
  monthly: {
    retention: { days: 365, cycles: 1 },
    copy: { copyType: "Selective", selection: { frequency: "Monthly", full: "First" }, backups: { mode: "All" }, timeZone: tz },
  },
};

const repoOf = async (copy: string): Promise<{ repo: string; env: Record<string, string> }> => {
  if (copy === "offsite") return { repo: `s3:${world().s3.endpoint}/${bucket}/${ns}/gold/offsite`, env: s3env() };
  const pvc = await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/disk`);
  return { repo: path.join(world().controlPlaneDir, "node", "claims", ns, `disk-${pvc.metadata.uid}`, ns, "gold", copy), env: {} };
};
async function catalogOf(copy: string): Promise<CatalogEntry[]> {
  const { repo, env } = await repoOf(copy);
  return (JSON.parse(restic(repo, env, "snapshots", "--json")) as Obj[])
    .map((s) => toCatalogEntry(s as never))
    .sort((a, b) => a.startTime.localeCompare(b.startTime));
}
const ids = (es: CatalogEntry[]) => es.map((e) => e.jobId).sort();

/** What the copy's retention ages now, with the copies filled from it as they are (the pure rules, unit-tested). */
async function expectedAged(copy: string, downstream: string[]): Promise<string[]> {
  const catalog = await catalogOf(copy);
  const ds: DownstreamCopy[] = [];
  for (const d of downstream) {
    const theirs = await catalogOf(d);
    const on = new Set(theirs.map((e) => e.originalId));
    const plan = planCopy(catalog, theirs, { ...rules[d]?.copy, deferDays: 0 }, { now: Date.now() + 400 * 86_400_000 });
    ds.push({
      name: d,
      needs: new Set(plan.toCopy.map((e) => e.jobId)),
      has: new Set(catalog.filter((e) => on.has(e.originalId)).map((e) => e.jobId)),
    });
  }
  return [...decideRetention({ catalog, retention: rules[copy]?.retention, now: Date.now(), timeZone: tz, downstream: ds }).aged].sort();
}

async function copyStatus(name: string, check: (s: Obj) => boolean, what: string, timeoutMs = 180_000): Promise<Obj> {
  return await waitForStatus(kube, api("policycopies", name), `${name} ${what}`, check, {
    timeoutMs,
    intervalMs: 300,
    show: (s) => s?.dataAging,
  });
}

/** Asks for a run now and waits for it to end; returns the copy's data aging status. */
async function ageNow(copy: string): Promise<Obj> {
  const before = (await kube.get(api("policycopies", copy))).status?.dataAging?.runs ?? 0;
  await kube.patch(api("policycopies", copy), { metadata: { annotations: { "auxo.dev/data-aging-requested": new Date().toISOString() } } });
  const st = await copyStatus(
    copy,
    (s) => (s.dataAging?.runs ?? 0) > before && ["Idle", "Stopped"].includes(s.dataAging.phase) && !!s.dataAging.lastRunTime,
    "data aging run to end",
  );
  return st.dataAging;
}

let newest: { job: string; sha: string } = { job: "", sha: "" };
// The daily run at a wall time 12 hours away, so that the schedule never fires during the test (runs here are asked for).
const agingAt = new Date(Date.now() + 12 * 3600_000).toLocaleTimeString("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit" });

beforeAll(async () => {
  execFileSync("chown", ["65532:65532", scratch]);
  kube = admin();
  await installCrds(kube);
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "aging"));
  await createBucket(bucket);
  const s3 = world().s3;
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
    metadata: { name: "s3" },
    stringData: { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey },
  });
  await kube.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    metadata: { name: "disk" },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "2Gi" } } },
  });
  mgr = testManager(world().kubeconfig);
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    probeTimeoutSeconds: 10,
    scanIntervalSeconds: 3600,
    retryBaseMs: 1000,
    autoAuxCopy: false,
    dataAging: true,
  });
  await mgr.start();
  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { persistentVolumeClaim: { claimName: "disk" } } }));
  await kube.create(
    api("libraries"),
    auxo("Library", "objects", { s3: { endpoint: s3.endpoint, bucket, credentialsSecret: { name: "s3" } }, probeInterval: "2s" }),
  );
  await kube.create(
    api("storagepolicies"),
    auxo("StoragePolicy", "gold", { primaryCopy: "primary", timeZone: tz, dataAging: { maxAgedShare: 50, at: agingAt } }),
  );
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "primary", { storagePolicy: "gold", library: "disk", retention: rules.primary?.retention, encryption: enc }),
  );
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "offsite", {
      storagePolicy: "gold",
      library: "objects",
      backups: { mode: "All" },
      retention: rules.offsite?.retention,
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
      retention: rules.monthly?.retention,
      encryption: enc,
    }),
  );
  for (const c of ["primary", "offsite", "monthly"]) await copyStatus(c, (s) => s.repositoryReady === true, "initialised", 120_000);

  // Two years of jobs every two weeks for two subclients: app has a full every 4th job, db every 6th.
  const { repo } = await repoOf("primary");
  const now = Date.now();
  for (const sub of ["app", "db"]) {
    const data = path.join(scratch, sub);
    mkdirSync(data, { recursive: true });
    for (let k = 0; k < 52; k++) {
      const time = now - (52 - k) * 14 * 86_400_000 + (sub === "db" ? 3600_000 : 0);
      const job: JobMetadata = {
        jobId: `${sub}-${String(k).padStart(2, "0")}`,
        type: k % (sub === "app" ? 4 : 6) === 0 ? "full" : "incremental",
        status: "completed",
        client: "web",
        subclient: sub,
      };
      const content = randomBytes(4096);
      writeFileSync(path.join(data, `${job.jobId}.bin`), content);
      execFileSync("chown", ["-R", "65532:65532", data]);
      const stamp = new Date(time).toISOString().slice(0, 19).replace("T", " ");
      restic(repo, {}, "backup", "-q", "--host", "web", "--time", stamp, ...tagsFor(job).flatMap((t) => ["--tag", t]), data);
      if (sub === "app") newest = { job: job.jobId, sha: createHash("sha256").update(content).digest("hex") };
    }
  }
  // Fill the copies after the primary.
  await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "fill", { storagePolicy: "gold" }));
  let fill: Obj | undefined;
  await waitFor(
    "the fill run",
    async () => {
      fill = (await kube.get(api("auxcopyjobs", "fill"))).status;
      return ["Completed", "CompletedWithErrors", "Failed", "Killed"].includes(fill?.phase) ? true : undefined;
    },
    { timeoutMs: 240_000, intervalMs: 500 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; status: ${JSON.stringify(fill)}`);
  });
  expect(fill?.phase).toBe("Completed");
}, 600_000);

afterAll(async () => {
  await mgr?.stop();
  await removeNs?.();
  kube?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe("data aging", () => {
  it("previews the next daily run in status, and its breaker verdict", async () => {
    const st = await copyStatus(
      "primary",
      (s) => s.dataAging?.preview?.catalogTime === s.lastScanTime && s.dataAging.preview.jobs > 0,
      "preview",
    );
    // Daily at 12:00 in the policy's zone, and the preview is of that run.
    expect(new Date(st.dataAging.nextRunTime).toLocaleTimeString("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit" })).toBe(
      agingAt,
    );
    expect(st.dataAging.preview.at).toBe(st.dataAging.nextRunTime);
    expect(st.dataAging.preview.breakerWouldStop).toBe(true); // 30 days of two years is far more than 50%
  });

  it("stops at the mass-deletion breaker: a condition-like phase, a Warning event, nothing deleted", async () => {
    const before = ids(await catalogOf("primary"));
    const st = await ageNow("primary");
    expect(st.phase).toBe("Stopped");
    expect(st.message).toMatch(/would age \d+ of 104 jobs .* more than the 50%/);
    const cond = (await kube.get(api("policycopies", "primary"))).status.conditions;
    expect(cond.find((c: Obj) => c.type === "DataAging")).toMatchObject({ status: "False", reason: "MassDeletion" });
    expect(cond.find((c: Obj) => c.type === "Ready")).toMatchObject({ status: "True" }); // the copy itself is fine
    const events = await kube.get(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=primary,reason=MassDeletion`);
    expect(events.items.length).toBe(1);
    expect(ids(await catalogOf("primary"))).toEqual(before);
  });

  it("holds every job of the primary while the copy after it is unreachable, even when confirmed", async () => {
    await kube.patch(api("policycopies", "primary"), {
      spec: { retention: { confirmMassAgingUntil: new Date(Date.now() + 3600_000).toISOString() } },
    });
    const closed = await freePort();
    await kube.patch(api("libraries", "objects"), { spec: { s3: { endpoint: `http://127.0.0.1:${closed}` } } });
    await waitFor(
      "offsite's library to be unreachable",
      async () => ((await kube.get(api("libraries", "objects"))).status?.phase === "Unreachable" ? true : undefined),
      {
        timeoutMs: 60_000,
        intervalMs: 300,
      },
    );
    const before = ids(await catalogOf("primary"));
    const st = await ageNow("primary");
    expect(st).toMatchObject({ phase: "Idle", lastAgedJobs: 0, lastReclaimedBytes: 0 });
    expect(st.message).toContain('held every job for "offsite", which cannot be read now'); // and says why
    const cond = (await kube.get(api("policycopies", "primary"))).status.conditions;
    expect(cond.find((c: Obj) => c.type === "DataAging")).toMatchObject({ status: "True", reason: "Enabled" });
    expect(ids(await catalogOf("primary"))).toEqual(before);
  });

  it("ages each copy by its own rules once the copy is back: exactly the expected jobs stay, and restores work", async () => {
    await kube.patch(api("libraries", "objects"), { spec: { s3: { endpoint: world().s3.endpoint } } });
    await waitFor(
      "offsite's library back",
      async () => ((await kube.get(api("libraries", "objects"))).status?.phase === "Ready" ? true : undefined),
      {
        timeoutMs: 60_000,
        intervalMs: 300,
      },
    );
    // The library's endpoint changed twice: the copy's repository is checked again before anything relies on it.
    const back = await waitFor(
      "offsite's repository checked again at its location",
      async () => {
        const c = await kube.get(api("policycopies", "offsite"));
        return c.status?.repositoryReady && c.status.repositoryLocation ? c : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 300 },
    );
    expect(back.status.repositoryLocation).toBe(`s3:${new URL(world().s3.endpoint).host}/${bucket}//${ns}/gold/offsite`);
    for (const c of ["offsite", "monthly"])
      await kube.patch(api("policycopies", c), {
        spec: { retention: { confirmMassAgingUntil: new Date(Date.now() + 3600_000).toISOString() } },
      });
    for (const [copy, downstream] of [
      ["primary", ["offsite", "monthly"]],
      ["offsite", []],
      ["monthly", []],
    ] as const) {
      const catalog = ids(await catalogOf(copy));
      const aged = await expectedAged(copy, [...downstream]);
      expect(aged.length).toBeGreaterThan(0);
      const st = await ageNow(copy);
      expect(st).toMatchObject({ phase: "Idle", lastAgedJobs: aged.length });
      expect(st.lastReclaimedBytes).toBeGreaterThan(0);
      expect(ids(await catalogOf(copy))).toEqual(catalog.filter((j) => !aged.includes(j)));
      // Jobs younger than the copy's days are never aged.
      const days = (rules[copy]?.retention.days as number) * 86_400_000;
      for (const e of await catalogOf(copy)) if (Date.now() - Date.parse(e.startTime) < days) expect(aged).not.toContain(e.jobId);
    }
    const policy = await kube.get(api("storagepolicies", "gold"));
    expect(Date.parse(policy.status.lastDataAgingTime)).toBeGreaterThan(Date.now() - 600_000);

    // The primary still restores its newest job byte for byte after the prune, and passes a full check.
    const { repo } = await repoOf("primary");
    restic(repo, {}, "check", "--read-data");
    const snap = (await catalogOf("primary")).find((e) => e.jobId === newest.job) as CatalogEntry;
    const out = path.join(scratch, "restore");
    restic(repo, {}, "restore", snap.snapshotId, "--target", out);
    const file = path.join(out, scratch, "app", `${newest.job}.bin`);
    expect(createHash("sha256").update(readFileSync(file)).digest("hex")).toBe(newest.sha);
    const metrics = await mgr.metrics.registry.metrics();
    expect(metrics).toMatch(
      new RegExp(`auxo_data_aging_runs_total\\{namespace="${ns}",policy="gold",copy="primary",result="stopped"\\} 1`),
    );
  });
});
