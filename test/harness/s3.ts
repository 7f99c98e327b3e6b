// A real S3-compatible server on 127.0.0.1: versitygw's POSIX backend (buckets are folders, objects are files),
// with generated root credentials. Chosen over MinIO because MinIO's community edition is archived and
// source-only, while versitygw is actively released, Apache-2.0, builds from the Go module proxy as one binary
// and needs no database.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { freePort, waitFor } from "./net.ts";
import { ManagedProcess } from "./proc.ts";
import { tools } from "./tools.ts";

export interface S3ServerOptions {
  dir?: string;
  keepDir?: boolean;
}

export class S3Server {
  readonly dir: string;
  readonly accessKey = `AUXO${randomBytes(8).toString("hex").toUpperCase()}`;
  readonly secretKey = randomBytes(24).toString("base64url");
  readonly region = "us-east-1";
  port = 0;
  private proc?: ManagedProcess;
  private readonly opts: S3ServerOptions;
  private s3?: S3Client;

  constructor(opts: S3ServerOptions = {}) {
    this.opts = opts;
    this.dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), "auxo-s3-"));
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The folder that holds a bucket's objects, for tests that look at the stored files. */
  bucketPath(bucket: string): string {
    return path.join(this.dir, "data", bucket);
  }

  async start(): Promise<void> {
    mkdirSync(path.join(this.dir, "data"), { recursive: true });
    this.port = await freePort();
    this.proc = new ManagedProcess({
      name: "versitygw",
      command: tools().versitygw,
      args: ["--port", `127.0.0.1:${this.port}`, "--region", this.region, "--quiet", "posix", path.join(this.dir, "data")],
      // Credentials go through the environment, never the command line (visible in ps).
      env: { ...process.env, ROOT_ACCESS_KEY_ID: this.accessKey, ROOT_SECRET_ACCESS_KEY: this.secretKey },
      logFile: path.join(this.dir, "versitygw.log"),
    });
    this.proc.start();
    const proc = this.proc;
    await waitFor("versitygw to listen", async () => {
      proc.assertRunning();
      return await new Promise<true | undefined>((resolve) => {
        const req = http.get(`${this.endpoint}/`, { timeout: 1000 }, (res) => {
          res.resume();
          resolve(true); // any HTTP answer (403 without credentials) means it serves
        });
        req.on("error", () => resolve(undefined));
        req.on("timeout", () => req.destroy());
      });
    });
  }

  /** An S3 client for this server (path-style, loopback). */
  client(): S3Client {
    this.s3 ??= new S3Client({
      endpoint: this.endpoint,
      region: this.region,
      forcePathStyle: true,
      credentials: { accessKeyId: this.accessKey, secretAccessKey: this.secretKey },
    });
    return this.s3;
  }

  async createBucket(name: string): Promise<void> {
    await this.client().send(new CreateBucketCommand({ Bucket: name }));
  }

  /** The environment a restic (or any AWS SDK) client needs to use this server. */
  env(): Record<string, string> {
    return { AWS_ACCESS_KEY_ID: this.accessKey, AWS_SECRET_ACCESS_KEY: this.secretKey, AWS_DEFAULT_REGION: this.region };
  }

  processes(): ManagedProcess[] {
    return this.proc ? [this.proc] : [];
  }

  async stop(): Promise<void> {
    this.s3?.destroy();
    await this.proc?.stop();
    if (!this.opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
