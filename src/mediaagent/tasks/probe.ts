// probe: can the library be reached and written with the credentials the pod has? Nothing of a repository is touched.
import { randomBytes } from "node:crypto";
import { accessSync, constants, mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { probeS3 } from "../../engine/backend.ts";
import { EngineError } from "../../engine/errors.ts";
import type { Handler } from "../context.ts";

export const probe: Handler<"probe"> = async (spec, ctx) => {
  const t = spec.target.repository;
  const within = Math.min(ctx.timeoutMs, 60_000);
  if (t.startsWith("/")) {
    // A filesystem library: the mounted folder must exist and be writable.
    mkdirSync(t, { recursive: true });
    accessSync(t, constants.W_OK);
    const marker = path.join(t, `.auxo-probe-${randomBytes(4).toString("hex")}`);
    writeFileSync(marker, "probe");
    rmSync(marker);
    return { ok: true, message: `${t} is writable` };
  }
  // S3: a marker object written and deleted under the library's prefix proves bucket, prefix and credentials.
  if (t.startsWith("s3:")) return { ok: true, message: await probeS3(ctx.repo(spec.target), within) };
  // A REST server: opening a repository that is not there proves the server answers (and the credentials are
  // accepted); anything else is a problem.
  const pw = path.join(ctx.tmp, "probe-password");
  writeFileSync(pw, randomBytes(16).toString("hex"), { mode: 0o600 });
  try {
    await ctx.engine.probe(ctx.repo({ ...spec.target, repository: `${t.replace(/\/+$/, "")}/.auxo-probe` }, pw), within);
  } catch (err) {
    if (!(err instanceof EngineError && err.kind === "RepositoryNotFound")) throw err;
  }
  return { ok: true, message: "storage answered" };
};
