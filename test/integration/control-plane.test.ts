// The control plane harness: a real API server with client-cert auth and RBAC, kubeconfigs for any user or
// service account, kubectl against it, an API server restart that keeps the data, and a clean teardown.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlane } from "../harness/control-plane.ts";
import { KubeError, KubeRest, type Obj } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { admin, freshNamespace, world } from "../harness/testing.ts";

const kubectl = (kubeconfig: string, ...args: string[]) =>
  execFileSync("kubectl", [`--kubeconfig=${kubeconfig}`, ...args], { encoding: "utf8" });

describe("the shared control plane", () => {
  let kube: KubeRest;
  let ns: string;
  let removeNs: () => Promise<void>;

  beforeAll(async () => {
    kube = admin();
    ({ name: ns, remove: removeNs } = await freshNamespace(kube, "cp"));
  });
  afterAll(async () => {
    await removeNs?.();
    kube?.close();
  });

  it("serves kubectl get nodes with the admin kubeconfig", () => {
    const out = kubectl(
      world().kubeconfig,
      "get",
      "nodes",
      "-o",
      "custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=='Ready')].status",
      "--no-headers",
    );
    expect(out.trim()).toBe(`${world().nodeName}   True`);
  });

  it("reports the pinned version", async () => {
    const v = await kube.get("/version");
    expect(v.gitVersion).toMatch(/^v1\.36\.\d+$/);
  });

  it("collects garbage: deleting an owner deletes its dependents (kube-controller-manager runs)", async () => {
    const owner = await kube.create(`/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: "owner" } });
    await kube.create(`/api/v1/namespaces/${ns}/configmaps`, {
      metadata: { name: "dependent", ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata.uid }] },
    });
    await kube.delete(`/api/v1/namespaces/${ns}/configmaps/owner`);
    const deadline = Date.now() + 60_000;
    let gone = false;
    while (!gone && Date.now() < deadline) {
      try {
        await kube.get(`/api/v1/namespaces/${ns}/configmaps/dependent`);
        await new Promise((r) => setTimeout(r, 250));
      } catch (err) {
        gone = err instanceof KubeError && err.status === 404;
        if (!gone) throw err;
      }
    }
    expect(gone).toBe(true);
  });
});

describe("a dedicated control plane", () => {
  const cp = new ControlPlane();

  beforeAll(async () => {
    await cp.start();
  });
  afterAll(async () => {
    await cp.stop();
  });

  it("mints kubeconfigs for users that RBAC judges", async () => {
    const alice = KubeRest.fromKubeconfig(cp.userKubeconfig("alice", ["backup-admins"]));
    try {
      await expect(alice.get("/api/v1/namespaces/default/secrets")).rejects.toMatchObject({ status: 403 });
      await cp.client.create("/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", {
        metadata: { name: "backup-admins-view" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "admin" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "backup-admins" }],
      });
      // The authorizer sees new bindings (and the aggregated admin role) through its informers, a moment later.
      const list = await waitFor<Obj>("alice to be allowed", async () => {
        try {
          return await alice.get("/api/v1/namespaces/default/secrets");
        } catch (err) {
          if (err instanceof KubeError && err.status === 403) return undefined;
          throw err;
        }
      });
      expect(list.kind).toBe("SecretList");
      // The same user is still refused outside the namespace the binding covers.
      await expect(alice.get("/api/v1/namespaces/kube-system/secrets")).rejects.toMatchObject({ status: 403 });
      const review = await alice.create("/apis/authentication.k8s.io/v1/selfsubjectreviews", {
        apiVersion: "authentication.k8s.io/v1",
        kind: "SelfSubjectReview",
      });
      expect(review.status.userInfo.username).toBe("alice");
      expect(review.status.userInfo.groups).toContain("backup-admins");
    } finally {
      alice.close();
    }
  });

  it("mints kubeconfigs for service accounts with bound tokens", async () => {
    const sa = KubeRest.fromKubeconfig(await cp.serviceAccountKubeconfig("default", "auxo-agent"));
    try {
      const review = await sa.create("/apis/authentication.k8s.io/v1/selfsubjectreviews", {
        apiVersion: "authentication.k8s.io/v1",
        kind: "SelfSubjectReview",
      });
      expect(review.status.userInfo.username).toBe("system:serviceaccount:default:auxo-agent");
      await expect(sa.get("/api/v1/namespaces/default/configmaps")).rejects.toMatchObject({ status: 403 });
    } finally {
      sa.close();
    }
  });

  it("restarts the API server on the same port and keeps the data", async () => {
    await cp.client.create("/api/v1/namespaces/default/configmaps", { metadata: { name: "before-restart" }, data: { k: "v" } });
    const port = cp.apiPort;
    await cp.stopApiServer();
    await expect(cp.client.get("/readyz")).rejects.toThrow();
    await cp.startApiServerAgain();
    expect(cp.apiPort).toBe(port);
    const cm = await cp.client.get("/api/v1/namespaces/default/configmaps/before-restart");
    expect(cm.data).toEqual({ k: "v" });
  });

  it("stops every process and removes its folder", async () => {
    const other = new ControlPlane({ controllerManager: false });
    await other.start();
    const pids = other.processes().map((p) => p.pid as number);
    expect(pids).toHaveLength(2);
    await other.stop();
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    expect(existsSync(other.dir)).toBe(false);
  });
});
