// The local world: control plane + local node runner + S3 server, started together for the integration tests
// (vitest global setup) and for `make run`.
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ControlPlane } from "./control-plane.ts";
import { type CsiInfo, CSI_DRIVER, CsiStack } from "./csi-stack.ts";
import { KubeRest } from "./kube-rest.ts";
import { waitFor } from "./net.ts";
import { NodeRunner, unmountUnder } from "./node-runner/runner.ts";
import { S3Server } from "./s3.ts";
import { repoRoot, tools } from "./tools.ts";

/** What a test process needs to reach the world (serialisable; handed to test workers by vitest). */
export interface WorldInfo {
  dir: string;
  controlPlaneDir: string;
  kubeconfig: string;
  server: string;
  nodeName: string;
  auditLog?: string;
  s3: { endpoint: string; accessKey: string; secretKey: string; region: string; dataDir: string };
  csi: CsiInfo;
  pids: Record<string, number>;
}

export interface WorldOptions {
  dir?: string;
  keepDir?: boolean;
  audit?: boolean;
}

const OWNER = "owner.json";

/** A process's pid and kernel start time: a pid alone may be reused. */
function processIdentity(pid: number): { pid: number; start: string } | undefined {
  try {
    // Field 22 of /proc/<pid>/stat, counted after the command name (which may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return { pid, start: stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] as string };
  } catch {
    return undefined;
  }
}

/**
 * A world killed without stopping (SIGKILL, a crashed test run) leaves its driver's bind mounts behind, and its
 * folder in /tmp. Those of worlds whose owning process is gone are unmounted and removed; a folder without an
 * owner record is not ours to judge and stays.
 */
function cleanKilledWorlds(self: string): void {
  const root = os.tmpdir();
  for (const name of readdirSync(root).filter((n) => n.startsWith("auxo-world-"))) {
    const dir = path.join(root, name);
    if (dir === self || !existsSync(path.join(dir, OWNER))) continue;
    let owner: { pid: number; start: string };
    try {
      owner = JSON.parse(readFileSync(path.join(dir, OWNER), "utf8"));
    } catch {
      continue;
    }
    if (processIdentity(owner.pid)?.start === owner.start) continue;
    const unmounted = unmountUnder(dir);
    if (unmounted.length > 0) process.stderr.write(`local world: unmounted ${unmounted.length} mounts left by a killed world in ${dir}\n`);
    rmSync(dir, { recursive: true, force: true });
  }
}

export class World {
  readonly cp: ControlPlane;
  readonly s3: S3Server;
  readonly csi: CsiStack;
  runner?: NodeRunner;
  private runnerClient?: KubeRest;

  readonly dir: string;
  private readonly keepDir: boolean;

  constructor(opts: WorldOptions = {}) {
    this.dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), "auxo-world-"));
    this.keepDir = opts.keepDir ?? false;
    mkdirSync(this.dir, { recursive: true });
    this.cp = new ControlPlane({ dir: path.join(this.dir, "control-plane"), keepDir: opts.keepDir, audit: opts.audit });
    this.s3 = new S3Server({ dir: path.join(this.dir, "s3"), keepDir: opts.keepDir });
    this.csi = new CsiStack(this.cp, path.join(this.dir, "csi"));
  }

  async start(): Promise<WorldInfo> {
    cleanKilledWorlds(this.dir);
    writeFileSync(path.join(this.dir, OWNER), JSON.stringify(processIdentity(process.pid)));
    try {
      await Promise.all([this.cp.start(), this.s3.start()]);
      await Promise.all([this.csi.start(), this.startRunner()]);
    } catch (err) {
      await this.stop();
      throw err;
    }
    return this.info();
  }

  private async startRunner(): Promise<void> {
    const { runner, client } = await startNodeRunner(this.cp, this.publicBin(), { [CSI_DRIVER]: this.csi.socket });
    this.runner = runner;
    this.runnerClient = client;
  }

  /**
   * node and restic copied where non-root pods can run them: the tool cache lives in the home of the user who
   * built it, which other users may not enter (root's is mode 0700).
   */
  private publicBin(): string {
    const bin = path.join(this.dir, "bin");
    mkdirSync(bin, { recursive: true });
    for (const [name, from] of [
      ["node", path.join(tools().nodeBin, "node")],
      ["restic", tools().restic],
    ] as const) {
      copyFileSync(from, path.join(bin, name));
      chmodSync(path.join(bin, name), 0o755);
    }
    chmodSync(this.dir, 0o755);
    return bin;
  }

  info(): WorldInfo {
    // The harness process itself hosts the node runner and its kubelet endpoint.
    const pids: Record<string, number> = { harness: process.pid };
    for (const p of [...this.cp.processes(), ...this.s3.processes(), ...this.csi.processes()]) if (p.pid) pids[p.opts.name] = p.pid;
    return {
      dir: this.dir,
      controlPlaneDir: this.cp.dir,
      kubeconfig: this.cp.kubeconfig,
      server: this.cp.server,
      nodeName: this.runner?.nodeName ?? "",
      auditLog: this.cp.opts.audit ? this.cp.auditLog : undefined,
      s3: {
        endpoint: this.s3.endpoint,
        accessKey: this.s3.accessKey,
        secretKey: this.s3.secretKey,
        region: this.s3.region,
        dataDir: path.join(this.s3.dir, "data"),
      },
      csi: this.csi.info(),
      pids,
    };
  }

  /** Writes info for other processes (tests in workers, `make run` users). Holds the S3 root secret: mode 0600. */
  writeInfo(file: string): void {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(this.info(), null, 2), { mode: 0o600 });
  }

  async stop(): Promise<void> {
    // The runner unpublishes its pods' CSI volumes, so the driver goes after it.
    await this.runner?.stop();
    this.runnerClient?.close();
    await this.csi.stop();
    await Promise.all([this.cp.stop(), this.s3.stop()]);
    if (this.keepDir) return;
    // A volume left published (a hung driver at stop) is unmounted first: removing the folder must not reach
    // through a mount.
    unmountUnder(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A node runner for a control plane, acting as its own user (audit logs and metrics tell its requests from the
 * operator's), running MediaAgent images with the tools in `publicBin`; resolves once the node is schedulable.
 */
export async function startNodeRunner(
  cp: ControlPlane,
  publicBin: string,
  csiDrivers: Record<string, string> = {},
): Promise<{ runner: NodeRunner; client: KubeRest }> {
  await cp.client.create("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
    metadata: { name: "auxo-local-node-runner" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "auxo:node-runner" }],
  });
  const client = KubeRest.fromKubeconfig(cp.userKubeconfig("auxo:node-runner"));
  const runner = new NodeRunner({
    client,
    pki: cp.pki,
    dir: path.join(cp.dir, "node"),
    toolDirs: [
      { root: repoRoot, bin: "bin" },
      { root: publicBin, bin: "." },
    ],
    entrypoints: { "auxo:dev": ["auxo"], "ghcr.io/auxo-dev/auxo:dev": ["auxo"] },
    apiServer: { host: "127.0.0.1", port: cp.apiPort },
    restartBackoffScale: 0.05,
    csiDrivers,
  });
  await runner.start();
  // New nodes carry the not-ready taint until the node-lifecycle controller has seen them Ready.
  const nodePath = `/api/v1/nodes/${runner.nodeName}`;
  await waitFor("the local node to lose its not-ready taint", async () => {
    const node = await cp.client.get(nodePath);
    return (node.spec.taints ?? []).length === 0 ? true : undefined;
  });
  return { runner, client };
}
