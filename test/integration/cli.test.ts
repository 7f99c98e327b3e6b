// kubectl auxo end to end (docs/cli.md), run through the real kubectl as a user whose only rights are the Role
// docs/cli.md lists, in one namespace: a gold policy with its primary in S3 (behind a relay this file owns, so that
// its library can go down) and two copies on a filesystem library. `jobs` is checked against plain restic on every
// copy, states included; `auxcopy --wait` ends with the run's exit code (Completed 0, Killed 1); `history` lists the
// aux copy and data aging runs; `restore` gives byte-identical files from a secondary while the primary is down.
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerControllers } from "../../src/controllers/index.ts";
import { type JobMetadata, tagsFor, toCatalogEntry } from "../../src/policy/catalog.ts";
import type { Manager } from "../../src/runtime/manager.ts";
import { ControlPlane } from "../harness/control-plane.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import { Relay } from "../harness/relay.ts";
import { admin, createBucket, freshNamespace, resticAsAgentAsync, world, waitForStatus } from "../harness/testing.ts";
import { repoRoot, tools } from "../harness/tools.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let mgr: Manager;
let relay: Relay;
let userKubeconfig: string;
const scratch = mkdtempSync(path.join(os.tmpdir(), "auxo-cli-test-"));
const password = "kubectl-auxo-passphrase";
const bucket = `cli-${randomBytes(3).toString("hex")}`;
const restic = resticAsAgentAsync(scratch, password);
const s3env = () => ({ AWS_ACCESS_KEY_ID: world().s3.accessKey, AWS_SECRET_ACCESS_KEY: world().s3.secretKey });
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const enc = { passwordSecret: { name: "repo-password" } };

