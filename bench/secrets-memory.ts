// Operator memory against the number of unrelated Secrets in the cluster. The world is the control plane (etcd,
// kube-apiserver, no controller-manager); the operator (testManager + registerControllers, every controller, library
// probes and automatic aux copies off) runs in a child process of its own, so that its memory is not mixed with this
// process's, which creates the Secrets. One namespace holds what the operator works for: an S3 Library with its
// credentials Secret, a StoragePolicy with a primary PolicyCopy and its password Secret (so the library, policycopy
// and storagepolicy controllers read the Secrets they name, and the client Secret is written). Then N Secrets of
// 200 KB each (data as stored: base64) are created in 30 other namespaces; nothing names them.
//   node bench/secrets-memory.ts [secrets=3000] [kib=200]
// Measures, in the operator's process: RSS and V8 heap used after a forced GC, with 0 unrelated Secrets (every
// cache synced, the library Ready, the client Secret written) and with N (once its Secret cache has seen all of them,
// then 5 s more), the objects its Secret caches hold, and the bytes of Secret data among them.
import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { registerControllers } from "../src/controllers/index.ts";
import type { Manager } from "../src/runtime/manager.ts";
import { ControlPlane } from "../test/harness/control-plane.ts";
import { installCrds } from "../test/harness/crds.ts";
import type { Obj } from "../test/harness/kube-rest.ts";
import { sleep, waitFor } from "../test/harness/net.ts";
import { testManager } from "../test/harness/operator-testing.ts";
import { load, pool, secs } from "./lib.ts";

interface Sample {
  rss: number;
  /** The process's peak RSS so far (getrusage maxrss). */
  peakRss: number;
  heap: number;
  /** Objects in the operator's Secret caches (informers on secrets, and the named Secrets it read). */
  cachedSecrets: number;
  /** Bytes of Secret `data` values among them. */
  dataBytes: number;
  synced: boolean;
}

const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;

// ------------------------------------------------------------------ the operator's process

async function operatorProcess(kubeconfig: string): Promise<void> {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const mgr: Manager = testManager(kubeconfig);
  registerControllers(mgr, { agentImage: "auxo:dev", probeLibraries: false, autoAuxCopy: false });
  let synced = false;
  void mgr.start().then(() => (synced = true));
  const sample = (): Sample => {
    // Whatever the version of the code: every informer on secrets (full or metadata-only), and the named cache.
    const internals = mgr as unknown as {
      informers: Map<string, { resource: { plural: string }; list: () => Obj[] }>;
      namedSecrets?: { cached: () => Obj[] };
    };
    const objs = [...internals.informers.values()].filter((i) => i.resource.plural === "secrets").flatMap((i) => i.list());
    objs.push(...(internals.namedSecrets?.cached() ?? []));
    let dataBytes = 0;
    for (const o of objs) for (const v of Object.values((o.data ?? {}) as Record<string, string>)) dataBytes += v.length;
    gc();
    gc();
    const m = process.memoryUsage();
    return { rss: m.rss, peakRss: process.resourceUsage().maxRSS * 1024, heap: m.heapUsed, cachedSecrets: objs.length, dataBytes, synced };
  };
  process.on("message", (msg) => {
    if (msg === "sample") process.send?.(sample());
    if (msg === "stop") void mgr.stop().then(() => process.exit(0));
  });
  process.send?.("ready");
}

// ------------------------------------------------------------------ the bench

