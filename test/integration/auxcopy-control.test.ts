// Controlling a running aux copy end to end: suspend and resume, cancel, a library outage in the middle of a run, and
// the events a queued job leaves. A policy with a primary on a filesystem library, two filesystem copies and one S3
// copy whose library reaches the world's S3 server through a TCP relay this file owns (the outage cuts the relay,
// never the shared server). Real MediaAgent pods copy through the node runner; every outcome is read back from the
// destination repositories with the plain restic CLI.
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
import { kstatus } from "../harness/kstatus.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { sleep, waitFor } from "../harness/net.ts";
import { testManager } from "../harness/operator-testing.ts";
import { Relay } from "../harness/relay.ts";
import { admin, createBucket, freshNamespace, resticAsAgent, world, waitForStatus } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let mgr: Manager;
const scratch = mkdtempSync(path.join(os.tmpdir(), "auxo-acj-control-test-"));
const password = "aux-copy-control-passphrase";
const bucket = "acj-control";
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const enc = { passwordSecret: { name: "repo-password" } };
const s3env = () => ({ AWS_ACCESS_KEY_ID: world().s3.accessKey, AWS_SECRET_ACCESS_KEY: world().s3.secretKey });
const restic = resticAsAgent(scratch, password);
const finished = (s: Obj) => ["Completed", "CompletedWithErrors", "Failed", "Killed"].includes(s.phase);
const merge = (p: string, body: Obj) => kube.request("PATCH", p, body, "application/merge-patch+json");

let relay: Relay;

/** Job ids on a repository, read with plain restic, sorted (a job copied twice shows twice). */
function jobsOn(repo: string, env: Record<string, string> = {}): string[] {
  const snaps = JSON.parse(restic(repo, env, "snapshots", "--json")) as { tags?: string[] }[];
  return snaps.map((s) => (s.tags ?? []).find((t) => t.startsWith("auxo.dev/job="))?.slice("auxo.dev/job=".length) ?? "?").sort();
}

async function hostRepo(...p: string[]): Promise<string> {
  const pvc = await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/disk`);
  return path.join(world().controlPlaneDir, "node", "claims", ns, `disk-${pvc.metadata.uid}`, ...p);
}

/** The S3 copy, read straight from the S3 server (not through the relay, so also during the outage). */
const remoteRepo = () => `s3:${world().s3.endpoint}/${bucket}/${ns}/ctl/remote`;

async function acjStatus(name: string, check: (s: Obj) => boolean, what: string, timeoutMs = 120_000): Promise<Obj> {
  return await waitForStatus(kube, api("auxcopyjobs", name), `auxcopyjob ${name} ${what}`, check, { timeoutMs, intervalMs: 200 });
}

/** Copying to its one copy, and some but far from all jobs done: the moment to interfere. */
const midRun = (s: Obj) => {
  const c = s.copies?.[0];
  return s.phase === "Running" && c?.phase === "Running" && c.jobsCopied >= 2 && c.jobsCopied <= c.jobsSelected - 8;
};

async function podsOf(acj: string): Promise<Obj[]> {
  return (await kube.get(`/api/v1/namespaces/${ns}/pods?labelSelector=auxo.dev/auxcopyjob%3D${acj}`)).items;
}

async function eventsOf(name: string): Promise<Obj[]> {
  return (await kube.get(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=${name}`)).items;
}

// Jobs big and many enough that copying them takes several seconds.
const JOBS = 24;
const fed: string[] = [];

