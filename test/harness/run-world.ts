// `make run`: the embedded default. Starts the local world (control plane, node runner, S3 server) and the
// operator in the foreground, writes .run/kubeconfig and .run/world.json, and stops everything on Ctrl-C.
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { installCrds } from "./crds.ts";
import { tagsFor } from "../../src/policy/catalog.ts";
import { freePort, sleep, waitFor } from "./net.ts";
import { unmountUnder } from "./node-runner/runner.ts";
import { ManagedProcess } from "./proc.ts";
import { repoRoot } from "./tools.ts";
import { World, type WorldInfo } from "./world.ts";

/** The demo's repository password (generated per run). */
const demoPassword = randomBytes(24).toString("base64url");

/**
 * Feeds the demo's primary copy with a real restic backup of sample data every 20 s, tagged as a job (a full every
 * sixth, incrementals between), so that aux copies to the offsite copy show up in `kubectl get acj -n demo -w`.
 */
async function feedDemo(w: World, info: WorldInfo, stopped: () => boolean): Promise<void> {
  const kube = w.cp.client;
  const copy = await waitFor(
    "the demo's primary repository",
    async () => {
      const c = await kube.get("/apis/auxo.dev/v1alpha1/namespaces/demo/policycopies/primary").catch(() => undefined);
      return c?.status?.repositoryReady ? c : undefined;
    },
    { timeoutMs: 300_000, intervalMs: 1000 },
  );
  const pvc = await kube.get("/api/v1/namespaces/demo/persistentvolumeclaims/local-disk");
  const repo = path.join(info.controlPlaneDir, "node", "claims", "demo", `local-disk-${pvc.metadata.uid}`, "demo", "demo", "primary");
  const data = path.join(runDir, "sample-data");
  mkdirSync(data, { recursive: true });
  const pw = path.join(runDir, "demo-password");
  writeFileSync(pw, demoPassword, { mode: 0o644 });
  process.stderr.write(`feeding ${copy.status.repository} (host ${repo}) with a sample backup every 20 s\n`);
  for (let n = 1; !stopped(); n++) {
    writeFileSync(path.join(data, `part-${n % 12}.bin`), randomBytes(256 << 10));
    execFileSync("chown", ["-R", "65532:65532", data]);
    const job = {
      jobId: `demo-${n}`,
      type: n % 6 === 1 ? "full" : "incremental",
      status: "completed",
      client: "demo-app",
      subclient: "data",
    } as const;
    try {
      // As the MediaAgents' user: repository files are private to it.
      execFileSync(
        "setpriv",
        [
          "--reuid=65532",
          "--regid=65532",
          "--clear-groups",
          "--",
          path.join(w.dir, "bin", "restic"),
          "-r",
          repo,
          "--password-file",
          pw,
          "--no-cache",
          "backup",
          "-q",
          "--host",
          "demo-app",
          ...tagsFor(job).flatMap((t) => ["--tag", t]),
          data,
        ],
        { env: { ...process.env, HOME: runDir }, stdio: ["ignore", "ignore", "pipe"] },
      );
      process.stderr.write(`fed job ${job.jobId} (${job.type}) into demo/primary\n`);
    } catch (err) {
      process.stderr.write(`sample backup ${job.jobId} failed: ${(err as Error).message}\n`);
    }
    await sleep(20_000);
  }
}

/** The demo of examples/local in namespace demo, with what depends on this machine created here. */
async function applyDemo(w: World, info: WorldInfo): Promise<void> {
  const kube = w.cp.client;
  await kube.create("/api/v1/namespaces", { metadata: { name: "demo" } });
  await waitFor("the demo namespace's default service account", async () =>
    (await kube.get("/api/v1/namespaces/demo/serviceaccounts/default").catch(() => undefined)) ? true : undefined,
  );
  await w.s3.createBucket("auxo-demo");
  await kube.create("/api/v1/namespaces/demo/secrets", {
    metadata: { name: "repo-password" },
    stringData: { password: demoPassword },
  });
  await kube.create("/api/v1/namespaces/demo/secrets", {
    metadata: { name: "local-s3-credentials" },
    stringData: { AWS_ACCESS_KEY_ID: info.s3.accessKey, AWS_SECRET_ACCESS_KEY: info.s3.secretKey },
  });
  await kube.create("/apis/auxo.dev/v1alpha1/namespaces/demo/libraries", {
    apiVersion: "auxo.dev/v1alpha1",
    kind: "Library",
    metadata: { name: "local-s3" },
    spec: {
      s3: { endpoint: info.s3.endpoint, bucket: "auxo-demo", region: info.s3.region, credentialsSecret: { name: "local-s3-credentials" } },
    },
  });
  for (const f of ["demo.yaml", "app.yaml"])
    execFileSync("kubectl", [`--kubeconfig=${info.kubeconfig}`, "-n", "demo", "apply", "-f", path.join(repoRoot, "examples/local", f)], {
      stdio: "ignore",
    });
}

