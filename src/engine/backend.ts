// A repository's storage reached directly, beside restic, for the two things restic has no command for: deleting one
// named lock file (restic can only remove stale locks, or all of them), and proving that a library's bucket, prefix
// and credentials work before any repository exists there.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { unlink } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { EngineError } from "./errors.ts";
import type { Repo } from "./restic.ts";

interface S3Place {
  endpoint: string;
  bucket: string;
  prefix: string;
}

/** Endpoint, bucket and key prefix of an s3: repository string (s3:https://host/bucket/prefix; no scheme is https). */
export function s3Place(repository: string): S3Place {
  const rest = repository.replace(/^s3:/, "");
  const url = new URL(/^https?:\/\//.test(rest) ? rest : `https://${rest}`);
  const [bucket = "", ...prefix] = url.pathname.split("/").filter(Boolean);
  return { endpoint: url.origin, bucket, prefix: prefix.join("/") };
}

async function s3Client(repo: Repo, endpoint: string) {
  const { S3Client } = await import("@aws-sdk/client-s3");
  return new S3Client({
    endpoint,
    region: repo.options?.["s3.region"] ?? "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: repo.env?.AWS_ACCESS_KEY_ID ?? "", secretAccessKey: repo.env?.AWS_SECRET_ACCESS_KEY ?? "" },
    maxAttempts: 3,
    requestHandler: endpoint.startsWith("https:")
      ? { httpsAgent: new https.Agent({ ca: repo.caFile ? readFileSync(repo.caFile) : undefined, rejectUnauthorized: !repo.insecureTls }) }
      : undefined,
  });
}

const keyOf = (prefix: string, name: string) => (prefix ? `${prefix}/${name}` : name);

/** Deletes the lock file `locks/<id>` of the repository, and nothing else. A lock already gone is fine. */
export async function removeLockFile(repo: Repo, id: string): Promise<void> {
  if (!/^[0-9a-f]{64}$/.test(id)) throw new Error(`not a lock id: ${id}`);
  const r = repo.repository;
  if (r.startsWith("s3:")) {
    const place = s3Place(r);
    const { DeleteObjectCommand } = await import("@aws-sdk/client-s3");
    const client = await s3Client(repo, place.endpoint);
    try {
      await client.send(new DeleteObjectCommand({ Bucket: place.bucket, Key: keyOf(place.prefix, `locks/${id}`) }));
    } finally {
      client.destroy();
    }
  } else if (r.startsWith("rest:")) {
    const url = new URL(`${r.slice("rest:".length).replace(/\/+$/, "")}/locks/${id}`);
    const user = repo.env?.RESTIC_REST_USERNAME ?? decodeURIComponent(url.username);
    const pass = repo.env?.RESTIC_REST_PASSWORD ?? decodeURIComponent(url.password);
    url.username = "";
    url.password = "";
    const headers: Record<string, string> = {};
    if (user) headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
    const res = await new Promise<number>((resolve, reject) => {
      const req = (url.protocol === "https:" ? https : http).request(
        url,
        {
          method: "DELETE",
          headers,
          timeout: 60_000,
          ca: repo.caFile ? readFileSync(repo.caFile) : undefined,
          rejectUnauthorized: !repo.insecureTls,
        },
        (resp) => {
          resp.resume();
          resolve(resp.statusCode ?? 0);
        },
      );
      req.on("timeout", () => req.destroy(new Error("no answer within 60 s")));
      req.on("error", reject);
      req.end();
    });
    if (res !== 200 && res !== 404) throw new Error(`the REST server answered ${res} to deleting lock ${id.slice(0, 8)}`);
  } else if (r.includes(":") && !r.startsWith("/")) {
    throw new Error(`cannot remove a lock on this backend: ${r.split(":")[0]}`);
  } else {
    try {
      await unlink(path.join(r, "locks", id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
}

const s3Problem = (err: unknown, place: S3Place): EngineError => {
  const e = err as { name?: string; Code?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const code = e.name ?? e.Code ?? "";
  const where = `bucket "${place.bucket}"${place.prefix ? ` (prefix "${place.prefix}")` : ""} at ${place.endpoint}`;
  const fail = (kind: EngineError["kind"], message: string) => new EngineError(kind, "probe", null, message, message);
  if (code === "NoSuchBucket") return fail("RepositoryNotFound", `bucket "${place.bucket}" does not exist at ${place.endpoint}`);
  // versitygw says XAdminUserNotFound where AWS says InvalidAccessKeyId.
  if (code === "InvalidAccessKeyId" || code === "XAdminUserNotFound")
    return fail("WrongPassword", `the S3 server does not know the access key ID (${where})`);
  if (code === "SignatureDoesNotMatch") return fail("WrongPassword", `the secret access key does not match the access key ID (${where})`);
  if (code === "AccessDenied" || e.$metadata?.httpStatusCode === 403)
    return fail("WrongPassword", `access denied: the credentials may not write to ${where}`);
  const text = `${code} ${e.code ?? ""} ${e.message ?? ""}`;
  const network: [RegExp, string][] = [
    [/ECONNREFUSED/, "connection refused"],
    [/ENOTFOUND|EAI_AGAIN/, "no such host"],
    [/ECONNRESET|socket hang up/, "connection reset"],
    [/ETIMEDOUT|TimeoutError|AbortError|aborted|timeout/i, "no answer in time"],
    [/EHOSTUNREACH|ENETUNREACH/, "network is unreachable"],
    [/certificate|self[- ]signed|TLS|SSL/i, "TLS handshake failed"],
  ];
  const hit = network.find(([p]) => p.test(text));
  const said = (e.message ?? code).slice(0, 300);
  // Worded like every other Unreachable error, so that a user reads one phrase for one cause.
  if (hit) return fail("Unreachable", `the repository's storage cannot be reached: ${where}: ${hit[1]} (${said})`);
  return fail("Failed", `the S3 server refused a test write to ${where}: ${said}`);
};

/**
 * Proves an S3 library works: puts a small marker object under its prefix and deletes it again. A missing bucket,
 * refused credentials or a prefix the credentials may not write are failures, each with its own message.
 */
export async function probeS3(repo: Repo, timeoutMs = 60_000): Promise<string> {
  const place = s3Place(repo.repository);
  const { PutObjectCommand, DeleteObjectCommand } = await import("@aws-sdk/client-s3");
  const client = await s3Client(repo, place.endpoint);
  const key = keyOf(place.prefix, `.auxo-probe-${randomBytes(4).toString("hex")}`);
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    await client.send(new PutObjectCommand({ Bucket: place.bucket, Key: key, Body: "probe" }), { abortSignal: signal });
    await client.send(new DeleteObjectCommand({ Bucket: place.bucket, Key: key }), { abortSignal: signal });
  } catch (err) {
    throw s3Problem(err, place);
  } finally {
    client.destroy();
  }
  return `wrote and deleted a marker in bucket "${place.bucket}"${place.prefix ? ` under "${place.prefix}/"` : ""}`;
}