beforeAll(async () => {
  execFileSync("chown", ["65532:65532", scratch]);
  kube = admin();
  await installCrds(kube);
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "acjctl"));
  await createBucket(bucket);
  relay = new Relay(Number(new URL(world().s3.endpoint).port));
  await relay.open();
  const s3 = world().s3;
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
    metadata: { name: "s3" },
    stringData: { AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey },
  });
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
  });
  await mgr.start();
  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { persistentVolumeClaim: { claimName: "disk" } } }));
  await kube.create(
    api("libraries"),
    auxo("Library", "objects", {
      s3: { endpoint: `http://127.0.0.1:${relay.port}`, bucket, credentialsSecret: { name: "s3" } },
    }),
  );
  await kube.create(
    api("storagepolicies"),
    auxo("StoragePolicy", "ctl", { primaryCopy: "primary", timeZone: "UTC", auxCopySchedule: { enabled: false } }),
  );
  await kube.create(api("policycopies"), auxo("PolicyCopy", "primary", { storagePolicy: "ctl", library: "disk", encryption: enc }));
  for (const [name, library] of [
    ["second", "disk"],
    ["third", "disk"],
    ["remote", "objects"],
  ] as const)
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", name, { storagePolicy: "ctl", library, backups: { mode: "All" }, encryption: enc }),
    );
  for (const c of ["primary", "second", "third", "remote"])
    await waitFor(`${c} initialised`, async () => ((await kube.get(api("policycopies", c))).status?.repositoryReady ? true : undefined), {
      timeoutMs: 120_000,
      intervalMs: 300,
    });

  // A full and incrementals, each adding a few MiB of fresh data.
  const primary = await hostRepo(ns, "ctl", "primary");
  const data = path.join(scratch, "data");
  mkdirSync(data, { recursive: true });
  for (let i = 0; i < JOBS; i++) {
    writeFileSync(path.join(data, `blob${i}`), randomBytes(5 << 20));
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
  await removeNs?.();
  kube?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe("aux copy control", () => {
  it("suspends a running copy (its pod goes, nothing more lands) and resumes it to copy every job exactly once", async () => {
    const target = await hostRepo(ns, "ctl", "second");
    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "pause", { storagePolicy: "ctl", copies: ["second"], streams: 1 }));
    await acjStatus("pause", midRun, "copying");
    await merge(api("auxcopyjobs", "pause"), { spec: { suspend: true } });
    const suspended = await acjStatus("pause", (s) => s.phase === "Suspended", "suspended", 60_000);
    expect(suspended.reason).toBe("Suspended");
    expect(suspended.copies[0]).toMatchObject({ name: "second", phase: "Suspended" }); // no part shows Running without a pod
    // The controller stops the MediaAgent: its pod goes.
    await waitFor("the suspended job's pod to go", async () => ((await podsOf("pause")).length === 0 ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    const before = jobsOn(target);
    expect(before.length).toBeGreaterThan(0);
    expect(before.length).toBeLessThan(JOBS);
    await sleep(4000);
    expect(jobsOn(target)).toEqual(before); // nothing landed while suspended
    expect((await kube.get(api("auxcopyjobs", "pause"))).status.phase).toBe("Suspended");

    await merge(api("auxcopyjobs", "pause"), { spec: { suspend: false } });
    const st = await acjStatus("pause", finished, "to finish after resume", 180_000);
    expect(st.phase).toBe("Completed");
    // The run's count is exact across the suspend: a job restic saved as its pod was stopped counts too.
    expect(st.copies[0]).toMatchObject({ name: "second", phase: "Completed", jobsCopied: JOBS });
    expect(jobsOn(target)).toEqual(fed); // each job exactly once
    restic(target, {}, "check");
  }, 300_000);

  it("cancels a running copy: Killed, its pod gone, what it copied stays valid, and a new run copies only the rest", async () => {
    const target = await hostRepo(ns, "ctl", "third");
    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "stop", { storagePolicy: "ctl", copies: ["third"], streams: 1 }));
    await acjStatus("stop", midRun, "copying");
    await merge(api("auxcopyjobs", "stop"), { spec: { cancel: true } });
    const killed = await acjStatus("stop", finished, "to end", 60_000);
    expect(killed).toMatchObject({ phase: "Killed", reason: "Cancelled" });
    expect(killed.copies[0]).toMatchObject({ name: "third", phase: "Killed" });
    expect(killed.completionTime).toBeTruthy();
    await waitFor("the cancelled job's pod to go", async () => ((await podsOf("stop")).length === 0 ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    expect((await eventsOf("stop")).some((e) => e.reason === "Killed")).toBe(true);

    // What the cancelled run copied is there, valid, and only whole jobs.
    restic(target, {}, "check");
    const kept = jobsOn(target);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(JOBS);
    expect(new Set(kept).size).toBe(kept.length);
    expect(fed).toEqual(expect.arrayContaining(kept));

    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "stop-rest", { storagePolicy: "ctl", copies: ["third"] }));
    const rest = await acjStatus("stop-rest", finished, "to finish", 180_000);
    expect(rest.phase).toBe("Completed");
    expect(rest.copies[0].jobsCopied).toBe(JOBS - kept.length);
    expect(jobsOn(target)).toEqual(fed); // each exactly once in total
    restic(target, {}, "check");
  }, 300_000);

  it("parks a copy as Waiting while its S3 library is unreachable and completes it once the library is back", async () => {
    // Probe the S3 library often, so the outage is seen soon.
    await merge(api("libraries", "objects"), { spec: { probeInterval: "2s" } });
    try {
      await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "outage", { storagePolicy: "ctl", copies: ["remote"], streams: 1 }));
      await acjStatus("outage", midRun, "copying");
      await relay.cut();
      const phases = new Set<string>();
      const waiting = await acjStatus(
        "outage",
        (s) => {
          phases.add(s.phase);
          return s.phase === "Waiting" || finished(s);
        },
        "waiting for the library",
        90_000,
      );
      expect(waiting.phase).toBe("Waiting");
      expect(waiting.reason).toBe("ResourcesUnavailable");
      expect(waiting.copies[0].message).toBe('library "objects" is Unreachable');
      const lib = await kube.get(api("libraries", "objects"));
      expect(lib.status.phase).toBe("Unreachable");
      expect(lib.status.message).toContain("the repository's storage cannot be reached");
      // Nothing reaches the S3 copy while its library is down; what is there is whole jobs.
      const during = jobsOn(remoteRepo(), s3env());
      expect(during.length).toBeLessThan(JOBS);
      expect(new Set(during).size).toBe(during.length);

      await relay.open();
      const st = await acjStatus(
        "outage",
        (s) => {
          phases.add(s.phase);
          return finished(s);
        },
        "to finish once the library is back",
        180_000,
      );
      expect(st.phase).toBe("Completed");
      expect([...phases]).not.toContain("Failed");
      expect(st.copies[0]).toMatchObject({ name: "remote", phase: "Completed", jobsCopied: JOBS });
      expect(jobsOn(remoteRepo(), s3env())).toEqual(fed); // each job exactly once
      restic(remoteRepo(), s3env(), "check");
    } finally {
      await relay.open().catch(() => undefined);
      await merge(api("libraries", "objects"), { spec: { probeInterval: "5m" } });
    }
  }, 300_000);

  it("records an event when a job is held by an operation window, and when it queues behind a conflicting job", async () => {
    const h = new Date().getUTCHours();
    const hhmm = (x: number) => `${String((x + 24) % 24).padStart(2, "0")}:00`;
    const window = { name: "maintenance", operations: ["AuxCopy"], days: [], start: hhmm(h - 1), end: hhmm(h + 2) };
    await merge(api("storagepolicies", "ctl"), { spec: { operationWindows: [window] } });
    // Names in creation order: two jobs created in the same second go first by name.
    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "events-1", { storagePolicy: "ctl", copies: ["second"] }));
    const held = await acjStatus("events-1", (s) => s.phase === "Queued", "queued");
    expect(held.reason).toBe("OperationWindow");
    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "events-2", { storagePolicy: "ctl", copies: ["second"] }));
    const behind = await acjStatus("events-2", (s) => s.phase === "Queued", "queued");
    expect(behind.reason).toBe("ConflictingJob");

    const windowEvent = await waitFor("the window event", async () =>
      (await eventsOf("events-1")).find((e) => e.reason === "OperationWindow"),
    );
    expect(windowEvent.type).toBe("Normal");
    expect(windowEvent.message).toMatch(/^copy "second": operation window "maintenance" until /);
    const queuedEvent = await waitFor("the queued event", async () => (await eventsOf("events-2")).find((e) => e.reason === "Queued"));
    expect(queuedEvent.type).toBe("Normal");
    expect(queuedEvent.message).toBe('copy "second": queued behind auxcopyjob events-1, which copies to "second"');

    // The window goes: the first runs, the second follows it; neither was queued again.
    await merge(api("storagepolicies", "ctl"), { spec: { operationWindows: [] } });
    expect((await acjStatus("events-1", finished, "to finish")).phase).toBe("Completed");
    expect((await acjStatus("events-2", finished, "to finish")).phase).toBe("Completed");
    const first = await eventsOf("events-1");
    const second = await eventsOf("events-2");
    expect(first.filter((e) => e.reason === "OperationWindow").map((e) => e.count)).toEqual([1]);
    expect(first.some((e) => e.reason === "Queued")).toBe(false);
    expect(second.filter((e) => e.reason === "Queued").map((e) => e.count)).toEqual([1]);
    expect(second.some((e) => e.reason === "OperationWindow")).toBe(false);
    for (const events of [first, second]) expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(["Started", "Completed"]));
  }, 180_000);

  it("keeps Ready and kstatus with the phase: in progress while suspended or running, Current once Completed, Failed once killed", async () => {
    const job = async (name: string) => kube.get(api("auxcopyjobs", name));
    const verdict = (o: Obj) => kstatus(o as { metadata: Obj });
    const condition = (o: Obj, type: string) => (o.status?.conditions ?? []).find((c: Obj) => c.type === type);
    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "ready-1", { storagePolicy: "ctl", copies: ["second"], suspend: true }));
    await acjStatus("ready-1", (s) => s.phase === "Suspended", "suspended");
    const suspended = await job("ready-1");
    expect(verdict(suspended)).toBe("InProgress");
    expect(condition(suspended, "Ready")).toMatchObject({ status: "False", reason: "Suspended" });
    expect(condition(suspended, "Reconciling")).toMatchObject({ status: "True", reason: "Suspended" });

    await merge(api("auxcopyjobs", "ready-1"), { spec: { suspend: false } });
    const seen: string[] = [];
    const done = await waitFor(
      "ready-1 to complete and be Current",
      async () => {
        const o = await job("ready-1");
        seen.push(`${o.status?.phase}:${verdict(o)}`);
        return finished(o.status ?? {}) && verdict(o) === "Current" ? o : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 100 },
    );
    expect(done.status.phase).toBe("Completed");
    expect(condition(done, "Ready")).toMatchObject({ status: "True", reason: "Completed" });
    // Never Current before it completed.
    expect(seen.filter((s) => s.endsWith(":Current") && !s.startsWith("Completed:"))).toEqual([]);

    await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "ready-2", { storagePolicy: "ctl", copies: ["second"], suspend: true }));
    await acjStatus("ready-2", (s) => s.phase === "Suspended", "suspended");
    await merge(api("auxcopyjobs", "ready-2"), { spec: { cancel: true } });
    const killed = await waitFor("ready-2 to be Failed for kstatus", async () => {
      const o = await job("ready-2");
      return verdict(o) === "Failed" ? o : undefined;
    });
    expect(killed.status).toMatchObject({ phase: "Killed", reason: "Cancelled" });
    expect(condition(killed, "Ready")).toMatchObject({ status: "False", reason: "Cancelled" });
    expect(condition(killed, "Stalled")).toMatchObject({ status: "True", reason: "Cancelled" });
  }, 60_000);
});
