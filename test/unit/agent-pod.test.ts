// The MediaAgent pod's safety settings (issue 12): bounded scratch space, the recorded repository ID and the lock
// rule's dead hosts in the task, never a remove-all.
import { describe, expect, it } from "vitest";
import { buildAgentPod } from "../../src/mediaagent/pod.ts";
import { repositoryAccess } from "../../src/policy/repository.ts";

describe("MediaAgent pod", () => {
  const target = repositoryAccess(
    { s3: { endpoint: "http://127.0.0.1:9000", bucket: "b", credentialsSecret: { name: "creds" } } },
    "ns/p/c",
    { secret: "pw", key: "password" },
  );
  const pod = buildAgentPod({
    task: "scan",
    namespace: "ns",
    name: "offsite-scan-7",
    owner: { apiVersion: "auxo.dev/v1alpha1", kind: "PolicyCopy", name: "offsite", uid: "u1", controller: true, blockOwnerDeletion: true },
    image: "ghcr.io/auxo-dev/auxo:1.0",
    target,
    deadlineSeconds: 600,
  }) as any;

  it("bounds its scratch space: /tmp and restic's cache are emptyDirs with size limits", () => {
    const c = pod.spec.containers[0];
    expect(pod.spec.volumes).toContainEqual({ name: "tmp", emptyDir: { sizeLimit: "1Gi" } });
    expect(pod.spec.volumes).toContainEqual({ name: "restic-cache", emptyDir: { sizeLimit: "2Gi" } });
    const cacheDir = c.env.find((e: { name: string }) => e.name === "RESTIC_CACHE_DIR").value;
    expect(c.volumeMounts).toContainEqual({ name: "restic-cache", mountPath: cacheDir });
  });

  it("passes the recorded repository ID and the dead hosts whose locks may go, never a remove-all", () => {
    const p = buildAgentPod({
      task: "copy",
      namespace: "ns",
      name: "c-1",
      owner: { apiVersion: "v1", kind: "X", name: "x", uid: "u" },
      image: "i",
      target: { ...target, repositoryId: "abc" },
      source: { ...target, repositoryId: "def" },
      locks: { deadHosts: ["c-0"] },
      deadlineSeconds: 600,
    }) as any;
    const spec = JSON.parse(p.spec.containers[0].env.find((e: { name: string }) => e.name === "AUXO_TASK").value);
    expect(spec).toMatchObject({ target: { repositoryId: "abc" }, source: { repositoryId: "def" }, locks: { deadHosts: ["c-0"] } });
    expect(JSON.stringify(spec)).not.toMatch(/unlock|remove-all/);
  });
});
