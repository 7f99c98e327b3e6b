// The S3 server and restic from the tool cache work together on 127.0.0.1.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { world } from "../harness/testing.ts";
import { tools } from "../harness/tools.ts";

describe("S3 server", () => {
  const s3 = world().s3;
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
  });
  const scratch = mkdtempSync(path.join(os.tmpdir(), "auxo-s3-test-"));
  afterAll(() => {
    client.destroy();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("stores and returns objects with the generated credentials, and refuses wrong ones", async () => {
    const { CreateBucketCommand } = await import("@aws-sdk/client-s3");
    await client.send(new CreateBucketCommand({ Bucket: "objects" }));
    await client.send(new PutObjectCommand({ Bucket: "objects", Key: "a/b.txt", Body: "payload" }));
    const got = await client.send(new GetObjectCommand({ Bucket: "objects", Key: "a/b.txt" }));
    expect(await got.Body?.transformToString()).toBe("payload");
    const wrong = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKey, secretAccessKey: "wrong" },
    });
    await expect(wrong.send(new ListObjectsV2Command({ Bucket: "objects" }))).rejects.toThrow();
    wrong.destroy();
  });

  it("holds a restic repository that restic can back up to and restore from", async () => {
    const { CreateBucketCommand } = await import("@aws-sdk/client-s3");
    await client.send(new CreateBucketCommand({ Bucket: "restic" }));
    const src = path.join(scratch, "src");
    execFileSync("mkdir", ["-p", src]);
    writeFileSync(path.join(src, "db.dump"), "rows\n".repeat(1000));
    const env = {
      ...process.env,
      AWS_ACCESS_KEY_ID: s3.accessKey,
      AWS_SECRET_ACCESS_KEY: s3.secretKey,
      AWS_DEFAULT_REGION: s3.region,
      RESTIC_REPOSITORY: `s3:${s3.endpoint}/restic/team-a/primary`,
      RESTIC_PASSWORD: "local-test",
      RESTIC_CACHE_DIR: path.join(scratch, "cache"),
    };
    const restic = (...args: string[]) => execFileSync(tools().restic, args, { env, encoding: "utf8" });
    restic("init");
    const summary = restic("backup", "--json", "--host", "db-1", src)
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .find((m) => m.message_type === "summary");
    expect(summary.files_new).toBe(1);
    const snaps = JSON.parse(restic("snapshots", "--json"));
    expect(snaps).toHaveLength(1);
    expect(snaps[0].hostname).toBe("db-1");
    restic("restore", "latest", "--target", path.join(scratch, "restored"));
    expect(execFileSync("cat", [path.join(scratch, "restored", src, "db.dump")], { encoding: "utf8" })).toBe("rows\n".repeat(1000));
    const listed = await client.send(new ListObjectsV2Command({ Bucket: "restic", Prefix: "team-a/primary/" }));
    expect(listed.Contents?.some((o) => o.Key === "team-a/primary/config")).toBe(true);
  });
});
