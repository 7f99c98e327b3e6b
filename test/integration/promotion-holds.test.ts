// Holds and bad input through the real control plane, the operator, the node runner's MediaAgent pods and real restic
// repositories (issue 12, items 5, 7 and 8): a copy with a misspelled sourceCopy makes the primary keep every job;
// a promotion's check counts the jobs a selective copy still needs whatever the candidate's `backups` date, and after
// a forced promotion the old primary keeps them; an unknown time zone stops every run of its policy, saying why; a
// tenant's hostPath library aimed at another namespace's data is refused and never mounted.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
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
const scratch = mkdtempSync(path.join(os.tmpdir(), "auxo-holds-test-"));
const password = "holds-repository-passphrase";
const api = (plural: string, name = "", namespace = ns) =>
  `/apis/auxo.dev/v1alpha1/namespaces/${namespace}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const enc = { passwordSecret: { name: "repo-password" } };
const restic = resticAsAgent(scratch, password);
const DAY = 86_400_000;
// The daily run 12 hours away: runs here are asked for, the schedule never fires mid-test.
const agingAt = new Date(Date.now() + 12 * 3600_000).toISOString().slice(11, 16);

async function claimDir(): Promise<string> {
  const pvc = await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/disk`);
  return path.join(world().controlPlaneDir, "node", "claims", ns, `disk-${pvc.metadata.uid}`);
}
const repoOf = async (policy: string, copy: string) => path.join(await claimDir(), ns, policy, copy);
const jobsOn = async (policy: string, copy: string): Promise<string[]> =>
  (JSON.parse(restic(await repoOf(policy, copy), {}, "snapshots", "--json")) as { tags?: string[] }[])
    .map((s) => (s.tags ?? []).find((t) => t.startsWith("auxo.dev/job="))?.slice("auxo.dev/job=".length) ?? "?")
    .sort();

/** A real backup, tagged as a job, straight into a copy's repository (a backup producer). */
async function backup(policy: string, copy: string, jobId: string, type: "full" | "incremental", at: number): Promise<void> {
  const data = path.join(scratch, "data");
  mkdirSync(data, { recursive: true });
  writeFileSync(path.join(data, jobId), randomBytes(4096));
  execFileSync("chown", ["-R", "65532:65532", data]);
  const tags = tagsFor({ jobId, type, status: "completed", client: "app", subclient: "data" }).flatMap((t) => ["--tag", t]);
  const time = new Date(at).toISOString().slice(0, 19).replace("T", " ");
  restic(await repoOf(policy, copy), {}, "backup", "-q", "--host", "app", "--time", time, ...tags, data);
}

async function status(plural: string, name: string, check: (s: Obj) => boolean, what: string, timeoutMs = 120_000): Promise<Obj> {
  return await waitForStatus(kube, api(plural, name), `${name} ${what}`, check, { timeoutMs, intervalMs: 300 });
}
const ready = (s: Obj) => (s.conditions ?? []).find((c: Obj) => c.type === "Ready");

/** Asks for a data aging run of a copy now and waits for it to end; returns its data aging status. */
async function ageNow(copy: string): Promise<Obj> {
  const before = (await kube.get(api("policycopies", copy))).status?.dataAging?.runs ?? 0;
  await kube.patch(api("policycopies", copy), { metadata: { annotations: { "auxo.dev/data-aging-requested": new Date().toISOString() } } });
  const st = await status(
    "policycopies",
    copy,
    (s) => (s.dataAging?.runs ?? 0) > before && ["Idle", "Stopped"].includes(s.dataAging.phase) && !!s.dataAging.lastRunTime,
    "data aging run to end",
    180_000,
  );
  return st.dataAging;
}

async function runAuxCopy(name: string, spec: Obj): Promise<Obj> {
  await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", name, { storagePolicy: "gold", ...spec }));
  return await status(
    "auxcopyjobs",
    name,
    (s) => ["Completed", "CompletedWithErrors", "Failed", "Killed"].includes(s.phase),
    "to finish",
    180_000,
  );
}

const now = Date.now();
// The primary's jobs: a cycle a month ago (full, two incrementals), one ten days ago and a full five days ago. The
// primary's retention (1 day, 1 cycle) ages the oldest cycle.
const jobs: [string, "full" | "incremental", number][] = [
  ["job-01", "full", now - 30 * DAY],
  ["job-02", "incremental", now - 29 * DAY],
  ["job-03", "incremental", now - 28 * DAY],
  ["job-04", "full", now - 10 * DAY],
  ["job-05", "incremental", now - 9 * DAY],
  ["job-06", "full", now - 5 * DAY],
];

