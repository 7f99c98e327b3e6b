// The Helm chart, with helm built from its Go module: lint and template, then a real install into the test
// control plane where the Deployment's two replicas run as pods on the local node and elect a leader, and RBAC
// tested by acting as the chart's service accounts.
import { execFileSync } from "node:child_process";
import path from "node:path";
import * as yaml from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlane } from "../harness/control-plane.ts";
import { installCrds } from "../harness/crds.ts";
import { KubeRest, type Obj } from "../harness/kube-rest.ts";
import { waitFor } from "../harness/net.ts";
import { admin, freshNamespace, world } from "../harness/testing.ts";
import { repoRoot, tools } from "../harness/tools.ts";

const chart = path.join(repoRoot, "charts/auxo");
let kube: KubeRest;
let release: string; // namespace of the release
let tenantA: string;
let tenantB: string;
const cleanups: (() => Promise<void>)[] = [];

function helm(...args: string[]): { ok: boolean; out: string } {
  try {
    const out = execFileSync(tools().helm, [...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        KUBECONFIG: world().kubeconfig,
        HELM_CACHE_HOME: path.join(world().dir, "helm-cache"),
        HELM_CONFIG_HOME: path.join(world().dir, "helm-config"),
        HELM_DATA_HOME: path.join(world().dir, "helm-data"),
      },
    });
    return { ok: true, out };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

/**
 * helm install for the local world: pods run as host processes under root (the tool cache lives in root's home),
 * probes on free loopback ports (replicas share the host's network), and no library probes (other test namespaces
 * hold libraries with cloud endpoints, and tests reach only 127.0.0.1).
 */
const localInstall = (): string[] => [
  ...["install", "auxo", chart, "--namespace", release, "--set", "image.tag=dev", "--set", "libraryProbes.enabled=false"],
  ...["--set", "podSecurityContext.runAsUser=0", "--set", "podSecurityContext.runAsNonRoot=false"],
  ...["--set-string", "probes.bindAddress=127.0.0.1:0", "--set-string", "metrics.bindAddress=0"],
];

const render = (...set: string[]): Obj[] => {
  const r = helm("template", "auxo", chart, "--namespace", "auxo-system", ...set.flatMap((s) => ["--set", s]));
  expect(r.ok, r.out).toBe(true);
  return yaml.loadAll(r.out).filter((d): d is Obj => typeof d === "object" && d !== null);
};

beforeAll(async () => {
  kube = admin();
  await installCrds(kube);
  for (const prefix of ["chart", "tenant-a", "tenant-b"]) {
    const n = await freshNamespace(kube, prefix);
    cleanups.push(n.remove);
    if (prefix === "chart") release = n.name;
    else if (prefix === "tenant-a") tenantA = n.name;
    else tenantB = n.name;
  }
});

afterAll(async () => {
  helm("uninstall", "auxo", "--namespace", release, "--wait", "--timeout", "60s");
  for (const c of cleanups) await c();
  kube?.close();
});

describe("helm chart", () => {
  it("lints, and its values schema rejects nonsense", () => {
    const ok = helm("lint", chart, "--strict");
    expect(ok.ok, ok.out).toBe(true);
    const bad = helm("lint", chart, "--set", "replicaCount=0");
    expect(bad.ok).toBe(false);
    expect(bad.out).toContain("replicaCount");
    const noElection = helm("template", "auxo", chart, "--set", "leaderElection.enabled=false");
    expect(noElection.ok).toBe(false); // 2 replicas without leader election would both reconcile
  });

  it("renders a hardened two-replica Deployment, a PDB and a metrics Service", () => {
    const docs = render();
    const dep = docs.find((d) => d.kind === "Deployment") as Obj;
    expect(dep.spec.replicas).toBe(2);
    const pod = dep.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } });
    expect(pod.containers[0].securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(pod.containers[0].args).toContain("--leader-elect=true");
    // Tenancy: hostPath and NFS libraries refused unless the values allow them (docs/tenancy.md).
    expect(pod.containers[0].args).toEqual(expect.arrayContaining(["--allow-host-path-libraries=false", "--allow-nfs-libraries=false"]));
    expect(pod.containers[0].resources.limits.memory).toBe("512Mi");
    expect(docs.map((d) => d.kind).sort()).toEqual(
      ["ClusterRole", "ClusterRoleBinding", "Deployment", "PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount"].sort(),
    );
    expect(render("metrics.serviceMonitor.enabled=true").some((d) => d.kind === "ServiceMonitor")).toBe(true);
    // No rule grants a wildcard.
    for (const role of docs.filter((d) => d.kind === "ClusterRole" || d.kind === "Role")) {
      for (const rule of role.rules) {
        expect(rule.verbs).not.toContain("*");
        expect(rule.resources).not.toContain("*");
      }
    }
  });

  it("installs, runs two replicas as pods and elects one leader", async () => {
    // The local node runner runs pods as host processes: the tool cache lives in root's home, so the pods run as
    // root here, and each replica serves its probes on a free loopback port (they share the host's network).
    const r = helm(
      ...localInstall(),
      "--set",
      "leaderElection.leaseDuration=6s",
      "--set",
      "leaderElection.renewDeadline=4s",
      "--set",
      "leaderElection.retryPeriod=1s",
    );
    expect(r.ok, r.out).toBe(true);
    const pods = await waitFor(
      "two operator pods running",
      async () => {
        const list = await kube.get(`/api/v1/namespaces/${release}/pods?labelSelector=app.kubernetes.io/component=operator`);
        return list.items.length === 2 && list.items.every((p: Obj) => p.status?.phase === "Running") ? list.items : undefined;
      },
      { timeoutMs: 90_000 },
    );
    const lease = await waitFor(
      "a leader",
      async () => {
        const l = await kube.get(`/apis/coordination.k8s.io/v1/namespaces/${release}/leases/auxo`).catch(() => undefined);
        return l?.spec?.holderIdentity ? l : undefined;
      },
      { timeoutMs: 60_000 },
    ).catch(async (err) => {
      const logs = await Promise.all(
        pods.map((p: Obj) => kube.get<string>(`/api/v1/namespaces/${release}/pods/${p.metadata.name}/log`).catch((e) => String(e))),
      );
      throw new Error(`${(err as Error).message}\n${logs.join("\n---\n")}`, { cause: err });
    });
    const names = pods.map((p: Obj) => p.metadata.name);
    expect(names.some((n: string) => lease.spec.holderIdentity.startsWith(`${n}_`))).toBe(true);
    const leader = names.find((n: string) => lease.spec.holderIdentity.startsWith(`${n}_`)) as string;
    await waitFor("the leader's log to say it started", async () =>
      (await kube.get<string>(`/api/v1/namespaces/${release}/pods/${leader}/log`)).includes("operator started") ? true : undefined,
    );
    // CRDs came from the chart's crds/ (or were there already) and stay after uninstall.
    expect(helm("uninstall", "auxo", "--namespace", release, "--wait", "--timeout", "60s").ok).toBe(true);
    const crd = await kube.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/policycopies.auxo.dev");
    expect(crd.metadata.name).toBe("policycopies.auxo.dev");
    // Reinstall the RBAC part for the tests below (the Deployment is not needed for them).
    const again = helm(...localInstall(), "--set", "replicaCount=1");
    expect(again.ok, again.out).toBe(true);
  }, 240_000);
});

