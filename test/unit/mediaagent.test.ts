// The pure parts of the data path: repository locations per library, the MediaAgent pod, probe timing.
import { describe, expect, it } from "vitest";
import { buildAgentPod, podName } from "../../src/mediaagent/pod.ts";
import { nextProbeAt, probeBackoffMs } from "../../src/policy/probe.ts";
import { clientEnvironment, defaultRepositoryPath, repositoryAccess } from "../../src/policy/repository.ts";

const pw = { secret: "repo-password", key: "password" };

describe("repository access", () => {
  it("puts a filesystem repository under the mounted volume", () => {
    const a = repositoryAccess(
      { filesystem: { persistentVolumeClaim: { claimName: "disk" }, path: "auxo/" } },
      defaultRepositoryPath("team-a", "gold", "primary"),
      pw,
    );
    expect(a.repository).toBe("/libraries/target/auxo/team-a/gold/primary");
    expect(a.passwordFile).toBe("/var/run/auxo/target/password/password");
    expect(a.volumes.map((v) => v.source)).toEqual([
      { secret: { secretName: "repo-password", items: [{ key: "password", path: "password" }], defaultMode: 0o440 } },
      { persistentVolumeClaim: { claimName: "disk" } },
    ]);
    expect(a.env).toEqual([]);
    expect(a.metadata).toEqual({ path: "/libraries/target/auxo/team-a/gold/primary.auxo" });
  });

  it("builds S3 and REST repositories with credentials from Secrets only", () => {
    const s3 = repositoryAccess(
      {
        s3: {
          endpoint: "https://s3.example.com/",
          bucket: "b",
          prefix: "k8s",
          region: "eu-west-1",
          credentialsSecret: { name: "creds" },
          caSecret: { name: "ca" },
        },
      },
      "ns/p/c",
      pw,
      "source",
    );
    expect(s3.repository).toBe("s3:https://s3.example.com/b/k8s/ns/p/c");
    expect(s3.options).toEqual({ "s3.region": "eu-west-1" });
    expect(s3.env).toEqual([
      { name: "AWS_ACCESS_KEY_ID", secret: "creds", key: "AWS_ACCESS_KEY_ID" },
      { name: "AWS_SECRET_ACCESS_KEY", secret: "creds", key: "AWS_SECRET_ACCESS_KEY" },
    ]);
    expect(s3.caFile).toBe("/var/run/auxo/source/ca/ca.crt");
    // Job metadata sits beside the repository, never inside restic's own layout.
    expect(s3.metadata).toEqual({
      s3: { endpoint: "https://s3.example.com", bucket: "b", prefix: "k8s/ns/p/c.auxo", region: "eu-west-1" },
    });
    const rest = repositoryAccess({ rest: { url: "https://rest:8000/", credentialsSecret: { name: "rest" } } }, "ns/p/c", pw);
    expect(rest.repository).toBe("rest:https://rest:8000/ns/p/c");
    expect(rest.env.map((e) => e.name)).toEqual(["RESTIC_REST_USERNAME", "RESTIC_REST_PASSWORD"]);
    expect(rest.metadata).toBeUndefined();
  });
});

describe("client environment (the policy's client Secret)", () => {
  const secrets: Record<string, Record<string, string>> = {
    pw: { password: "s3cret" },
    s3: { AWS_ACCESS_KEY_ID: "AK", AWS_SECRET_ACCESS_KEY: "SK" },
  };
  const read = (n: string, k: string) => (secrets[n]?.[k] === undefined ? undefined : Buffer.from(secrets[n]?.[k] as string));
  const text = (r: ReturnType<typeof clientEnvironment>) =>
    "data" in r ? { data: Object.fromEntries(Object.entries(r.data).map(([k, v]) => [k, v.toString("utf8")])) } : r;

  it("gives a restic client the repository, password and backend credentials", () => {
    const s3 = { s3: { endpoint: "https://s3.example", bucket: "b", prefix: "p", credentialsSecret: { name: "s3" } } };
    expect(text(clientEnvironment(s3 as never, "ns/gold/offsite", { secret: "pw", key: "password" }, read))).toEqual({
      data: {
        RESTIC_REPOSITORY: "s3:https://s3.example/b/p/ns/gold/offsite",
        RESTIC_PASSWORD: "s3cret",
        AWS_ACCESS_KEY_ID: "AK",
        AWS_SECRET_ACCESS_KEY: "SK",
        AWS_DEFAULT_REGION: "us-east-1",
      },
    });
    const fs = { filesystem: { persistentVolumeClaim: { claimName: "disk" }, path: "repos" } };
    expect(text(clientEnvironment(fs as never, "ns/gold/primary", { secret: "pw", key: "password" }, read))).toEqual({
      data: { RESTIC_REPOSITORY: "/libraries/client/repos/ns/gold/primary", RESTIC_PASSWORD: "s3cret" },
    });
  });

  it("names the missing Secret key instead of writing half an environment", () => {
    const s3 = { s3: { endpoint: "https://s3.example", bucket: "b", credentialsSecret: { name: "gone" } } };
    expect(clientEnvironment(s3 as never, "x", { secret: "pw", key: "password" }, read)).toEqual({ missing: "gone/AWS_ACCESS_KEY_ID" });
  });
});