const runDir = path.join(repoRoot, ".run");
const worldDir = path.join(runDir, "world");
// A killed `make run` leaves the CSI driver's bind mounts in its folder: unmount before removing anything.
unmountUnder(worldDir);
rmSync(worldDir, { recursive: true, force: true });
mkdirSync(runDir, { recursive: true });

const world = new World({ dir: worldDir, audit: true });
let operator: ManagedProcess | undefined;
let stopping = false;

async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stderr.write("\nstopping the operator and the local world...\n");
  await operator?.stop(10_000);
  await world.stop();
  unmountUnder(worldDir);
  rmSync(worldDir, { recursive: true, force: true });
  rmSync(path.join(runDir, "kubeconfig"), { force: true });
  rmSync(path.join(runDir, "world.json"), { force: true });
  rmSync(path.join(runDir, "sample-data"), { recursive: true, force: true });
  rmSync(path.join(runDir, "demo-password"), { force: true });
  process.stderr.write("stopped; no process is left behind.\n");
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

try {
  const t0 = Date.now();
  const info = await world.start();
  const kubeconfig = path.join(runDir, "kubeconfig");
  copyFileSync(info.kubeconfig, kubeconfig);
  world.writeInfo(path.join(runDir, "world.json"));
  const operatorKubeconfig = world.cp.userKubeconfig("auxo:operator", ["system:masters"]);
  await world.cp.client.create("/api/v1/namespaces", { metadata: { name: "auxo-system" } });
  await installCrds(world.cp.client);
  await applyDemo(world, info);
  const probePort = await freePort();
  operator = new ManagedProcess({
    name: "auxo-operator",
    command: process.execPath,
    args: [
      path.join(repoRoot, "src/main.ts"),
      "operator",
      `--kubeconfig=${operatorKubeconfig}`,
      "--leader-election-namespace=auxo-system",
      `--health-probe-bind-address=127.0.0.1:${probePort}`,
      "--metrics-bind-address=0",
      // The local world is one machine with one user: its node runner serves hostPath and NFS volumes.
      "--allow-host-path-libraries=true",
      "--allow-nfs-libraries=true",
    ],
    logFile: "inherit",
  });
  operator.start();
  process.stderr.write(
    [
      "",
      `Auxo's local world is up (${((Date.now() - t0) / 1000).toFixed(1)} s).`,
      `  kubeconfig:   ${kubeconfig}`,
      `  API server:   ${info.server}`,
      `  node:         ${info.nodeName} (local node runner: pods run as host processes)`,
      `  S3 endpoint:  ${info.s3.endpoint} (credentials in .run/world.json)`,
      `  CSI:          driver ${info.csi.driver}, StorageClass ${info.csi.storageClass}, VolumeSnapshotClass ${info.csi.snapshotClass}`,
      "                faults: node test/harness/csi/fault.ts show (docs/local-world.md)",
      `  operator:     http://127.0.0.1:${probePort}/metrics, /healthz, /readyz`,
      `  logs:         ${path.join(worldDir, "control-plane", "logs")}`,
      "",
      `  export KUBECONFIG=${kubeconfig}`,
      "  kubectl get nodes",
      "  kubectl get auxo -n demo          (examples/local)",
      "  kubectl logs <pod>",
      "  kubectl get acj -n demo -w       (aux copies of the sample backups fed every 20 s)",
      "  kubectl apply -n demo -f examples/local/snapshot.yaml   (a VolumeSnapshot of the app's claim)",
      "  kubectl get volumesnapshot -n demo",
      "  kubectl apply -n demo -f examples/local/restore.yaml    (a claim restored from it; kubectl logs -n demo app-reader)",
      "",
      "Ctrl-C stops everything. Operator log follows.",
      "",
    ].join("\n"),
  );
  feedDemo(world, info, () => stopping).catch((err: unknown) => {
    if (!stopping) process.stderr.write(`the sample backup feeder stopped: ${err instanceof Error ? err.message : String(err)}\n`);
  });
} catch (err) {
  process.stderr.write(`make run failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await shutdown(1);
}