async function bench(): Promise<void> {
  const n = Number(process.argv[2] ?? 3000);
  const kib = Number(process.argv[3] ?? 200);
  const NAMESPACES = 30;
  const ns = "bench";
  const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-bench-secrets-"));
  const cp = new ControlPlane({ dir: path.join(dir, "cp"), controllerManager: false });
  const loadBefore = load();
  let child: ReturnType<typeof fork> | undefined;
  try {
    await cp.start();
    const kube = cp.client;
    await installCrds(kube);
    await kube.create("/api/v1/namespaces", { metadata: { name: ns } });
    const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
    const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
    await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: "repo-password" },
      stringData: { password: "p".repeat(32) },
    });
    await kube.create(`/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: "s3-credentials" },
      stringData: { AWS_ACCESS_KEY_ID: "AKIABENCH", AWS_SECRET_ACCESS_KEY: "s".repeat(40) },
    });
    await kube.create(
      api("libraries"),
      auxo("Library", "offsite", {
        s3: { endpoint: "https://s3.example.com", bucket: "backups", credentialsSecret: { name: "s3-credentials" } },
      }),
    );
    await kube.create(api("storagepolicies"), auxo("StoragePolicy", "gold", { primaryCopy: "primary" }));
    await kube.create(
      api("policycopies"),
      auxo("PolicyCopy", "primary", {
        storagePolicy: "gold",
        library: "offsite",
        encryption: { passwordSecret: { name: "repo-password" } },
      }),
    );

    // The operator, in its own process.
    child = fork(import.meta.filename, ["--operator", cp.kubeconfig], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const c = child;
    await new Promise<void>((resolve) => c.once("message", () => resolve()));
    const sample = () =>
      new Promise<Sample>((resolve) => {
        c.once("message", (m) => resolve(m as Sample));
        c.send("sample");
      });
    await waitFor("the operator's caches", async () => ((await sample()).synced ? true : undefined), { timeoutMs: 120_000 });
    await waitFor(
      "the library Ready and the client Secret written",
      async () => {
        const lib = await kube.get(api("libraries", "offsite"));
        const ready = (lib.status?.conditions ?? []).some((x: Obj) => x.type === "Ready" && x.status === "True");
        const client = await kube.get(`/api/v1/namespaces/${ns}/secrets/gold-auxo-client`).catch(() => undefined);
        return ready && client ? true : undefined;
      },
      { timeoutMs: 120_000 },
    );
    await sleep(3000);
    const before = await sample();

    // N unrelated Secrets in other namespaces.
    const namespaces = Array.from({ length: NAMESPACES }, (_, i) => `tenant-${i}`);
    for (const name of namespaces) await kube.create("/api/v1/namespaces", { metadata: { name } });
    const value = (i: number) =>
      // Random bytes: etcd and the API server must not get away with a compressible test.
      (randomBytes(Math.ceil((kib * 1024 * 3) / 4)).toString("base64") + String(i)).slice(0, kib * 1024);
    const t0 = Date.now();
    await pool(
      Array.from({ length: n }, (_, i) => i),
      8,
      async (i) => {
        await kube.create(`/api/v1/namespaces/${namespaces[i % NAMESPACES]}/secrets`, {
          metadata: { name: `unrelated-${i}` },
          type: "Opaque",
          // `data` is base64 as stored; the value is already base64 text, so it is sent as is.
          data: { "blob.bin": value(i) },
        });
      },
    );
    const created = Date.now() - t0;
    // An operator that caches whole Secrets may not keep up (a relist of every Secret outlives its request
    // timeout): after 5 minutes, what it holds is reported as it is.
    const seen = await waitFor(
      "the operator to have seen every Secret",
      async () => ((await sample()).cachedSecrets >= n ? true : undefined),
      {
        timeoutMs: 300_000,
      },
    ).catch(() => false);
    const waited = Date.now() - t0 - created;
    await sleep(5000);
    const after = await sample();
    c.send("stop");
    await new Promise((r) => c.once("exit", r));
    child = undefined;

    const line = (label: string, s: Sample) =>
      `  ${label}: RSS ${mib(s.rss)} (peak so far ${mib(s.peakRss)}), heap used ${mib(s.heap)}; Secret caches hold ${s.cachedSecrets} objects, ${mib(s.dataBytes)} of data`;
    console.log(`operator memory against unrelated Secrets (${n} of ${kib} KiB in ${NAMESPACES} other namespaces):`);
    console.log(line("0 unrelated Secrets", before));
    console.log(line(`${n} unrelated Secrets`, after));
    console.log(`  RSS grew by ${mib(after.rss - before.rss)}, heap by ${mib(after.heap - before.heap)}; created in ${secs(created)}`);
    console.log(
      seen
        ? `  the operator's Secret caches had seen all of them ${secs(waited)} after the last create`
        : `  the operator's Secret caches had NOT seen all of them 5 minutes after the last create (figures as they were)`,
    );
    console.log(`  load average before: ${loadBefore}; after: ${load()} (${os.cpus().length} cores)`);
  } finally {
    child?.kill("SIGKILL");
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--operator") await operatorProcess(process.argv[3] as string);
else await bench();
