// When the local world stops (make run's Ctrl-C), the node runner leaves no process behind, not even one of a pod
// whose container was still being prepared when the stop began (its env read from a Secret through a slow API):
// a process that starts after the runner stopped would outlive the world. A second runner, on its own node, runs
// against the real API server; only its Secret reads are slowed.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlane } from "../harness/control-plane.ts";
import { KubeRest, type Obj } from "../harness/kube-rest.ts";
import { sleep, waitFor } from "../harness/net.ts";
import { NodeRunner } from "../harness/node-runner/runner.ts";
import { admin, freshNamespace, world } from "../harness/testing.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
const dirs: string[] = [];
const marker = `auxo-shutdown-${randomBytes(4).toString("hex")}`;

/** Host processes whose command line carries the marker. */
function markedProcesses(): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, "utf8").includes(marker)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The runner's API client, with Secret reads held for `delayMs` (an API server under load). */
class SlowSecrets extends KubeRest {
  delayMs = 0;
  override async request<T = Obj>(method: string, p: string, body?: unknown, contentType?: string): Promise<T> {
    if (method === "GET" && p.includes("/secrets/")) await sleep(this.delayMs);
    return await super.request<T>(method, p, body, contentType);
  }
}

beforeAll(async () => {
  kube = admin();
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "runner-stop"));
});

afterAll(async () => {
  for (const pid of markedProcesses()) process.kill(pid, "SIGKILL"); // whatever a failed run left
  await removeNs?.();
  kube?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("node runner shutdown", () => {
  it("kills every process it started, including one whose container started while it was stopping", async () => {
    const cp = ControlPlane.attach(world().controlPlaneDir, world().server);
    const client = new SlowSecrets(KubeRest.fromKubeconfig(world().kubeconfig).creds);
    const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-runner-stop-"));
    dirs.push(dir);
    const nodeName = `stop-${randomBytes(3).toString("hex")}`;
    const runner = new NodeRunner({ client, pki: cp.pki, dir, nodeName, apiServer: { host: "127.0.0.1", port: cp.apiPort } });
    await runner.start();
    try {
      await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "agent-env" }, stringData: { TOKEN: "t" } });
      const pod = (name: string, env: Obj[]) => ({
        metadata: { name },
        spec: {
          nodeName, // bound to this runner's node, as the scheduler would
          restartPolicy: "Never",
          terminationGracePeriodSeconds: 1,
          containers: [{ name: "main", image: "busybox", command: ["/bin/sh", "-c", "while :; do sleep 1; done", marker], env }],
        },
      });
      // One pod runs already; the other's container is still waiting for its env when the runner is told to stop.
      await kube.create(`/api/v1/namespaces/${ns}/pods`, pod("running", []));
      await waitFor("the first pod's process", async () => (markedProcesses().length === 1 ? true : undefined));
      client.delayMs = 3000;
      await kube.create(
        `/api/v1/namespaces/${ns}/pods`,
        pod("starting", [{ name: "TOKEN", valueFrom: { secretKeyRef: { name: "agent-env", key: "TOKEN" } } }]),
      );
      await waitFor("the second pod to be taken", async () => {
        const p = await kube.get(`/api/v1/namespaces/${ns}/pods/starting`);
        return p.status?.phase === "Pending" && p.status?.containerStatuses ? true : undefined;
      });
      await runner.stop();
      expect(markedProcesses()).toEqual([]);
      // The env read ends after the stop: the container must not start then either.
      await sleep(client.delayMs + 2000);
      expect(markedProcesses()).toEqual([]);
    } finally {
      await runner.stop();
      client.close();
      // No kubelet is left to confirm graceful deletions on that node.
      for (const name of ["running", "starting"])
        await kube.deleteIfExists(`/api/v1/namespaces/${ns}/pods/${name}`, {
          apiVersion: "v1",
          kind: "DeleteOptions",
          gracePeriodSeconds: 0,
        });
      await kube.deleteIfExists(`/api/v1/nodes/${nodeName}`);
    }
  }, 60_000);
});
