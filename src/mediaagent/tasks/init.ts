// init: the copy's repository, created with the source's chunker parameters (so deduplication works across copies),
// or the one already there if it opens with the copy's password. The operator records its ID, and so does the
// folder beside the repository (repository.json): after the cluster is lost, a repository found at the location is
// adopted only if it is the one recorded there, never one that replaced it (docs/disaster-recovery.md).
import { EngineError } from "../../engine/errors.ts";
import type { Handler } from "../context.ts";
import { messageOf } from "../context.ts";
import { metadataStore } from "../metadata.ts";
import type { TaskSpec } from "../protocol.ts";

/** The identity beside the repository: checked against the ID found, written when there is none. */
async function checkRecordedIdentity(spec: TaskSpec, env: NodeJS.ProcessEnv, id: string): Promise<{ metadataError?: string }> {
  const store = metadataStore(spec.target.metadata, env, spec.target);
  if (!store) return {};
  const recorded = await store.readIdentity();
  if (recorded && recorded.repositoryId !== id)
    throw new EngineError(
      "RepositoryMismatch",
      "init",
      null,
      "",
      `init: the repository at this location has ID ${id.slice(0, 12)}, but the record beside it names ${recorded.repositoryId.slice(0, 12)}: another repository took its place; Auxo adopts neither (docs/disaster-recovery.md)`,
    );
  if (recorded) return {};
  try {
    await store.writeIdentity({
      schema: "auxo.dev/repository/v1",
      repositoryId: id,
      recordedAt: new Date().toISOString(),
      pod: env.AUXO_POD_NAME,
    });
    return {};
  } catch (err) {
    return { metadataError: `the repository's identity was not recorded beside it: ${messageOf(err)}` };
  }
}

export const init: Handler<"init"> = async (spec, { engine, env, repo, timeoutMs }) => {
  const target = repo(spec.target);
  try {
    const id =
      (await engine.init(target, { chunkerFrom: spec.source && repo(spec.source), timeoutMs })) ||
      (await engine.config(target, timeoutMs)).id;
    return { ok: true, created: true, id, ...(await checkRecordedIdentity(spec, env, id)) };
  } catch (err) {
    if (!(err instanceof EngineError && err.kind === "RepositoryExists")) throw err;
    // Already there (a retried init, or a repository that outlived the cluster): it must open with our password and
    // be the repository recorded beside it; the operator records its ID (a second copy on the same ID is refused).
    await engine.snapshots(target, timeoutMs);
    const id = (await engine.config(target, timeoutMs)).id;
    return { ok: true, created: false, id, ...(await checkRecordedIdentity(spec, env, id)) };
  }
};
