// Helpers for integration tests: a client for the shared world, a fresh namespace per test file, waiting for pods.
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { inject } from "vitest";
import { isNotFound, KubeRest, type Obj } from "./kube-rest.ts";
import { waitFor } from "./net.ts";
import type { WorldInfo } from "./world.ts";

const execFileAsync = promisify(execFile);

export function world(): WorldInfo {
  return inject("world");
}

export function admin(): KubeRest {
  return KubeRest.fromKubeconfig(world().kubeconfig);
}

/** Creates a namespace named after the test file (plus a random suffix); returns its name and a cleanup. */
export async function freshNamespace(kube: KubeRest, prefix: string): Promise<{ name: string; remove: () => Promise<void> }> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await kube.create("/api/v1/namespaces", { metadata: { name, labels: { "auxo.dev/test": prefix } } });
  // The controller-manager creates the default ServiceAccount; pods are admitted only after it exists.
  await waitFor(`serviceaccount default in ${name}`, async () =>
    (await kube.get(`/api/v1/namespaces/${name}/serviceaccounts/default`)) ? true : undefined,
  );
  return { name, remove: () => kube.deleteIfExists(`/api/v1/namespaces/${name}`) };
}

export async function getPod(kube: KubeRest, ns: string, name: string): Promise<Obj | undefined> {
  try {
    return await kube.get(`/api/v1/namespaces/${ns}/pods/${name}`);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Waits until `check` accepts the pod; returns it. */
export async function waitForPod(
  kube: KubeRest,
  ns: string,
  name: string,
  what: string,
  check: (pod: Obj) => boolean,
  timeoutMs = 60_000,
): Promise<Obj> {
  let last: Obj | undefined;
  try {
    return await waitFor(
      `pod ${ns}/${name} ${what}`,
      async () => {
        last = await getPod(kube, ns, name);
        return last && check(last) ? last : undefined;
      },
      { timeoutMs, intervalMs: 200 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlast status: ${JSON.stringify(last?.status, null, 1)}`, { cause: err });
  }
}

/**
 * A writer pod (busybox through the node runner): runs `script` with the claim at /data until it Succeeded, then
 * deletes it. Fails with the container statuses when the script fails.
 */
export async function runWriter(kube: KubeRest, ns: string, name: string, claim: string, script: string): Promise<void> {
  await kube.create(`/api/v1/namespaces/${ns}/pods`, {
    metadata: { name },
    spec: {
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 1,
      containers: [
        { name: "main", image: "busybox", command: ["/bin/sh", "-c", script], volumeMounts: [{ name: "data", mountPath: "/data" }] },
      ],
      volumes: [{ name: "data", persistentVolumeClaim: { claimName: claim } }],
    },
  });
  const p = await waitForPod(kube, ns, name, "Succeeded", phaseIs("Succeeded", "Failed"), 90_000);
  if (p.status.phase !== "Succeeded") throw new Error(`writer ${name} failed: ${JSON.stringify(p.status.containerStatuses)}`);
  await kube.delete(`/api/v1/namespaces/${ns}/pods/${name}`);
}

/**
 * Waits until `check` accepts an object's status (read at `objectPath`); returns it. On a timeout the error shows the
 * last status read (or the part `show` picks), which is what tells a flaky wait from a wrong one.
 */
export async function waitForStatus(
  kube: KubeRest,
  objectPath: string,
  what: string,
  check: (status: Obj) => boolean,
  opts: { timeoutMs?: number; intervalMs?: number; show?: (status: Obj | undefined) => unknown } = {},
): Promise<Obj> {
  let last: Obj | undefined;
  try {
    return await waitFor(
      what,
      async () => {
        last = (await kube.get(objectPath)).status;
        return last && check(last) ? last : undefined;
      },
      { timeoutMs: opts.timeoutMs ?? 120_000, intervalMs: opts.intervalMs ?? 250 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last status: ${JSON.stringify((opts.show ?? ((x) => x))(last))}`, { cause: err });
  }
}

export const phaseIs =
  (...phases: string[]) =>
  (pod: Obj) =>
    phases.includes(pod.status?.phase);

/** A container's host pid, from the containerID the local node runner reports (auxo-local://<pid>). */
export function hostPid(pod: Obj, container?: string): number {
  const cs = (pod.status?.containerStatuses ?? []).find((c: Obj) => !container || c.name === container);
  const m = /^auxo-local:\/\/(\d+)$/.exec(cs?.containerID ?? "");
  if (!m) throw new Error(`pod ${pod.metadata.name} has no running container`);
  return Number(m[1]);
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** An S3 client for the world's S3 server, with its root credentials. */
export function s3Client(): S3Client {
  const s3 = world().s3;
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
  });
}

/** Creates a bucket on the world's S3 server. */
export async function createBucket(name: string): Promise<void> {
  const client = s3Client();
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
}

/**
 * A plain restic CLI as uid 65532, like the MediaAgent pods (repository files are private to their owner), using
 * the world's copy of restic (the tool cache may sit in a home folder uid 65532 cannot enter). `scratch` must be a
 * folder uid 65532 can write: it holds the password file and restic's HOME.
 */
/**
 * resticAsAgent's asynchronous twin: for a test process that hosts a node runner or an operator of its own, whose
 * event loop a synchronous restic call would stall.
 */
export function resticAsAgentAsync(scratch: string, password: string) {
  return async (repo: string, env: Record<string, string>, ...args: string[]): Promise<string> => {
    const pwFile = path.join(scratch, "pw");
    writeFileSync(pwFile, password, { mode: 0o644 });
    const restic = path.join(world().dir, "bin", "restic");
    const { stdout } = await execFileAsync(
      "setpriv",
      ["--reuid=65532", "--regid=65532", "--clear-groups", "--", restic, "-r", repo, "--password-file", pwFile, "--no-cache", ...args],
      { env: { ...process.env, ...env, HOME: scratch }, encoding: "utf8", maxBuffer: 64 << 20 },
    );
    return stdout;
  };
}

export function resticAsAgent(scratch: string, password: string) {
  return (repo: string, env: Record<string, string>, ...args: string[]): string => {
    const pwFile = path.join(scratch, "pw");
    writeFileSync(pwFile, password, { mode: 0o644 });
    const restic = path.join(world().dir, "bin", "restic");
    return execFileSync(
      "setpriv",
      ["--reuid=65532", "--regid=65532", "--clear-groups", "--", restic, "-r", repo, "--password-file", pwFile, "--no-cache", ...args],
      { env: { ...process.env, ...env, HOME: scratch }, encoding: "utf8", maxBuffer: 64 << 20 },
    );
  };
}
