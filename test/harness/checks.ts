// What tests check files and failures with: a tree's contents by hash, and the EngineError a call must fail with.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { EngineError } from "../../src/engine/errors.ts";

/** Every file below `root`: its path relative to `root` → sha256 of its contents. */
export function hashTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = path.join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else out[path.relative(root, p)] = createHash("sha256").update(readFileSync(p)).digest("hex");
    }
  };
  walk(root);
  return out;
}

/** The EngineError `p` rejects with; anything else (a success, another error) fails the test. */
export async function engineFailure(p: Promise<unknown>): Promise<EngineError> {
  const err = await p.then(
    (r) => new Error(`expected a failure, got ${JSON.stringify(r)}`),
    (e: unknown) => e,
  );
  if (!(err instanceof EngineError)) throw err;
  return err;
}