/** kubectl auxo as the namespace's user: exit code, stdout, stderr. */
async function kubectlAuxo(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    PATH: [path.join(repoRoot, "bin"), tools().nodeBin, process.env.PATH].join(path.delimiter),
    HOME: scratch,
    KUBECONFIG: userKubeconfig,
  };
  return await new Promise((resolve) => {
    execFile(tools().kubectl, ["auxo", ...args], { env, encoding: "utf8", maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

async function hostPath(claim: string, ...p: string[]): Promise<string> {
  const pvc = await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/${claim}`);
  return path.join(world().controlPlaneDir, "node", "claims", ns, `${claim}-${pvc.metadata.uid}`, ...p);
}
const primaryRepo = () => `s3:${world().s3.endpoint}/${bucket}/${ns}/gold/primary`;

/** Job ids on a copy, read with plain restic. */
async function jobsOn(copy: string): Promise<string[]> {
  const [repo, env] = copy === "primary" ? [primaryRepo(), s3env()] : [await hostPath("disk", ns, "gold", copy), {}];
  const snaps = JSON.parse(await restic(repo, env, "snapshots", "--json")) as Obj[];
  return snaps.map((s) => toCatalogEntry(s as never).jobId).sort();
}

// The jobs fed to the primary: September's two fulls (a monthly copy takes the first) and their incrementals,
// October's full and incremental, and one failed job no copy takes. Each job's folder content is kept for restore.
const JOBS: (JobMetadata & { time: string })[] = [
  { jobId: "sep-full", type: "full", status: "completed", time: "2026-09-01 01:00:00" },
  { jobId: "sep-inc", type: "incremental", status: "completed", time: "2026-09-02 01:00:00" },
  { jobId: "sep-full-2", type: "full", status: "completed", time: "2026-09-15 01:00:00" },
  { jobId: "oct-full", type: "full", status: "completed", time: "2026-10-01 01:00:00" },
  { jobId: "oct-inc", type: "incremental", status: "completedWithErrors", time: "2026-10-02 01:00:00" },
  { jobId: "oct-failed", type: "incremental", status: "failed", time: "2026-10-03 01:00:00" },
].map((j) => ({ ...j, client: "db", subclient: "pgdata" }) as JobMetadata & { time: string });
const contents = new Map<string, Map<string, Buffer>>();

const copyStatus = (name: string, check: (s: Obj) => boolean, what: string, timeoutMs = 120_000) =>
  waitForStatus(kube, api("policycopies", name), `${name} ${what}`, check, { timeoutMs, intervalMs: 300 });

beforeAll(async () => {
  execFileSync("chown", ["65532:65532", scratch]);
  kube = admin();
  await installCrds(kube);
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "cli"));
  await createBucket(bucket);
  relay = new Relay(Number(new URL(world().s3.endpoint).port));
  await relay.open();
  const s3 = world().s3;
  // The user: the Role docs/cli.md gives, in this namespace only.
  await kube.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
    metadata: { name: "auxo-cli" },
    rules: [
      {
        apiGroups: ["auxo.dev"],
        resources: ["storagepolicies", "policycopies", "libraries", "snapvaults", "auxcopyjobs"],
        verbs: ["get", "list"],
      },
      { apiGroups: ["auxo.dev"], resources: ["auxcopyjobs"], verbs: ["create"] },
      { apiGroups: [""], resources: ["pods"], verbs: ["get", "create", "delete"] },
      { apiGroups: [""], resources: ["pods/log"], verbs: ["get"] },
      { apiGroups: [""], resources: ["persistentvolumeclaims"], verbs: ["get"] },
    ],
  });
  await kube.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
    metadata: { name: "auxo-cli" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "auxo-cli" },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "backup-admin" }],
  });
  userKubeconfig = ControlPlane.attach(world().controlPlaneDir, world().server).userKubeconfig("backup-admin");

  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
    metadata: { name: "s3" },
    stringData: { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey },
  });
  for (const claim of ["disk", "target"])
    await kube.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
      metadata: { name: claim },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
    });
  mgr = testManager(world().kubeconfig);
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    probeTimeoutSeconds: 5,
    scanIntervalSeconds: 3600,
    retryBaseMs: 1000,
    progressIntervalMs: 300,
    autoAuxCopy: false,
    dataAging: true,
  });
  await mgr.start();
  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { persistentVolumeClaim: { claimName: "disk" } } }));
  await kube.create(
    api("libraries"),
    auxo("Library", "objects", {
      s3: { endpoint: `http://127.0.0.1:${relay.port}`, bucket, credentialsSecret: { name: "s3" } },
      probeInterval: "2s",
    }),
  );
  const at = new Date(Date.now() + 12 * 3600_000).toISOString().slice(11, 16);
  await kube.create(api("storagepolicies"), auxo("StoragePolicy", "gold", { primaryCopy: "primary", timeZone: "UTC", dataAging: { at } }));
  const keep = { days: 400, cycles: 1 };
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "primary", { storagePolicy: "gold", library: "objects", retention: keep, encryption: enc }),
  );
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "offsite", {
      storagePolicy: "gold",
      library: "disk",
      backups: { mode: "All" },
      retention: keep,
      encryption: enc,
      jobOverrides: [{ jobId: "sep-full-2", action: "DoNotCopy" }],
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
      retention: keep,
      encryption: enc,
    }),
  );
  for (const c of ["primary", "offsite", "monthly"]) await copyStatus(c, (s) => s.repositoryReady === true, "initialised");

  // Feed the primary: each job changes the folder (new, changed and removed files), as a database's files would.
  const data = path.join(scratch, "pgdata");
  mkdirSync(data, { recursive: true });
  for (const [i, j] of JOBS.entries()) {
    writeFileSync(path.join(data, `base-${i}.dat`), randomBytes(256 << 10));
    writeFileSync(path.join(data, "pg_control"), randomBytes(8192));
    if (i === 3) rmSync(path.join(data, "base-0.dat"));
    mkdirSync(path.join(data, "wal"), { recursive: true });
    writeFileSync(path.join(data, "wal", `seg-${i}`), randomBytes(64 << 10));
    execFileSync("chown", ["-R", "65532:65532", data]);
    contents.set(j.jobId, readTree(data));
    const tags = tagsFor(j).flatMap((t) => ["--tag", t]);
    await restic(primaryRepo(), s3env(), "backup", "-q", "--host", j.client, "--time", j.time, ...tags, data);
  }
}, 300_000);

afterAll(async () => {
  await mgr?.stop();
  await relay?.cut();
  await removeNs?.();
  kube?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** Every file under a folder, by relative path. */
function readTree(dir: string, base = dir, out = new Map<string, Buffer>()): Map<string, Buffer> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) readTree(p, base, out);
    else out.set(path.relative(base, p), readFileSync(p));
  }
  return out;
}

