// A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver (client-cert auth, RBAC, service-account
// tokens) and kube-controller-manager (garbage collection, namespaces, service accounts), in the manner of
// controller-runtime's envtest (docs/local-world.md says what runs and how it is built).

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import * as yaml from "js-yaml";
import { isNotFound, KubeRest } from "./kube-rest.ts";
import { freePort, waitFor } from "./net.ts";
import { Pki } from "./pki.ts";
import { ManagedProcess } from "./proc.ts";
import { tools } from "./tools.ts";

export interface ControlPlaneOptions {
  /** Folder for data, certificates, kubeconfigs and logs; a fresh temporary folder when absent. */
  dir?: string;
  /** Keep `dir` after stop() (make run keeps it for inspection; tests remove it). */
  keepDir?: boolean;
  /** Write the API server's audit log (metadata level, every request) to `<dir>/logs/audit.log`. */
  audit?: boolean;
  /** Run kube-controller-manager (garbage collection and friends). On by default. */
  controllerManager?: boolean;
}

function kubeconfigYaml(server: string, caPem: string, user: Record<string, string>, name: string): string {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return yaml.dump({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "auxo-local", cluster: { server, "certificate-authority-data": b64(caPem) } }],
    users: [{ name, user }],
    contexts: [{ name: "auxo-local", context: { cluster: "auxo-local", user: name, namespace: "default" } }],
    "current-context": "auxo-local",
  });
}

async function httpOk(url: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const mod = url.startsWith("https") ? https : http;
    const req = mod.get(url, { rejectUnauthorized: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
  });
}

export class ControlPlane {
  readonly dir: string;
  readonly logDir: string;
  readonly opts: ControlPlaneOptions;
  pki!: Pki;
  etcdPort = 0;
  apiPort = 0;
  kcmPort = 0;
  private etcd?: ManagedProcess;
  private apiserver?: ManagedProcess;
  private kcm?: ManagedProcess;
  private admin?: KubeRest;
  private kubeconfigs = 0;
  private readonly extra: ManagedProcess[] = [];

