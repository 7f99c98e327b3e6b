// The per-job metadata folder beside a repository (policy/jobevents.ts): a directory on a filesystem library, a key
// prefix on S3. The agent only adds events and lists them; it never rewrites or deletes one.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, readdir, rename, writeFile } from "node:fs/promises";
import https from "node:https";
import path from "node:path";
import { EVENT_SCHEMA, type JobEvent, eventKey, parseEventKey } from "../policy/jobevents.ts";
import type { MetadataLocation } from "../policy/repository.ts";

export type EventName = Pick<JobEvent, "jobId" | "kind" | "result" | "at">;

export interface MetadataStore {
  add(e: Omit<JobEvent, "schema">): Promise<void>;
  /** Every event, from object names alone. */
  list(): Promise<EventName[]>;
}

const nonce = () => randomBytes(4).toString("hex");

class DirectoryStore implements MetadataStore {
  private readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }

  async add(e: Omit<JobEvent, "schema">): Promise<void> {
    const file = path.join(this.dir, eventKey(e, nonce()));
    await mkdir(path.dirname(file), { recursive: true });
    // Written whole, then renamed: a reader never sees half an event.
    await writeFile(`${file}.tmp`, JSON.stringify({ schema: EVENT_SCHEMA, ...e }));
    await rename(`${file}.tmp`, file);
  }

  async list(): Promise<EventName[]> {
    const jobs = path.join(this.dir, "jobs");
    let names: string[];
    try {
      names = await readdir(jobs, { recursive: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    return names.map((n) => parseEventKey(`jobs/${n}`)).filter((e) => e !== undefined);
  }
}

interface S3Settings {
  endpoint: string;
  bucket: string;
  prefix: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  caFile?: string;
  insecureTls?: boolean;
}

class ObjectStore implements MetadataStore {
  private readonly s: S3Settings;
  private client?: Promise<import("@aws-sdk/client-s3").S3Client>;
  constructor(s: S3Settings) {
    this.s = s;
  }

  private async s3() {
    this.client ??= import("@aws-sdk/client-s3").then(
      ({ S3Client }) =>
        new S3Client({
          endpoint: this.s.endpoint,
          region: this.s.region,
          forcePathStyle: true,
          credentials: { accessKeyId: this.s.accessKeyId, secretAccessKey: this.s.secretAccessKey },
          maxAttempts: 3,
          requestHandler: this.s.endpoint.startsWith("https:")
            ? {
                httpsAgent: new https.Agent({
                  ca: this.s.caFile ? readFileSync(this.s.caFile) : undefined,
                  rejectUnauthorized: !this.s.insecureTls,
                }),
              }
            : undefined,
        }),
    );
    return await this.client;
  }

  async add(e: Omit<JobEvent, "schema">): Promise<void> {
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    await (
      await this.s3()
    ).send(
      new PutObjectCommand({
        Bucket: this.s.bucket,
        Key: `${this.s.prefix}/${eventKey(e, nonce())}`,
        Body: JSON.stringify({ schema: EVENT_SCHEMA, ...e }),
        ContentType: "application/json",
      }),
    );
  }

  async list(): Promise<EventName[]> {
    const { ListObjectsV2Command } = await import("@aws-sdk/client-s3");
    const client = await this.s3();
    const out: EventName[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: this.s.bucket, Prefix: `${this.s.prefix}/jobs/`, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) {
        const e = o.Key && parseEventKey(o.Key);
        if (e) out.push(e);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }
}

/** The store for a location, with S3 credentials from the agent's environment (set from the library's Secret). */
export function metadataStore(
  loc: MetadataLocation | undefined,
  env: NodeJS.ProcessEnv,
  tls: { caFile?: string; insecureTls?: boolean } = {},
): MetadataStore | undefined {
  if (!loc) return undefined;
  if ("path" in loc) return new DirectoryStore(loc.path);
  return new ObjectStore({
    ...loc.s3,
    accessKeyId: env.AWS_ACCESS_KEY_ID ?? "",
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? "",
    ...tls,
  });
}
