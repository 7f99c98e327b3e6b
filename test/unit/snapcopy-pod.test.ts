// The snapcopy MediaAgent pod (pod.ts): the PVC restored from the VolumeSnapshot is mounted read-only, at the task's
// path, and the task carries the VolumeSnapshot and the job it becomes; no secret in the task.
import { describe, expect, it } from "vitest";
import { buildAgentPod, type SnapCopyTask } from "../../src/mediaagent/pod.ts";
import { repositoryAccess } from "../../src/policy/repository.ts";

describe("snapcopy pod", () => {
  const snapshot: SnapCopyTask = {
    path: "/snapshots/data-pg-0",
    jobId: "team-a-pg-20261122-6f1c2a9e",
    status: "completed",
    client: "team-a",
    subclient: "data-pg-0",
    snapVault: "pg-vault",
    volumeSnapshot: { name: "pg-20261122", uid: "6f1c2a9e-0b7d-4c1e-9a55-3d2e8f0c1b42", creationTime: "2026-11-22T01:00:00Z" },
  };
  const target = repositoryAccess(
    { s3: { endpoint: "http://127.0.0.1:9000", bucket: "vault", credentialsSecret: { name: "creds" } } },
    "team-a/pg-vault",
    { secret: "pw", key: "password" },
  );
  const pod = buildAgentPod({
    task: "snapcopy",
    namespace: "team-a",
    name: "pg-vault-copy-6f1c2a9e-1",
    owner: { apiVersion: "auxo.dev/v1alpha1", kind: "SnapVault", name: "pg-vault", uid: "u1", controller: true },
    image: "ghcr.io/auxo-dev/auxo:1.0",
    target: { ...target, repositoryId: "r-1" },
    snapshot,
    claims: [{ name: "snapshot", claimName: "pg-vault-6f1c2a9e", mountPath: snapshot.path }],
    locks: { deadHosts: ["pg-vault-copy-6f1c2a9e-0"] },
    deadlineSeconds: 3600,
  }) as any;
  const c = pod.spec.containers[0];

  it("runs `auxo agent snapcopy`", () => {
    expect(c.command).toEqual(["auxo", "agent", "snapcopy"]);
  });

  it("mounts the restored PVC read-only, in the volume and in the container, at the task's path", () => {
    expect(pod.spec.volumes).toContainEqual({
      name: "snapshot",
      persistentVolumeClaim: { claimName: "pg-vault-6f1c2a9e", readOnly: true },
    });
    expect(c.volumeMounts).toContainEqual({ name: "snapshot", mountPath: "/snapshots/data-pg-0", readOnly: true });
    for (const m of c.volumeMounts.filter((m: { name: string }) => m.name === "snapshot")) expect(m.readOnly).toBe(true);
  });

  it("carries the VolumeSnapshot, the job, the recorded repository ID and the dead hosts in its task, no secret", () => {
    const task = JSON.parse(c.env.find((e: { name: string }) => e.name === "AUXO_TASK").value);
    expect(task).toMatchObject({
      task: "snapcopy",
      snapshot,
      target: { repositoryId: "r-1" },
      locks: { deadHosts: ["pg-vault-copy-6f1c2a9e-0"] },
    });
    expect(task.timeoutSeconds).toBeLessThan(3600);
    expect(JSON.stringify(task)).not.toMatch(/secretKeyRef|AWS_SECRET/);
  });
});
