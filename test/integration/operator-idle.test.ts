// An idle operator does not write to the API server: counted from the API server's own audit log, by user.
// `auxo operator` runs as a real process; with leader election its only writes are the Lease renewals.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlane } from "../harness/control-plane.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest } from "../harness/kube-rest.ts";
import { freePort, waitFor } from "../harness/net.ts";
import { ManagedProcess } from "../harness/proc.ts";
import { admin, freshNamespace, world } from "../harness/testing.ts";
import { repoRoot } from "../harness/tools.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
const procs: ManagedProcess[] = [];

interface AuditEvent {
  verb: string;
  user: { username: string };
  objectRef?: { resource?: string; namespace?: string };
  stageTimestamp: string;
}

function auditSince(user: string, since: number): AuditEvent[] {
  const lines = readFileSync(world().auditLog as string, "utf8")
    .trim()
    .split("\n");
  return lines.map((l) => JSON.parse(l) as AuditEvent).filter((e) => e.user.username === user && Date.parse(e.stageTimestamp) >= since);
}

const writes = new Set(["create", "update", "patch", "delete", "deletecollection"]);

beforeAll(async () => {
  kube = admin();
  await installCrds(kube); // the operator watches Auxo's kinds
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "idle"));
});

afterAll(async () => {
  for (const p of procs) await p.stop(5000);
  await removeNs?.();
  kube?.close();
});

/** Starts `auxo operator` (or, with demo, the runtime with a controller watching ConfigMaps) as `user`. */
async function operator(user: string, extra: string[], demo = false): Promise<number> {
  const kubeconfig = path.join(world().dir, `${user.replace(/\W/g, "_")}.kubeconfig`);
  ControlPlane.attach(world().controlPlaneDir, world().server).writeKubeconfig(kubeconfig, user, ["system:masters"]);
  const port = await freePort();
  const proc = new ManagedProcess({
    name: user,
    command: demo ? process.execPath : path.join(repoRoot, "bin/auxo"),
    args: demo
      ? [
          path.join(repoRoot, "test/fixtures/demo-operator.ts"),
          `--kubeconfig=${kubeconfig}`,
          `--namespace=${ns}`,
          "--lease=idle-demo",
          `--identity=${user}`,
          `--port=${port}`,
        ]
      : [
          "operator",
          `--kubeconfig=${kubeconfig}`,
          `--health-probe-bind-address=127.0.0.1:${port}`,
          "--metrics-bind-address=0",
          "--probe-libraries=false",
          ...extra,
        ],
    logFile: path.join(world().dir, `${user.replace(/\W/g, "_")}.log`),
  });
  proc.start();
  procs.push(proc);
  await waitFor(
    `${user} ready`,
    async () => ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok ? true : undefined),
    {
      timeoutMs: 30_000,
    },
  );
  return port;
}

describe("an idle operator", () => {
  it("makes no write request in a minute, apart from renewing its Lease", async () => {
    await operator("auxo:idle-leader", [`--leader-election-namespace=${ns}`, "--leader-election-id=idle"]);
    await operator("auxo:idle-single", ["--leader-elect=false"]);
    await operator("auxo:idle-demo", [], true);
    await waitFor("the leader to hold the lease", async () => {
      const l = await kube.get(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/idle`).catch(() => undefined);
      return l?.spec?.holderIdentity ? true : undefined;
    });
    // Start-up work (reconciling what exists, first status writes) must be over before the idle minute starts.
    const users = ["auxo:idle-leader", "auxo:idle-single", "auxo:idle-demo"];
    await waitFor(
      "start-up writes to settle",
      () => {
        const recent = users
          .flatMap((u) => auditSince(u, Date.now() - 5000))
          .filter((e) => writes.has(e.verb) && e.objectRef?.resource !== "leases");
        return recent.length === 0 ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    const since = Date.now() + 1000;
    await new Promise((r) => setTimeout(r, 61_000));
    const leader = auditSince("auxo:idle-leader", since);
    const single = auditSince("auxo:idle-single", since);
    const demo = auditSince("auxo:idle-demo", since);
    const demoWrites = demo.filter((e) => writes.has(e.verb));
    const leaderWrites = leader.filter((e) => writes.has(e.verb));
    const nonLeaseWrites = leaderWrites.filter((e) => e.objectRef?.resource !== "leases");
    console.log(
      `idle minute: leader-elected operator ${leader.length} requests (${leaderWrites.length} writes, all Lease renewals: ${nonLeaseWrites.length === 0}); ` +
        `single operator ${single.length} requests (${single.filter((e) => writes.has(e.verb)).length} writes); ` +
        `operator with a ConfigMap controller ${demo.length} requests (${demoWrites.length} writes, ${demo.filter((e) => e.verb === "watch" || e.verb === "list").length} list/watch)`,
    );
    expect(nonLeaseWrites).toEqual([]);
    expect(single.filter((e) => writes.has(e.verb))).toEqual([]);
    // Renewals every 2 s: about 30 in a minute, never a storm.
    expect(leaderWrites.length).toBeLessThanOrEqual(35);
    // Watching, not polling: the controller's informer makes no writes and at most a watch reconnect.
    expect(demoWrites.filter((e) => e.objectRef?.resource !== "leases")).toEqual([]);
    expect(demo.filter((e) => e.verb === "list" || e.verb === "watch").length).toBeLessThanOrEqual(2);
    // The real operator watches Auxo's five kinds, Secrets and claims: still no polling.
    expect(single.filter((e) => e.verb === "list" || e.verb === "watch").length).toBeLessThanOrEqual(7);
  });
});
