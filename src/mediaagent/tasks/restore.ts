// restore: one job of the copy into the mounted claim (`kubectl auxo restore`). The job's snapshot is found by its
// job id in the copy's catalog; a job the copy lacks fails JobNotFound (the plugin then tries the next copy). A
// snapshot of one folder is restored into the target folder itself (restic's <snapshot>:<path>), so the files land
// where the user asked, not under the path they had when backed up.
import path from "node:path";
import { EngineError } from "../../engine/errors.ts";
import { toCatalogEntry } from "../../policy/catalog.ts";
import type { Handler } from "../context.ts";

export const restore: Handler<"restore"> = async (spec, { engine, repo, timeoutMs }) => {
  const r = spec.restore;
  if (!r) throw new Error("restore needs a job and a target folder");
  const target = path.join(r.mountPath, r.path);
  if (target !== r.mountPath && !target.startsWith(`${r.mountPath}/`))
    throw new EngineError("Failed", "restore", null, "", `path ${JSON.stringify(r.path)} leaves the claim`);
  const snapshots = await engine.snapshots(repo(spec.target), timeoutMs);
  const s = snapshots.find((x) => toCatalogEntry(x).jobId === r.jobId);
  if (!s) throw new EngineError("JobNotFound", "restore", null, "", `job ${r.jobId} is not on this copy`);
  const from = s.paths.length === 1 ? (s.paths[0] as string) : undefined;
  const summary = await engine.restore(repo(spec.target), s.id, target, { subfolder: from, timeoutMs });
  return { ok: true, snapshotId: s.id, path: r.path || "/", ...summary };
};
