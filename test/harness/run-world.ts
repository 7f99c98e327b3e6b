// `make run`: the embedded default. Starts the local world (control plane, node runner, S3 server) and the
// operator in the foreground, writes .run/kubeconfig and .run/world.json, and stops everything on Ctrl-C.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { installCrds } from "./crds.ts";
import { freePort, waitFor } from "./net.ts";
import { ManagedProcess } from "./proc.ts";
import { repoRoot } from "./tools.ts";
import { World, type WorldInfo } from "./world.ts";

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
    stringData: { password: randomBytes(24).toString("base64url") },
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
  execFileSync(
    "kubectl",
    [`--kubeconfig=${info.kubeconfig}`, "-n", "demo", "apply", "-f", path.join(repoRoot, "examples/local/demo.yaml")],
    { stdio: "ignore" },
  );
}

const runDir = path.join(repoRoot, ".run");
const worldDir = path.join(runDir, "world");
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
  rmSync(worldDir, { recursive: true, force: true });
  rmSync(path.join(runDir, "kubeconfig"), { force: true });
  rmSync(path.join(runDir, "world.json"), { force: true });
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
      `  operator:     http://127.0.0.1:${probePort}/metrics, /healthz, /readyz`,
      `  logs:         ${path.join(worldDir, "control-plane", "logs")}`,
      "",
      `  export KUBECONFIG=${kubeconfig}`,
      "  kubectl get nodes",
      "  kubectl get auxo -n demo          (examples/local)",
      "  kubectl logs <pod>",
      "",
      "Ctrl-C stops everything. Operator log follows.",
      "",
    ].join("\n"),
  );
} catch (err) {
  process.stderr.write(`make run failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await shutdown(1);
}
