// Aging of a SnapVault's destination after each run (docs/snapvault.md). A Vault ages its copies by its own retention
// through the data aging rules (policy/retention.ts): days, and "recovery points" as cycles (every copy is a full, so
// a cycle is one copy; the newest is the open one), with extended rules and the completed-with-errors flag. A Mirror follows its source: it
// forgets exactly the copies whose VolumeSnapshot is gone while the PVC still exists, never the newest copy of a PVC.
// Pure.
import type { SnapVaultSpec } from "../api/v1alpha1/index.ts";
import type { CatalogEntry } from "./catalog.ts";
import type { RetentionSpec } from "./retention.ts";

/** The data aging retention of a Vault's copies. */
export function vaultRetention(r: SnapVaultSpec["retention"]): RetentionSpec {
  const days = r?.days ?? 30;
  const points = r?.recoveryPoints ?? 0;
  return {
    enableDataAging: true,
    days,
    // The newest cycle counts as open (never complete): N copies are the open one and N - 1 complete cycles.
    ...(points > 0 ? { cycles: points - 1 } : { daysOnly: true }),
    extended: r?.extended as RetentionSpec["extended"],
    ignoreCompletedWithErrorsForExtendedRetention: r?.ignoreCompletedWithErrorsForExtendedRetention ?? false,
  };
}

/** Snapshot IDs a Mirror forgets: those of `jobs` on the destination, but never the newest copy of a PVC. */
export function mirrorForgets(catalog: readonly CatalogEntry[], jobs: readonly string[]): string[] {
  const forget = new Set(jobs);
  const newest = new Map<string, CatalogEntry>();
  for (const e of catalog) {
    const k = `${e.client}\u0000${e.subclient}`;
    const n = newest.get(k);
    if (!n || Date.parse(e.startTime) > Date.parse(n.startTime)) newest.set(k, e);
  }
  const keep = new Set([...newest.values()].map((e) => e.snapshotId));
  return catalog.filter((e) => forget.has(e.jobId) && !keep.has(e.snapshotId)).map((e) => e.snapshotId);
}
