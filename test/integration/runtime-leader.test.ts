// Two operator processes, one lease: exactly one reconciles; when the leader is killed the standby takes over
// within the lease duration; when the leader stops gracefully it releases the lease and hands over faster.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BY, DEMO_LABEL } from "../fixtures/demo-controller.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { freePort, waitFor } from "../harness/net.ts";
import { ManagedProcess } from "../harness/proc.ts";
import { admin, freshNamespace, world } from "../harness/testing.ts";
import { repoRoot } from "../harness/tools.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
const procs: ManagedProcess[] = [];
const logDir = path.join(world().dir, "leader-test");

interface Replica {
  id: string;
  port: number;
  proc: ManagedProcess;
}

async function replica(id: string): Promise<Replica> {
  const port = await freePort();
  const { mkdirSync } = await import("node:fs");
  mkdirSync(logDir, { recursive: true });
  const proc = new ManagedProcess({
    name: id,
    command: process.execPath,
    args: [
      path.join(repoRoot, "test/fixtures/demo-operator.ts"),
      `--kubeconfig=${world().kubeconfig}`,
      `--namespace=${ns}`,
      "--lease=demo",
      `--identity=${id}`,
      `--port=${port}`,
    ],
    logFile: path.join(logDir, `${id}.log`),
  });
  proc.start();
  procs.push(proc);
  return { id, port, proc };
}

const holder = async (): Promise<string | undefined> => {
  try {
    return (await kube.get(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/demo`)).spec.holderIdentity || undefined;
  } catch {
    return undefined;
  }
};

async function metric(r: Replica, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(name))
    .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
}

async function reconciledBy(name: string): Promise<string | undefined> {
  const cm: Obj = await kube.get(`/api/v1/namespaces/${ns}/configmaps/${name}`);
  return cm.metadata.annotations?.[BY];
}

const createDemo = (name: string) =>
  kube.create(`/api/v1/namespaces/${ns}/configmaps`, { metadata: { name, labels: { [DEMO_LABEL]: "true" } }, data: { value: name } });

beforeAll(async () => {
  kube = admin();
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "leader"));
});

afterAll(async () => {
  for (const p of procs) await p.stop(2000);
  await removeNs?.();
  kube?.close();
});

describe("leader election between operator processes", () => {
  it("lets exactly one replica reconcile, and hands over on a kill within the lease duration and faster on a graceful stop", async () => {
    const a = await replica("replica-a");
    const b = await replica("replica-b");
    const first = await waitFor("a leader", holder, { timeoutMs: 30_000 });
    const [leader, standby] = first === a.id ? [a, b] : [b, a];
    for (const r of [leader, standby])
      await waitFor(`${r.id} serving`, async () => ((await fetch(`http://127.0.0.1:${r.port}/readyz`)).ok ? true : undefined));

    for (let i = 0; i < 5; i++) await createDemo(`one-${i}`);
    for (let i = 0; i < 5; i++)
      await waitFor(`one-${i} reconciled`, async () => ((await reconciledBy(`one-${i}`)) === leader.id ? true : undefined));
    expect(await metric(leader, "controller_runtime_reconcile_total")).toBeGreaterThanOrEqual(5);
    expect(await metric(standby, "controller_runtime_reconcile_total")).toBe(0);
    expect(await metric(leader, "leader_election_master_status")).toBe(1);
    expect(await metric(standby, "leader_election_master_status")).toBe(0);

    // Kill -9: no release; the standby must wait for the lease to expire (15 s) by its own clock.
    const killedAt = Date.now();
    leader.proc.killNow();
    await waitFor("the standby to take over", async () => ((await holder()) === standby.id ? true : undefined), {
      timeoutMs: 40_000,
      intervalMs: 100,
    });
    const killHandoverMs = Date.now() - killedAt;
    await createDemo("two");
    await waitFor("two reconciled by the new leader", async () => ((await reconciledBy("two")) === standby.id ? true : undefined));

    // Graceful stop: the leader releases the lease and a fresh standby takes over at its next retry (≤ 2.4 s).
    const c = await replica("replica-c");
    await waitFor(`${c.id} serving`, async () => ((await fetch(`http://127.0.0.1:${c.port}/readyz`)).ok ? true : undefined));
    await new Promise((r) => setTimeout(r, 3000)); // c has observed the lease as held
    const stoppedAt = Date.now();
    await standby.proc.stop(10_000);
    await waitFor("the fresh standby to take over", async () => ((await holder()) === c.id ? true : undefined), {
      timeoutMs: 40_000,
      intervalMs: 100,
    });
    const gracefulHandoverMs = Date.now() - stoppedAt;
    console.log(`leader handover: ${killHandoverMs} ms after SIGKILL, ${gracefulHandoverMs} ms after SIGTERM (lease 15 s, retry 2 s)`);

    expect(killHandoverMs).toBeGreaterThan(10_000); // it really waited for expiry...
    // ...and took over within the lease duration of the last renewal it saw: lease + up to three jittered retries.
    expect(killHandoverMs).toBeLessThan(15_000 + 3 * 2_400 + 1_000);
    expect(gracefulHandoverMs).toBeLessThan(5_000);
    expect(gracefulHandoverMs).toBeLessThan(killHandoverMs);
    await createDemo("three");
    await waitFor("three reconciled by the third leader", async () => ((await reconciledBy("three")) === c.id ? true : undefined));
  });
});