describe("RBAC of the chart's service accounts", () => {
  let operator: KubeRest;
  let agentA: KubeRest;

  beforeAll(async () => {
    const cp = ControlPlane.attach(world().controlPlaneDir, world().server);
    operator = KubeRest.fromKubeconfig(await cp.serviceAccountKubeconfig(release, "auxo"));
    // MediaAgent pods run as their namespace's default service account, and without its token
    // (automountServiceAccountToken: false). Were a token mounted anyway, this is what it could do.
    agentA = KubeRest.fromKubeconfig(await cp.serviceAccountKubeconfig(tenantA, "default"));
    await kube.create(`/apis/auxo.dev/v1alpha1/namespaces/${tenantA}/auxcopyjobs`, {
      apiVersion: "auxo.dev/v1alpha1",
      kind: "AuxCopyJob",
      metadata: { name: "job" },
      spec: { storagePolicy: "gold" },
    });
    await kube.create(`/apis/auxo.dev/v1alpha1/namespaces/${tenantB}/auxcopyjobs`, {
      apiVersion: "auxo.dev/v1alpha1",
      kind: "AuxCopyJob",
      metadata: { name: "job" },
      spec: { storagePolicy: "gold" },
    });
    await kube.create(`/api/v1/namespaces/${tenantB}/secrets`, { metadata: { name: "creds" }, stringData: { k: "v" } });
  });

  afterAll(() => {
    operator?.close();
    agentA?.close();
  });

  const can = async (client: KubeRest, attrs: Obj): Promise<boolean> => {
    const r = await client.create("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SelfSubjectAccessReview",
      spec: { resourceAttributes: attrs },
    });
    return r.status.allowed === true;
  };

  it("lets the operator do its work", async () => {
    expect(await can(operator, { verb: "list", group: "auxo.dev", resource: "policycopies" })).toBe(true);
    expect(await can(operator, { verb: "watch", group: "auxo.dev", resource: "storagepolicies" })).toBe(true);
    expect(
      await can(operator, { verb: "patch", group: "auxo.dev", resource: "auxcopyjobs", subresource: "status", namespace: tenantA }),
    ).toBe(true);
    expect(await can(operator, { verb: "create", group: "auxo.dev", resource: "auxcopyjobs", namespace: tenantA })).toBe(true);
    expect(await can(operator, { verb: "delete", group: "auxo.dev", resource: "auxcopyjobs", namespace: tenantA })).toBe(true);
    expect(await can(operator, { verb: "patch", group: "auxo.dev", resource: "policycopies", namespace: tenantA })).toBe(true);
    expect(await can(operator, { verb: "create", resource: "pods", namespace: tenantA })).toBe(true);
    expect(await can(operator, { verb: "get", resource: "pods", subresource: "log", namespace: tenantA })).toBe(true);
    for (const verb of ["get", "list", "watch", "create", "patch"])
      expect(await can(operator, { verb, resource: "secrets", namespace: tenantB }), `secrets ${verb}`).toBe(true);
    expect(await can(operator, { verb: "create", resource: "events", namespace: tenantA })).toBe(true);
    expect(await can(operator, { verb: "list", resource: "events", namespace: tenantA })).toBe(true);
    // Snapshot work: cut VolumeSnapshots, restore claims from them, delete both afterwards.
    for (const verb of ["list", "watch", "create", "delete"]) {
      expect(await can(operator, { verb, group: "snapshot.storage.k8s.io", resource: "volumesnapshots", namespace: tenantA }), verb).toBe(
        true,
      );
      expect(await can(operator, { verb, resource: "persistentvolumeclaims", namespace: tenantA }), verb).toBe(true);
    }
    expect(await can(operator, { verb: "list", group: "snapshot.storage.k8s.io", resource: "volumesnapshotclasses" })).toBe(true);
    // Backup copies with access nodes: the nodes are listed, never changed.
    expect(await can(operator, { verb: "list", resource: "nodes" })).toBe(true);
    expect(await can(operator, { verb: "patch", resource: "nodes" })).toBe(false);
    expect(await can(operator, { verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: release })).toBe(true);
  });

  it("keeps the operator from what it must not do", async () => {
    expect(await can(operator, { verb: "delete", group: "apiextensions.k8s.io", resource: "customresourcedefinitions" })).toBe(false);
    expect(await can(operator, { verb: "create", group: "rbac.authorization.k8s.io", resource: "clusterrolebindings" })).toBe(false);
    expect(await can(operator, { verb: "delete", resource: "namespaces" })).toBe(false);
    expect(await can(operator, { verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: tenantA })).toBe(false);
    expect(await can(operator, { verb: "create", group: "apps", resource: "deployments", namespace: tenantA })).toBe(false);
    // Verbs it never uses: no service accounts, no role bindings, no binding of cluster roles, no Secret updates
    // or deletes, no edits of the specs it does not own.
    expect(await can(operator, { verb: "create", resource: "serviceaccounts", namespace: tenantA })).toBe(false);
    expect(await can(operator, { verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", namespace: tenantA })).toBe(
      false,
    );
    expect(await can(operator, { verb: "bind", group: "rbac.authorization.k8s.io", resource: "clusterroles" })).toBe(false);
    expect(await can(operator, { verb: "update", resource: "secrets", namespace: tenantA })).toBe(false);
    expect(await can(operator, { verb: "delete", resource: "secrets", namespace: tenantA })).toBe(false);
    expect(await can(operator, { verb: "update", group: "auxo.dev", resource: "libraries", namespace: tenantA })).toBe(false);
    expect(await can(operator, { verb: "delete", group: "auxo.dev", resource: "policycopies", namespace: tenantA })).toBe(false);
    // Snapshots other tools made are never changed; contents and volumes belong to the snapshot controller and
    // the provisioner.
    for (const verb of ["update", "patch"])
      expect(await can(operator, { verb, group: "snapshot.storage.k8s.io", resource: "volumesnapshots", namespace: tenantA }), verb).toBe(
        false,
      );
    expect(await can(operator, { verb: "list", group: "snapshot.storage.k8s.io", resource: "volumesnapshotcontents" })).toBe(false);
    expect(await can(operator, { verb: "delete", resource: "persistentvolumes" })).toBe(false);
    expect(await can(operator, { verb: "update", resource: "persistentvolumeclaims", namespace: tenantA })).toBe(false);
    // Not even a binding to the role a MediaAgent once had: RBAC refuses every escalation.
    await expect(
      operator.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${tenantA}/rolebindings`, {
        metadata: { name: "escalate" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
        subjects: [{ kind: "ServiceAccount", name: "default", namespace: tenantA }],
      }),
    ).rejects.toMatchObject({ status: 403 });
  });

  it("gives a MediaAgent's service account no API access: the chart has no MediaAgent role", async () => {
    await expect(kube.get("/apis/rbac.authorization.k8s.io/v1/clusterroles/auxo-mediaagent")).rejects.toMatchObject({ status: 404 });
    await expect(
      agentA.patch(`/apis/auxo.dev/v1alpha1/namespaces/${tenantA}/auxcopyjobs/job/status`, { status: { message: "x" } }),
    ).rejects.toMatchObject({ status: 403 });
    await expect(
      agentA.patch(`/apis/auxo.dev/v1alpha1/namespaces/${tenantB}/auxcopyjobs/job/status`, { status: { message: "x" } }),
    ).rejects.toMatchObject({ status: 403 });
    await expect(agentA.get(`/api/v1/namespaces/${tenantB}/secrets/creds`)).rejects.toMatchObject({ status: 403 });
    await expect(agentA.get(`/api/v1/namespaces/${tenantA}/secrets`)).rejects.toMatchObject({ status: 403 });
    await expect(
      agentA.patch(`/apis/auxo.dev/v1alpha1/namespaces/${tenantA}/auxcopyjobs/job`, { spec: { cancel: true } }),
    ).rejects.toMatchObject({ status: 403 });
    expect(await can(agentA, { verb: "list", resource: "pods", namespace: tenantA })).toBe(false);
  });
});