describe("MediaAgent pod", () => {
  const target = repositoryAccess(
    { s3: { endpoint: "http://127.0.0.1:9000", bucket: "b", credentialsSecret: { name: "creds" } } },
    "ns/p/c",
    pw,
  );
  const pod = buildAgentPod({
    task: "scan",
    namespace: "ns",
    name: podName("offsite", "scan", "7"),
    owner: { apiVersion: "auxo.dev/v1alpha1", kind: "PolicyCopy", name: "offsite", uid: "u1", controller: true, blockOwnerDeletion: true },
    image: "ghcr.io/auxo-dev/auxo:1.0",
    target,
    deadlineSeconds: 600,
    placement: { nodeSelector: { zone: "a" } },
  }) as any;

  it("is non-root, read-only, bounded and owned", () => {
    expect(pod.metadata.name).toBe("offsite-scan-7");
    expect(pod.metadata.ownerReferences[0]).toMatchObject({ kind: "PolicyCopy", name: "offsite", controller: true });
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, fsGroup: 65532 });
    const c = pod.spec.containers[0];
    expect(c.command).toEqual(["auxo", "agent", "scan"]);
    expect(c.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(c.resources.limits.memory).toBe("1Gi");
    expect(pod.spec).toMatchObject({
      restartPolicy: "Never",
      activeDeadlineSeconds: 600,
      nodeSelector: { zone: "a" },
      automountServiceAccountToken: false,
    });
  });

  it("carries no secret in its arguments or literal env", () => {
    const c = pod.spec.containers[0];
    const literal = JSON.stringify([c.command, c.args, c.env.filter((e: any) => e.value !== undefined)]);
    expect(literal).not.toMatch(/SECRET|password"?:\s*"[^/]/i);
    expect(c.env.find((e: any) => e.name === "AWS_SECRET_ACCESS_KEY")).toEqual({
      name: "AWS_SECRET_ACCESS_KEY",
      valueFrom: { secretKeyRef: { name: "creds", key: "AWS_SECRET_ACCESS_KEY" } },
    });
    const task = JSON.parse(c.env.find((e: any) => e.name === "AUXO_TASK").value);
    expect(task).toMatchObject({
      task: "scan",
      target: { repository: "s3:http://127.0.0.1:9000/b/ns/p/c", passwordFile: "/var/run/auxo/target/password/password" },
      timeoutSeconds: 570,
    });
  });

  it("keeps names DNS-safe and within 63 characters, deterministically", () => {
    const long = podName("a-very-long-library-name-that-goes-on-and-on-and-on", "probe", "1795300000000");
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toBe(podName("a-very-long-library-name-that-goes-on-and-on-and-on", "probe", "1795300000000"));
    expect(podName("Lib_1", "probe")).toBe("lib-1-probe");
  });
});

describe("probe timing", () => {
  it("probes a healthy library every interval and backs off while it is down", () => {
    expect(nextProbeAt({ consecutiveFailures: 0, probeInterval: "5m" })).toBe(0);
    expect(nextProbeAt({ lastProbeTime: 1000, consecutiveFailures: 0, probeInterval: "5m" })).toBe(1000 + 300_000);
    expect([1, 2, 3, 4, 7, 20].map((n) => probeBackoffMs(n))).toEqual([30_000, 60_000, 120_000, 240_000, 1_800_000, 1_800_000]);
    expect(nextProbeAt({ lastProbeTime: 1000, consecutiveFailures: 2, probeInterval: "5m" })).toBe(61_000);
    expect(probeBackoffMs(3, 2000)).toBe(8000);
  });
});
