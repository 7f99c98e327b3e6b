// Probes on demand: a MediaAgent that cannot reach its library (restic retrying a backend, a task that ended
// Unreachable) asks for a probe of that library now, so that its health shows the outage within seconds instead of at
// the next probe interval, and the work that needs it waits. In process: both controllers run in the operator.

/** At most one probe on demand per library in this interval: a failing copy must not turn into a probe storm. */
const MIN_GAP_MS = 20_000;

export class ProbeRequests {
  private readonly asked = new Map<string, { at: number; why: string }>();
  private wake?: (key: string) => void;

  /** The library controller's hook: a request enqueues the library. */
  onRequest(wake: (key: string) => void): void {
    this.wake = wake;
  }

  /** Asks for a probe of namespace/name now; ignored while an earlier request is recent. */
  request(namespace: string, name: string, why: string, now: number): void {
    const key = `${namespace}/${name}`;
    const last = this.asked.get(key);
    if (last && now - last.at < MIN_GAP_MS) return;
    this.asked.set(key, { at: now, why });
    if (this.asked.size > 10_000) this.asked.delete(this.asked.keys().next().value as string);
    this.wake?.(key);
  }

  /** The latest request for a library, if any. */
  latest(namespace: string, name: string): { at: number; why: string } | undefined {
    return this.asked.get(`${namespace}/${name}`);
  }
}