  constructor(opts: ControlPlaneOptions = {}) {
    this.opts = opts;
    this.dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), "auxo-cp-"));
    this.logDir = path.join(this.dir, "logs");
  }

  /**
   * A handle on a control plane another process started (the test workers attach to the shared world's), for
   * minting kubeconfigs with its CA. It cannot start or stop anything.
   */
  static attach(dir: string, server: string): ControlPlane {
    const cp = new ControlPlane({ dir, keepDir: true });
    cp.pki = Pki.open(path.join(dir, "pki"));
    cp.apiPort = Number(new URL(server).port);
    cp.admin = KubeRest.fromKubeconfig(cp.kubeconfig);
    return cp;
  }

  get server(): string {
    return `https://127.0.0.1:${this.apiPort}`;
  }

  /** Admin kubeconfig (system:masters). */
  get kubeconfig(): string {
    return path.join(this.dir, "admin.kubeconfig");
  }

  get auditLog(): string {
    return path.join(this.logDir, "audit.log");
  }

  /** A client with admin rights. */
  get client(): KubeRest {
    if (!this.admin) throw new Error("control plane not started");
    return this.admin;
  }

  async start(): Promise<void> {
    mkdirSync(this.logDir, { recursive: true });
    this.pki = Pki.create(path.join(this.dir, "pki"));
    this.etcdPort = await freePort();
    this.apiPort = await freePort();
    this.kcmPort = await freePort();
    try {
      await this.startEtcd();
      this.pki.server("apiserver");
      this.pki.client("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ["system:masters"]);
      await this.startApiServer();
      this.writeKubeconfig(this.kubeconfig, "admin", ["system:masters"]);
      this.admin = KubeRest.fromKubeconfig(this.kubeconfig);
      await waitFor("the default namespace", async () => ((await this.client.get("/api/v1/namespaces/default")) ? true : undefined));
      if (this.opts.controllerManager !== false) await this.startControllerManager();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startEtcd(): Promise<void> {
    const peer = await freePort();
    const ep = `http://127.0.0.1:${this.etcdPort}`;
    const pp = `http://127.0.0.1:${peer}`;
    this.etcd = new ManagedProcess({
      name: "etcd",
      command: tools().etcd,
      args: [
        "--name=auxo0",
        `--data-dir=${path.join(this.dir, "etcd")}`,
        `--listen-client-urls=${ep}`,
        `--advertise-client-urls=${ep}`,
        `--listen-peer-urls=${pp}`,
        `--initial-advertise-peer-urls=${pp}`,
        `--initial-cluster=auxo0=${pp}`,
        "--listen-metrics-urls=",
        "--unsafe-no-fsync=true",
        "--auto-compaction-retention=1",
        "--quota-backend-bytes=2147483648",
        "--log-level=warn",
      ],
      logFile: path.join(this.logDir, "etcd.log"),
    });
    this.etcd.start();
    const etcd = this.etcd;
    await waitFor("etcd /health", async () => {
      etcd.assertRunning();
      return (await httpOk(`${ep}/health`)) || undefined;
    });
  }

  private apiServerArgs(port = this.apiPort): string[] {
    const pki = this.pki;
    const p = (f: string) => path.join(pki.dir, f);
    const args = [
      `--etcd-servers=http://127.0.0.1:${this.etcdPort}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${port}`,
      "--advertise-address=127.0.0.1",
      "--endpoint-reconciler-type=none",
      `--tls-cert-file=${p("apiserver.crt")}`,
      `--tls-private-key-file=${p("apiserver.key")}`,
      `--client-ca-file=${pki.ca.cert}`,
      "--authorization-mode=RBAC",
      `--service-account-issuer=https://127.0.0.1:${this.apiPort}`,
      `--service-account-key-file=${pki.saPub}`,
      `--service-account-signing-key-file=${pki.saKey}`,
      "--service-cluster-ip-range=10.0.0.0/24",
      "--allow-privileged=true",
      // Logs and `kubectl logs` go to the local node runner's kubelet endpoint on 127.0.0.1.
      `--kubelet-client-certificate=${p("apiserver-kubelet-client.crt")}`,
      `--kubelet-client-key=${p("apiserver-kubelet-client.key")}`,
      "--kubelet-preferred-address-types=InternalIP",
      "--max-requests-inflight=0",
      "--max-mutating-requests-inflight=0",
      "--enable-priority-and-fairness=false",
      "--profiling=false",
    ];
    if (this.opts.controllerManager === false) args.push("--disable-admission-plugins=ServiceAccount");
    if (this.opts.audit && port === this.apiPort) {
      const policy = path.join(this.dir, "audit-policy.yaml");
      writeFileSync(policy, "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n");
      args.push(`--audit-policy-file=${policy}`, `--audit-log-path=${this.auditLog}`, "--audit-log-mode=blocking");
    }
    return args;
  }

  private async startApiServer(): Promise<void> {
    this.apiserver = await this.launchApiServer(this.apiPort, "kube-apiserver");
  }

  /**
   * A second API server on the same etcd, for tests that must change objects while the first one is down (the
   * operator's API server restarts, the cluster does not stand still). Returns its admin kubeconfig.
   */
  async startSecondApiServer(): Promise<{ kubeconfig: string; stop: () => Promise<void> }> {
    const port = await freePort();
    const proc = await this.launchApiServer(port, `kube-apiserver-${port}`);
    this.extra.push(proc);
    const kubeconfig = path.join(this.dir, `admin-${port}.kubeconfig`);
    const pair = this.clientPems(this.pki.client(`admin-${port}`, "admin", ["system:masters"]));
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    writeFileSync(
      kubeconfig,
      kubeconfigYaml(
        `https://127.0.0.1:${port}`,
        this.pki.caPem(),
        { "client-certificate-data": b64(pair.cert), "client-key-data": b64(pair.key) },
        "admin",
      ),
      { mode: 0o600 },
    );
    return { kubeconfig, stop: () => proc.stop() };
  }

  /** Compacts etcd's history up to its current revision: watches from older resourceVersions then get 410. */
  compactEtcd(): number {
    const endpoints = `--endpoints=http://127.0.0.1:${this.etcdPort}`;
    const status = JSON.parse(execFileSync(tools().etcdctl, [endpoints, "endpoint", "status", "-w", "json"], { encoding: "utf8" }));
    const revision: number = status[0].Status.header.revision;
    execFileSync(tools().etcdctl, [endpoints, "compact", String(revision)], { stdio: "ignore" });
    return revision;
  }

  private async launchApiServer(port: number, name: string): Promise<ManagedProcess> {
    const apiserver = new ManagedProcess({
      name,
      command: tools().kubeApiserver,
      args: this.apiServerArgs(port),
      logFile: path.join(this.logDir, `${name}.log`),
    });
    apiserver.start();
    const probe = new KubeRest({
      server: `https://127.0.0.1:${port}`,
      ca: this.pki.caPem(),
      ...this.clientPems(this.pki.client("readyz-probe", "readyz-probe", ["system:masters"])),
    });
    try {
      await waitFor(
        "kube-apiserver /readyz",
        async () => {
          apiserver.assertRunning();
          return (await probe.request<string>("GET", "/readyz")) === "ok" ? true : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 250 },
      );
    } finally {
      probe.close();
    }
    return apiserver;
  }

  private clientPems(pair: { cert: string; key: string }): { cert: string; key: string } {
    return { cert: readFileSync(pair.cert, "utf8"), key: readFileSync(pair.key, "utf8") };
  }

  private async startControllerManager(): Promise<void> {
    const kubeconfig = path.join(this.dir, "kube-controller-manager.kubeconfig");
    this.writeKubeconfig(kubeconfig, "system:kube-controller-manager", []);
    this.kcm = new ManagedProcess({
      name: "kube-controller-manager",
      command: tools().kubeControllerManager,
      args: [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${this.kcmPort}`,
        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        `--root-ca-file=${this.pki.ca.cert}`,
        `--service-account-private-key-file=${this.pki.saKey}`,
        "--use-service-account-credentials=true",
        "--leader-elect=false",
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--profiling=false",
      ],
      logFile: path.join(this.logDir, "kube-controller-manager.log"),
    });
    this.kcm.start();
    const kcm = this.kcm;
    await waitFor("kube-controller-manager /healthz", async () => {
      kcm.assertRunning();
      return (await httpOk(`https://127.0.0.1:${this.kcmPort}/healthz`)) || undefined;
    });
  }

  /**
   * Writes a kubeconfig that authenticates as `user` (member of `groups`) with a client certificate signed by the
   * cluster CA. RBAC tests use it to act as any user.
   */
  writeKubeconfig(file: string, user: string, groups: string[]): string {
    // File names carry the pid: test workers attached to the same PKI must not overwrite each other's keys.
    const pair = this.clientPems(this.pki.client(`user-${process.pid}-${++this.kubeconfigs}`, user, groups));
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    writeFileSync(
      file,
      kubeconfigYaml(this.server, this.pki.caPem(), { "client-certificate-data": b64(pair.cert), "client-key-data": b64(pair.key) }, user),
      { mode: 0o600 },
    );
    return file;
  }

  /** A kubeconfig for an arbitrary user, in the control plane's folder. */
  userKubeconfig(user: string, groups: string[] = []): string {
    const safe = user.replace(/[^a-zA-Z0-9_.-]/g, "_");
    return this.writeKubeconfig(path.join(this.dir, `${safe}-${this.kubeconfigs + 1}.kubeconfig`), user, groups);
  }

  /** A kubeconfig with a bound token of a service account (TokenRequest API), as a pod would hold. */
  async serviceAccountKubeconfig(namespace: string, name: string, expirationSeconds = 3600): Promise<string> {
    const sa = `/api/v1/namespaces/${namespace}/serviceaccounts/${name}`;
    try {
      await this.client.get(sa);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.client.create(`/api/v1/namespaces/${namespace}/serviceaccounts`, { metadata: { name } });
    }
    const tr = await this.client.create(`${sa}/token`, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: { expirationSeconds },
    });
    const file = path.join(this.dir, `sa-${namespace}-${name}-${++this.kubeconfigs}.kubeconfig`);
    writeFileSync(
      file,
      kubeconfigYaml(this.server, this.pki.caPem(), { token: tr.status.token }, `system:serviceaccount:${namespace}:${name}`),
      {
        mode: 0o600,
      },
    );
    return file;
  }

  /** Stops the API server and starts it again on the same port (etcd keeps the data), for watch-recovery tests. */
  async restartApiServer(downMs = 0): Promise<void> {
    await this.apiserver?.stop();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.startApiServer();
  }

  /** Stops the API server without starting it again; call startApiServerAgain() to bring it back. */
  async stopApiServer(): Promise<void> {
    await this.apiserver?.stop();
  }

  async startApiServerAgain(): Promise<void> {
    await this.startApiServer();
  }

  /** Stops everything in reverse order; safe to call more than once and after a failed start. */
  async stop(): Promise<void> {
    this.admin?.close();
    for (const p of [this.kcm, ...this.extra, this.apiserver, this.etcd]) await p?.stop();
    if (!this.opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Every process of the control plane, for tests that inspect them. */
  processes(): ManagedProcess[] {
    return [this.etcd, this.apiserver, this.kcm].filter((p): p is ManagedProcess => p !== undefined);
  }
}
