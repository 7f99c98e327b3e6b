// The per-job metadata folder beside a repository (policy/jobevents.ts): a directory on a filesystem library, a key
// prefix on S3. The agent only adds events and lists them; it never rewrites or deletes one.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import https from "node:https";
import path from "node:path";
import { EVENT_SCHEMA, type JobEvent, eventKey, parseEventKey } from "../policy/jobevents.ts";
import { parseRunKey, RUN_SCHEMA, type RunName, type RunRecord, runKey } from "../policy/runrecords.ts";
import type { MetadataLocation } from "../policy/repository.ts";

export type EventName = Pick<JobEvent, "jobId" | "kind" | "result" | "at">;

export interface MetadataStore {
  add(e: Omit<JobEvent, "schema">): Promise<void>;
  /** Every event, from object names alone. */
  list(): Promise<EventName[]>;
}

/** The run records in the same folder (policy/runrecords.ts). */
export interface RunStore {
  /** A run's record (runs/<kind>/...). */
  addRun(r: Omit<RunRecord, "schema">): Promise<void>;
  /** Every run record, from object names alone. */
  listRuns(): Promise<RunName[]>;
  /** One record's contents. */
  readRun(key: string): Promise<RunRecord>;
  /** The repository's identity as recorded beside it (repository.json), if any. */
  readIdentity(): Promise<RepositoryIdentity | undefined>;
  writeIdentity(i: RepositoryIdentity): Promise<void>;
}

/** Which restic repository the folder belongs to: a repository replaced at the location is never adopted. */
export interface RepositoryIdentity {
  schema: "auxo.dev/repository/v1";
  repositoryId: string;
  recordedAt: string;
  pod?: string;
}

const IDENTITY = "repository.json";

const nonce = () => randomBytes(4).toString("hex");

class DirectoryStore implements MetadataStore, RunStore {
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

  async addRun(r: Omit<RunRecord, "schema">): Promise<void> {
    const file = path.join(this.dir, runKey(r));
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(`${file}.tmp`, JSON.stringify({ schema: RUN_SCHEMA, ...r }));
    await rename(`${file}.tmp`, file);
  }

  async listRuns(): Promise<RunName[]> {
    let names: string[];
    try {
      names = await readdir(path.join(this.dir, "runs"), { recursive: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    return names.map((n) => parseRunKey(`runs/${n}`)).filter((e) => e !== undefined);
  }

  async readRun(key: string): Promise<RunRecord> {
    return JSON.parse(await readFile(path.join(this.dir, key), "utf8")) as RunRecord;
  }

  async readIdentity(): Promise<RepositoryIdentity | undefined> {
    try {
      return JSON.parse(await readFile(path.join(this.dir, IDENTITY), "utf8")) as RepositoryIdentity;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async writeIdentity(i: RepositoryIdentity): Promise<void> {
    const file = path.join(this.dir, IDENTITY);
    await mkdir(this.dir, { recursive: true });
    await writeFile(`${file}.tmp`, JSON.stringify(i));
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

class ObjectStore implements MetadataStore, RunStore {
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

  private async keys(folder: string): Promise<string[]> {
    const { ListObjectsV2Command } = await import("@aws-sdk/client-s3");
    const client = await this.s3();
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: this.s.bucket, Prefix: `${this.s.prefix}/${folder}/`, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) if (o.Key) out.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async list(): Promise<EventName[]> {
    return (await this.keys("jobs")).map((k) => parseEventKey(k)).filter((e) => e !== undefined);
  }

  async addRun(r: Omit<RunRecord, "schema">): Promise<void> {
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    await (
      await this.s3()
    ).send(
      new PutObjectCommand({
        Bucket: this.s.bucket,
        Key: `${this.s.prefix}/${runKey(r)}`,
        Body: JSON.stringify({ schema: RUN_SCHEMA, ...r }),
        ContentType: "application/json",
      }),
    );
  }

  async listRuns(): Promise<RunName[]> {
    return (await this.keys("runs")).map((k) => parseRunKey(k)).filter((e) => e !== undefined);
  }

  async readIdentity(): Promise<RepositoryIdentity | undefined> {
    const { GetObjectCommand, NoSuchKey } = await import("@aws-sdk/client-s3");
    try {
      const res = await (await this.s3()).send(new GetObjectCommand({ Bucket: this.s.bucket, Key: `${this.s.prefix}/${IDENTITY}` }));
      return JSON.parse((await res.Body?.transformToString()) ?? "{}") as RepositoryIdentity;
    } catch (err) {
      if (err instanceof NoSuchKey || (err as { name?: string }).name === "NoSuchKey") return undefined;
      throw err;
    }
  }

  async writeIdentity(i: RepositoryIdentity): Promise<void> {
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    await (
      await this.s3()
    ).send(
      new PutObjectCommand({
        Bucket: this.s.bucket,
        Key: `${this.s.prefix}/${IDENTITY}`,
        Body: JSON.stringify(i),
        ContentType: "application/json",
      }),
    );
  }

  async readRun(key: string): Promise<RunRecord> {
    const { GetObjectCommand } = await import("@aws-sdk/client-s3");
    const res = await (await this.s3()).send(new GetObjectCommand({ Bucket: this.s.bucket, Key: `${this.s.prefix}/${key}` }));
    return JSON.parse((await res.Body?.transformToString()) ?? "{}") as RunRecord;
  }
}

/** The store for a location, with S3 credentials from the agent's environment (set from the library's Secret). */
export function metadataStore(
  loc: MetadataLocation | undefined,
  env: NodeJS.ProcessEnv,
  tls: { caFile?: string; insecureTls?: boolean } = {},
): (MetadataStore & RunStore) | undefined {
  if (!loc) return undefined;
  if ("path" in loc) return new DirectoryStore(loc.path);
  return new ObjectStore({
    ...loc.s3,
    accessKeyId: env.AWS_ACCESS_KEY_ID ?? "",
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? "",
    ...tls,
  });
}