beforeAll(async () => {
  execFileSync("chown", ["65532:65532", scratch]);
  kube = admin();
  await installCrds(kube);
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "holds"));
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
  await kube.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    metadata: { name: "disk" },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  });
  mgr = testManager(world().kubeconfig);
  // The operator's defaults for tenancy: hostPath and NFS libraries refused.
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    probeTimeoutSeconds: 15,
    scanIntervalSeconds: 3600,
    retryBaseMs: 1000,
    autoAuxCopy: true,
    dataAging: true,
  });
  await mgr.start();
  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { persistentVolumeClaim: { claimName: "disk" } } }));
  await kube.create(
    api("storagepolicies"),
    auxo("StoragePolicy", "gold", {
      primaryCopy: "primary",
      timeZone: "UTC",
      auxCopySchedule: { enabled: false },
      dataAging: { at: agingAt, maxAgedShare: 80 },
    }),
  );
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "primary", { storagePolicy: "gold", library: "disk", retention: { days: 1, cycles: 1 }, encryption: enc }),
  );
  // offsite takes only the jobs of the last 15 days.
  const since = new Date(now - 15 * DAY).toISOString().slice(0, 10);
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "offsite", {
      storagePolicy: "gold",
      library: "disk",
      backups: { mode: "OnAndAfter", date: since },
      encryption: enc,
    }),
  );
  for (const c of ["primary", "offsite"]) await status("policycopies", c, (s) => s.repositoryReady === true, "initialised");
  for (const [id, type, at] of jobs) await backup("gold", "primary", id, type, at);
}, 300_000);

afterAll(async () => {
  await mgr?.stop();
  await removeNs?.();
  kube?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe("holds", () => {
  it("a copy with a misspelled sourceCopy is not Ready, and the primary keeps every job for it", async () => {
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", "typo", {
        storagePolicy: "gold",
        library: "disk",
        sourceCopy: "primray",
        backups: { mode: "All" },
        encryption: enc,
      }),
    );
    const st = await status("policycopies", "typo", (s) => ready(s)?.status === "False", "not Ready");
    expect(ready(st)).toMatchObject({ reason: "SourceCopyNotFound", message: expect.stringContaining('"primray"') });
    // Without it, the primary's retention (1 day, 1 cycle) would age the older cycle: job-01..03.
    const aging = await ageNow("primary");
    expect(aging).toMatchObject({ phase: "Idle", lastAgedJobs: 0 });
    expect(await jobsOn("gold", "primary")).toEqual(["job-01", "job-02", "job-03", "job-04", "job-05", "job-06"]);
    await kube.delete(api("policycopies", "typo"));
  });

  it("a promotion's check counts the jobs a selective copy still needs, whatever the candidate's backups date", async () => {
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
    await status("policycopies", "monthly", (s) => s.repositoryReady === true, "initialised");
    // offsite gets every job its backups date lets it take; monthly has not been filled yet.
    const run = await runAuxCopy("to-offsite", { copies: ["offsite"] });
    expect(run.phase).toBe("Completed");
    expect(await jobsOn("gold", "offsite")).toEqual(["job-04", "job-05", "job-06"]);
    await kube.patch(api("storagepolicies", "gold"), { spec: { primaryCopy: "offsite" } });
    const st = await status("storagepolicies", "gold", (s) => s.promotion?.phase === "Refused", "promotion refused");
    // The first full of a month ago and the incremental it carries: monthly takes them from the primary, and after
    // the promotion it would take them from offsite, which never had them.
    expect(st.promotion.lastCheck).toMatchObject({ ok: true, notCopied: 2, sample: ["job-01", "job-02"] });
    expect(st.primaryCopy).toBe("primary");
    const cond = (st.conditions as Obj[]).find((c) => c.type === "Promotion");
    expect(cond).toMatchObject({ status: "False", reason: "JobsNotCopied" });
    expect(cond?.message).toContain("job-01, job-02");
  });

  it("after a forced promotion the old primary keeps what the re-pointed selective copy still needs", async () => {
    await kube.patch(api("storagepolicies", "gold"), { spec: { forcePromotionTo: "offsite" } });
    const st = await status("storagepolicies", "gold", (s) => s.primaryCopy === "offsite", "promoted");
    expect(st.lastPromotion).toMatchObject({ from: "primary", to: "offsite", forced: true, notCopied: 2 });
    // The old primary's retention ages its older cycle, except what monthly (now filled from offsite) still needs.
    const aging = await ageNow("primary");
    expect(aging).toMatchObject({ phase: "Idle", lastAgedJobs: 1 });
    expect(await jobsOn("gold", "primary")).toEqual(["job-01", "job-02", "job-04", "job-05", "job-06"]);
  });
});

