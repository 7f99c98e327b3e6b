// init: the copy's repository, created with the source's chunker parameters (so deduplication works across copies),
// or the one already there if it opens with the copy's password. The operator records its ID.
import { EngineError } from "../../engine/errors.ts";
import type { Handler } from "../context.ts";

export const init: Handler<"init"> = async (spec, { engine, repo, timeoutMs }) => {
  const target = repo(spec.target);
  try {
    const id = await engine.init(target, { chunkerFrom: spec.source && repo(spec.source), timeoutMs });
    return { ok: true, created: true, id: id || (await engine.config(target, timeoutMs)).id };
  } catch (err) {
    if (!(err instanceof EngineError && err.kind === "RepositoryExists")) throw err;
    // Already there (a retried init, or a repository that outlived the cluster): it must open with our password,
    // and the operator records its ID (a second copy on the same ID is refused).
    await engine.snapshots(target, timeoutMs);
    return { ok: true, created: false, id: (await engine.config(target, timeoutMs)).id };
  }
};
