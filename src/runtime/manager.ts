// The manager: shared informers (caches run on every replica, so a standby is warm), controllers whose workers
// run only on the leader, leader election, events, and the health and metrics endpoints. stop() is the graceful
// path for SIGTERM: stop the workers (letting reconciles finish), release the lease, stop the caches.
import type { Logger } from "pino";
import type { KubeClient } from "../kube/client.ts";
import { EventRecorder } from "../kube/events.ts";
import { Informer, type InformerOptions } from "../kube/informer.ts";
import { LeaderElector } from "../kube/leader.ts";
import { type KubeObject, type ResourceType, Secrets } from "../kube/resources.ts";
import { NamedSecrets } from "../kube/secrets.ts";
import { HealthServer } from "../observability/health.ts";
import type { Metrics } from "../observability/metrics.ts";
import { OwnWrites } from "./writes.ts";
import { Controller, type ControllerOptions } from "./controller.ts";

export interface LeaderElectionConfig {
  namespace: string;
  name: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export interface ManagerOptions {
  client: KubeClient;
  log: Logger;
  metrics: Metrics;
  identity: string;
  /** false runs the workers at once (a single replica, or tests). */
  leaderElection: LeaderElectionConfig | false;
  /** host:port for /metrics, /healthz and /readyz; omitted = no server. */
  probeAddress?: string;
  /** Extra address serving the same endpoints (the metrics port, when it differs from the probe port). */
  metricsAddress?: string;
  /** Called when the process must end (leadership lost): controller-runtime exits, and so do we by default. */
  onFatal?: (reason: string) => void;
  informerDefaults?: InformerOptions;
}

export class Manager {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly events: EventRecorder;
  readonly identity: string;
  /** Status writes the caches may not show yet (runtime/writes.ts). */
  readonly writes = new OwnWrites();
  private readonly opts: ManagerOptions;
  private readonly informers = new Map<string, Informer<KubeObject>>();
  private readonly controllers: Controller[] = [];
  private namedSecrets?: NamedSecrets;
  private readonly servers: HealthServer[] = [];
  private elector?: LeaderElector;
  private leading = false;
  private startedAt = 0;
  /** Bound ports of the servers, in the order probe, metrics. */
  ports: number[] = [];

  constructor(opts: ManagerOptions) {
    this.opts = opts;
    this.client = opts.client;
    this.log = opts.log;
    this.metrics = opts.metrics;
    this.identity = opts.identity;
    this.events = new EventRecorder(opts.client, { component: "auxo-operator", instance: opts.identity }, opts.log);
  }

  /** A shared informer: one list/watch per resource type and selector, however many controllers use it. */
  informer<T extends KubeObject = KubeObject>(type: ResourceType, opts: InformerOptions = {}): Informer<T> {
    const key = JSON.stringify([
      type.group,
      type.version,
      type.plural,
      opts.namespace,
      opts.labelSelector,
      opts.fieldSelector,
      opts.metadataOnly ?? false,
    ]);
    let inf = this.informers.get(key);
    if (!inf) {
      inf = new Informer(this.client, type, { ...this.opts.informerDefaults, ...opts }, this.log);
      this.informers.set(key, inf);
    }
    return inf as unknown as Informer<T>;
  }

  /**
   * Secrets, shared by every controller: a metadata-only informer (watch it) and the data of only the Secrets
   * that controllers read by name. The operator never caches a whole Secret informer: that would hold every
   * credential of the cluster in memory.
   */
  secrets(): NamedSecrets {
    this.namedSecrets ??= new NamedSecrets(this.client, this.informer(Secrets, { metadataOnly: true }));
    return this.namedSecrets;
  }

  /** Every object the manager's caches hold (informer stores and the named Secrets): for tests and benchmarks. */
  cachedObjects(): unknown[] {
    const out: unknown[] = [];
    for (const inf of this.informers.values()) out.push(...inf.list());
    out.push(...(this.namedSecrets?.cached() ?? []));
    return out;
  }

  addController<T extends KubeObject>(opts: ControllerOptions<T>): Controller<T> {
    const c = new Controller(opts, this.log, this.metrics, this.writes);
    this.controllers.push(c as unknown as Controller);
    if (this.leading) c.start();
    return c;
  }

  isLeader(): boolean {
    return this.leading;
  }

  synced(): boolean {
    return [...this.informers.values()].every((i) => i.hasSynced());
  }

  async start(): Promise<void> {
    this.startedAt = Date.now();
    const le = this.opts.leaderElection;
    const leaseName = le ? le.name : "";
    for (const address of [this.opts.probeAddress, this.opts.metricsAddress]) {
      if (!address) continue;
      const s = new HealthServer(this.metrics);
      s.addHealthCheck("ping", () => undefined);
      if (le) {
        // A leader that cannot renew is unhealthy well before it gives up (client-go's HealthzAdaptor).
        s.addHealthCheck("leaderElection", () => {
          const since = this.elector?.sinceLastRenewMs() ?? 0;
          const limit = (le.leaseDurationMs ?? 15_000) + 20_000;
          return since > limit ? `last lease renewal ${Math.round(since / 1000)} s ago` : undefined;
        });
      }
      s.addReadyCheck("informers", () => (this.synced() ? undefined : "caches not synced"));
      this.ports.push(await s.listen(address));
      this.servers.push(s);
    }
    for (const inf of this.informers.values()) inf.start();
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync()));
    this.log.info({ informers: this.informers.size, ms: Date.now() - this.startedAt }, "caches synced");
    if (!le) {
      this.becomeLeader();
      return;
    }
    this.metrics.leaderElectionMasterStatus.set({ name: leaseName }, 0);
    this.elector = new LeaderElector(
      this.client,
      {
        ...le,
        identity: this.identity,
        onStartedLeading: () => this.becomeLeader(leaseName),
        onStoppedLeading: () => {
          this.leading = false;
          this.metrics.leaderElectionMasterStatus.set({ name: leaseName }, 0);
          (
            this.opts.onFatal ??
            ((reason: string) => {
              this.log.fatal(reason);
              process.exit(1);
            })
          )("leader election lost");
        },
        onNewLeader: (id) => this.log.info({ leader: id }, id === this.identity ? "this replica leads" : "another replica leads"),
      },
      this.log,
    );
    this.elector.start();
  }

  private becomeLeader(leaseName?: string): void {
    this.leading = true;
    if (leaseName) this.metrics.leaderElectionMasterStatus.set({ name: leaseName }, 1);
    this.log.info({ controllers: this.controllers.map((c) => c.name) }, "starting workers");
    for (const c of this.controllers) c.start();
  }

  /** Graceful stop: workers drain, the lease is released (fast handover), caches and servers stop. */
  async stop(): Promise<void> {
    await Promise.all(this.controllers.map((c) => c.stop()));
    await this.elector?.stop();
    this.leading = false;
    await this.events.flush();
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
    await Promise.all(this.servers.map((s) => s.close()));
    this.client.close();
  }
}
