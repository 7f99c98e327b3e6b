// The status writes this process made that its caches may not show yet. A reconcile that decides on an object whose
// cached version is still the one a write of ours was based on decides on a status we already replaced: it would
// take the same decision again (start a second check pod, cut again) or, worse, write back the old status (a
// promotion undone for seconds, during which backups go to the old primary). Controllers skip such a reconcile; the
// watch event of the write enqueues the object again. resourceVersions are opaque: only equality is used.
import type { KubeObject, ResourceType } from "../kube/resources.ts";

/** How long a write may stay unseen before the cache is trusted again (a stalled watch relists within this). */
const MAX_WAIT_MS = 5000;
const MAX_ENTRIES = 10_000;

const keyOf = (r: ResourceType, ns: string | undefined, name: string) => `${r.group}/${r.plural}/${ns ?? ""}/${name}`;

export class OwnWrites {
  private readonly writes = new Map<string, { base: string; at: number }>();

  /** A write of `obj`'s status, decided on the version `obj` had. */
  record(r: ResourceType, obj: KubeObject, written: KubeObject | undefined, now = Date.now()): void {
    const base = obj.metadata.resourceVersion;
    if (!base || written?.metadata?.resourceVersion === base) return;
    const key = keyOf(r, obj.metadata.namespace, obj.metadata.name);
    this.writes.delete(key);
    this.writes.set(key, { base, at: now });
    if (this.writes.size > MAX_ENTRIES) this.writes.delete(this.writes.keys().next().value as string);
  }

  /** True while the cached `obj` is still the version a recent write of ours replaced. */
  behind(r: ResourceType, obj: KubeObject, now = Date.now()): boolean {
    const key = keyOf(r, obj.metadata.namespace, obj.metadata.name);
    const w = this.writes.get(key);
    if (!w) return false;
    if (w.base === obj.metadata.resourceVersion && now - w.at < MAX_WAIT_MS) return true;
    this.writes.delete(key);
    return false;
  }
}