interface Listing {
  copies: { name: string; primary: boolean; states: Record<string, number>; error?: string }[];
  jobs: { jobId: string; type: string; status: string; client: string; subclient: string; states: Record<string, string> }[];
}
const jobsIn = (l: Listing, copy: string, state: string) =>
  l.jobs
    .filter((j) => j.states[copy] === state)
    .map((j) => j.jobId)
    .sort();

describe("kubectl auxo", () => {
  it("lists every job with its state on each copy, as plain restic shows the copies", async () => {
    const r = await kubectlAuxo("jobs", "gold", "-n", ns, "-o", "json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const l = JSON.parse(r.stdout) as Listing;
    expect(l.copies.map((c) => c.name).sort()).toEqual(["monthly", "offsite", "primary"]);
    // Newest first, with the job's own metadata.
    expect(l.jobs.map((j) => j.jobId)).toEqual(JOBS.map((j) => j.jobId).reverse());
    expect(l.jobs.find((j) => j.jobId === "oct-inc")).toMatchObject({
      type: "incremental",
      status: "completedWithErrors",
      client: "db",
      subclient: "pgdata",
    });
    expect(jobsIn(l, "primary", "Available")).toEqual(await jobsOn("primary"));
    expect(await jobsOn("offsite")).toEqual([]);
    // Nothing copied yet: every valid job is To Be Copied on offsite but the one it must not take; the monthly copy
    // takes each month's first full and the incrementals after it, not September's second full.
    expect(jobsIn(l, "offsite", "ToBeCopied")).toEqual(["oct-full", "oct-inc", "sep-full", "sep-inc"]);
    expect(jobsIn(l, "offsite", "DoNotCopy")).toEqual(["sep-full-2"]);
    expect(jobsIn(l, "monthly", "ToBeCopied")).toEqual(["oct-full", "oct-inc", "sep-full", "sep-inc"]);
    expect(l.jobs.find((j) => j.jobId === "sep-full-2")?.states.monthly).toBeUndefined();
    expect(l.jobs.find((j) => j.jobId === "oct-failed")?.states).toEqual({ primary: "Available" });

    // The table reads like kubectl get; --copy, --state and --since narrow it.
    const t = await kubectlAuxo("jobs", "gold", "-n", ns, "--copy", "monthly", "--state", "ToBeCopied", "--since", "2026-10-01");
    expect(t.code).toBe(0);
    const lines = t.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^JOB\s+TYPE\s+STATUS\s+CLIENT\s+SUBCLIENT\s+START\s+AGE\s+SIZE\s+MONTHLY$/);
    expect(lines.slice(1).map((x) => x.split(/\s+/)[0])).toEqual(["oct-inc", "oct-full"]);
    expect(lines[1]).toMatch(
      /^oct-inc\s+incremental\s+completedWithErrors\s+db\s+pgdata\s+2026-10-02T01:00:00Z\s+\d+d\s+\S+\s+ToBeCopied$/,
    );
  }, 120_000);

  it("starts an aux copy and follows it to its end: exit code 0 for Completed, and jobs shows what restic shows", async () => {
    const r = await kubectlAuxo("auxcopy", "gold", "-n", ns, "--copy", "offsite", "--wait");
    expect(r.stderr).toMatch(/auxcopyjob\.auxo\.dev\/gold-manual-\w+ created/);
    expect(r.stderr).toMatch(/: Completed/);
    expect(r.code).toBe(0);
    expect(await jobsOn("offsite")).toEqual(["oct-full", "oct-inc", "sep-full", "sep-inc"]);
    const l = JSON.parse((await kubectlAuxo("jobs", "gold", "-n", ns, "-o", "json")).stdout) as Listing;
    expect(jobsIn(l, "offsite", "Available")).toEqual(await jobsOn("offsite"));
    expect(jobsIn(l, "offsite", "DoNotCopy")).toEqual(["sep-full-2"]);
    expect(jobsIn(l, "monthly", "ToBeCopied")).toEqual(["oct-full", "oct-inc", "sep-full", "sep-inc"]);
    expect(l.copies.find((c) => c.name === "offsite")?.states).toEqual({ Available: 4, DoNotCopy: 1 });
    // The plugin's pods are gone: it cleans up after itself.
    const pods = (await kube.get(`/api/v1/namespaces/${ns}/pods?labelSelector=auxo.dev/started-by%3Dkubectl-auxo`)).items as Obj[];
    expect(pods.map((p) => p.metadata.name)).toEqual([]);
  }, 180_000);

  it("lists the aux copy and data aging runs, newest first", async () => {
    const before = (await kube.get(api("policycopies", "offsite"))).status?.dataAging?.runs ?? 0;
    await kube.patch(api("policycopies", "offsite"), {
      metadata: { annotations: { "auxo.dev/data-aging-requested": new Date().toISOString() } },
    });
    await copyStatus(
      "offsite",
      (s) => (s.dataAging?.runs ?? 0) > before && s.dataAging.phase === "Idle" && !!s.dataAging.lastRunTime,
      "data aging run",
    );
    const r = await kubectlAuxo("history", "gold", "-n", ns, "-o", "json");
    expect(r.code).toBe(0);
    const runs = (JSON.parse(r.stdout) as { runs: Obj[] }).runs;
    const acj = runs.filter((x) => x.kind === "AuxCopy");
    expect(acj).toHaveLength(1);
    expect(acj[0]).toMatchObject({ copies: "offsite", phase: "Completed", jobs: 4 });
    expect(acj[0]?.durationSeconds).toBeGreaterThanOrEqual(0);
    const aging = runs.filter((x) => x.kind === "DataAging");
    expect(aging).toEqual([expect.objectContaining({ name: "offsite#1", copies: "offsite", phase: "Completed", jobs: 0 })]);
    const t = await kubectlAuxo("history", "gold", "-n", ns);
    expect(t.stdout.split("\n")[0]).toMatch(/^KIND\s+NAME\s+COPIES\s+PHASE\s+START\s+END\s+DURATION\s+JOBS\s+BYTES\s+ERRORS$/);
  }, 180_000);

  it("restores a job byte for byte from a secondary while the primary's library is down, and auxcopy --wait exits 1 for a killed run", async () => {
    await relay.cut();
    await waitForStatus(kube, api("libraries", "objects"), "objects Unreachable", (s) => s.phase === "Unreachable", {
      timeoutMs: 60_000,
      intervalMs: 300,
    });
    const r = await kubectlAuxo("restore", "gold", "oct-inc", "-n", ns, "--to-pvc", "target", "--path", "restored/pgdata");
    expect(r.stderr).toMatch(/copy primary: skipped, library "objects" is Unreachable/);
    expect(r.stdout).toMatch(/restored job oct-inc from copy offsite: \d+ files/);
    expect(r.code).toBe(0);
    const got = readTree(await hostPath("target", "restored", "pgdata"));
    const want = contents.get("oct-inc") as Map<string, Buffer>;
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [f, b] of want) expect(got.get(f)?.equals(b), f).toBe(true);

    // A job no reachable copy holds: a clear failure naming each copy tried.
    const none = await kubectlAuxo("restore", "gold", "sep-full-2", "-n", ns, "--to-pvc", "target");
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(
      /sep-full-2 could not be restored from any copy .*primary: skipped.*offsite: job sep-full-2 is not on this copy.*monthly: job sep-full-2 is not on this copy/,
    );

    // An aux copy from the unreachable primary waits; cancelled, it ends Killed and the plugin exits 1.
    const waiting = kubectlAuxo("auxcopy", "gold", "-n", ns, "--copy", "monthly", "--wait");
    const name = await waitFor("the aux copy job", async () => {
      const items = (await kube.get(api("auxcopyjobs"))).items as Obj[];
      return items.find((j) => j.spec.copies?.[0] === "monthly")?.metadata.name as string | undefined;
    });
    await kube.request("PATCH", api("auxcopyjobs", name), { spec: { cancel: true } }, "application/merge-patch+json");
    const k = await waiting;
    expect(k.stderr).toMatch(/: Killed/);
    expect(k.code).toBe(1);
  }, 240_000);

  it("answers with the API server's words where the user has no rights", async () => {
    const r = await kubectlAuxo("jobs", "gold", "-n", "default");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/forbidden: .*"backup-admin" cannot get resource "storagepolicies"/);
  });
});