describe("an unknown time zone", () => {
  it("shows on the policy and stops aux copies, automatic aux copies and data aging, naming the field", async () => {
    await kube.create(
      api("storagepolicies"),
      auxo("StoragePolicy", "paris", { primaryCopy: "p1", timeZone: "Europe/Pariss", auxCopySchedule: { continuous: true } }),
    );
    await kube.create(api("policycopies"), auxo("PolicyCopy", "p1", { storagePolicy: "paris", library: "disk", encryption: enc }));
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", "p2", { storagePolicy: "paris", library: "disk", backups: { mode: "All" }, encryption: enc }),
    );
    const pol = await status("storagepolicies", "paris", (s) => ready(s)?.reason === "InvalidTimeZone", "InvalidTimeZone");
    expect(ready(pol)).toMatchObject({ status: "False", message: expect.stringContaining('spec.timeZone "Europe/Pariss"') });
    for (const c of ["p1", "p2"]) await status("policycopies", c, (s) => s.repositoryReady === true, "initialised");
    // Data aging says why it does not run.
    const p1 = await status("policycopies", "p1", (s) => s.dataAging?.phase === "Waiting", "data aging waiting");
    expect(p1.dataAging.message).toContain("spec.timeZone");
    // A new job on the primary, seen by a scan: continuous copying would start an automatic aux copy at once.
    await backup("paris", "p1", "paris-01", "full", Date.now());
    await kube.patch(api("policycopies", "p1"), { metadata: { annotations: { "auxo.dev/rescan-requested": new Date().toISOString() } } });
    await status("policycopies", "p1", (s) => !!s.newestJob, "scanned");
    // A manual aux copy waits, naming the field, and starts no pod.
    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "paris-now", { storagePolicy: "paris" }));
    const acj = await status("auxcopyjobs", "paris-now", (s) => s.copies?.[0]?.phase === "Waiting", "waiting");
    expect(acj.copies[0].message).toContain('spec.timeZone "Europe/Pariss"');
    await new Promise((r) => setTimeout(r, 5000));
    expect((await kube.get(api("auxcopyjobs", "paris-now"))).status.copies[0].phase).toBe("Waiting");
    const pods = await kube.get(`/api/v1/namespaces/${ns}/pods?labelSelector=auxo.dev/task=copy`);
    expect(pods.items.map((p: Obj) => p.metadata.name)).toEqual([]);
    const auto = await kube.get(`${api("auxcopyjobs")}?labelSelector=auxo.dev/trigger=schedule`);
    expect(auto.items.filter((j: Obj) => j.spec.storagePolicy === "paris").map((j: Obj) => j.metadata.name)).toEqual([]);
    expect(await jobsOn("paris", "p2")).toEqual([]);
  });
});

describe("tenancy", () => {
  it("a tenant's hostPath library aimed at another namespace's data is refused and never mounted", async () => {
    const { name: tenant, remove } = await freshNamespace(kube, "tenant-a");
    try {
      await kube.create(`/api/v1/namespaces/${tenant}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
      // The folder on the node that holds the other namespace's repositories.
      await kube.create(api("libraries", "", tenant), auxo("Library", "steal", { filesystem: { hostPath: { path: await claimDir() } } }));
      await kube.create(
        api("libraries", "", tenant),
        auxo("Library", "nas", { filesystem: { nfs: { server: "nas.example", path: "/exports/backups" } } }),
      );
      await kube.create(
        api("storagepolicies", "", tenant),
        auxo("StoragePolicy", "gold", { primaryCopy: "primary", auxCopySchedule: { enabled: false } }),
      );
      await kube.create(
        api("policycopies", "", tenant),
        auxo("PolicyCopy", "primary", {
          storagePolicy: "gold",
          library: "steal",
          repositoryPath: `${tenant}/gold/primary`,
          encryption: enc,
        }),
      );
      const refused = async (name: string) =>
        await waitFor(
          `library ${name} refused`,
          async () => {
            const st = (await kube.get(api("libraries", name, tenant))).status;
            return st && ready(st)?.status === "False" ? st : undefined;
          },
          { timeoutMs: 30_000 },
        );
      const steal = await refused("steal");
      expect(steal.phase).not.toBe("Ready");
      expect(ready(steal)).toMatchObject({ reason: "HostPathNotAllowed", message: expect.stringContaining("--allow-host-path-libraries") });
      expect(ready(await refused("nas"))).toMatchObject({
        reason: "NFSNotAllowed",
        message: expect.stringContaining("--allow-nfs-libraries"),
      });
      // Give a probe or an init the time it takes elsewhere in this file: no pod of the tenant mounts the node's folders.
      await new Promise((r) => setTimeout(r, 8000));
      const pods = (await kube.get(`/api/v1/namespaces/${tenant}/pods`)).items as Obj[];
      expect(pods.filter((p) => (p.spec.volumes ?? []).some((v: Obj) => v.hostPath || v.nfs)).map((p) => p.metadata.name)).toEqual([]);
      expect((await kube.get(api("policycopies", "primary", tenant))).status?.repositoryReady ?? false).toBe(false);
    } finally {
      await remove();
    }
  });
});
