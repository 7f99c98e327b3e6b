// Lease-based leader election with client-go's semantics (tools/leaderelection): a candidate takes the lease only
// when the holder has not renewed it for leaseDuration as measured on the candidate's own clock (the record's
// timestamps are not trusted across machines); the leader renews every retryPeriod and gives up when it could not
// renew within renewDeadline; on graceful shutdown it releases the lease so that a standby takes over at once.
import type { Logger } from "pino";
import type { KubeClient } from "./client.ts";
import { isConflict, isNotFound } from "./errors.ts";
import { type KubeObject, Leases, defined, formatMicroTime } from "./resources.ts";

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  /** Called once when leadership is lost (not on release); the process should stop working and exit. */
  onStoppedLeading: () => void;
  onNewLeader?: (identity: string) => void;
  now?: () => number;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

type Lease = KubeObject & { spec?: LeaseSpec };

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly o: Required<Omit<LeaderElectionOptions, "onNewLeader">> & Pick<LeaderElectionOptions, "onNewLeader">;
  private readonly log?: Logger;
  private observed?: string; // serialised spec last seen
  private observedAt = 0;
  private lease?: Lease;
  private leading = false;
  private lastRenew = 0;
  private stopped = false;
  private wake?: () => void;
  private loop?: Promise<void>;
  private reportedLeader = "";

  constructor(client: KubeClient, opts: LeaderElectionOptions, log?: Logger) {
    this.client = client;
    this.o = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      now: Date.now,
      ...(defined(opts) as LeaderElectionOptions),
    };
    if (!(this.o.leaseDurationMs > this.o.renewDeadlineMs && this.o.renewDeadlineMs > this.o.retryPeriodMs * 1.2)) {
      throw new Error("leader election needs leaseDuration > renewDeadline > 1.2 × retryPeriod");
    }
    this.log = log?.child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Milliseconds since the last successful renewal (for /healthz). */
  sinceLastRenewMs(): number {
    return this.leading ? this.o.now() - this.lastRenew : 0;
  }

  start(): void {
    this.loop = this.run();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    // Acquire: try every retryPeriod (jittered up to 1.2×, as client-go) until we lead.
    while (!this.stopped && !this.leading) {
      if (await this.tryAcquireOrRenew()) {
        this.leading = true;
        this.lastRenew = this.o.now();
        this.log?.info("became leader");
        this.o.onStartedLeading();
        break;
      }
      await this.sleep(this.o.retryPeriodMs * (1 + Math.random() * 0.2));
    }
    // Renew: every retryPeriod; leadership ends when no renewal succeeded within renewDeadline.
    while (!this.stopped && this.leading) {
      await this.sleep(this.o.retryPeriodMs);
      if (this.stopped) break;
      if (await this.tryAcquireOrRenew()) {
        this.lastRenew = this.o.now();
      } else if (this.o.now() - this.lastRenew > this.o.renewDeadlineMs) {
        this.leading = false;
        this.log?.error("leader election lost: could not renew the lease within the renew deadline");
        this.o.onStoppedLeading();
      }
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.o.now();
    const me = this.o.identity;
    const desired = (prior: LeaseSpec | undefined): LeaseSpec => {
      const mine = prior?.holderIdentity === me;
      return {
        holderIdentity: me,
        leaseDurationSeconds: Math.ceil(this.o.leaseDurationMs / 1000),
        acquireTime: mine && prior?.acquireTime ? prior.acquireTime : formatMicroTime(now),
        renewTime: formatMicroTime(now),
        leaseTransitions: mine ? (prior?.leaseTransitions ?? 0) : (prior?.leaseTransitions ?? 0) + (prior?.holderIdentity ? 1 : 0),
      };
    };
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>(Leases, this.o.namespace, this.o.name);
    } catch (err) {
      if (!isNotFound(err)) {
        this.log?.warn({ err: (err as Error).message }, "could not read the lease");
        return false;
      }
      try {
        this.lease = await this.client.create<Lease>(Leases, {
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec: desired(undefined),
        });
        this.noteLeader(me);
        return true;
      } catch (e) {
        this.log?.debug({ err: (e as Error).message }, "lost the race to create the lease");
        return false;
      }
    }
    const spec = lease.spec ?? {};
    const serial = JSON.stringify(spec);
    if (serial !== this.observed) {
      this.observed = serial;
      this.observedAt = now;
    }
    this.noteLeader(spec.holderIdentity ?? "");
    const heldByOther = !!spec.holderIdentity && spec.holderIdentity !== me;
    if (heldByOther && this.observedAt + (spec.leaseDurationSeconds ?? 15) * 1000 > now) return false;
    try {
      this.lease = await this.client.update<Lease>(Leases, { ...lease, spec: desired(spec) });
      this.observed = JSON.stringify(this.lease.spec);
      this.observedAt = now;
      this.noteLeader(me);
      return true;
    } catch (err) {
      if (!isConflict(err)) this.log?.warn({ err: (err as Error).message }, "could not update the lease");
      return false;
    }
  }

  private noteLeader(identity: string): void {
    if (identity && identity !== this.reportedLeader) {
      this.reportedLeader = identity;
      this.o.onNewLeader?.(identity);
    }
  }

  /** Stops campaigning; a leader releases the lease (empty holder) so that a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    if (this.leading && this.lease) {
      this.leading = false;
      try {
        const now = formatMicroTime(this.o.now());
        await this.client.update<Lease>(Leases, {
          ...this.lease,
          spec: { ...this.lease.spec, holderIdentity: "", leaseDurationSeconds: 1, acquireTime: now, renewTime: now },
        });
        this.log?.info("released the lease");
      } catch (err) {
        this.log?.warn({ err: (err as Error).message }, "could not release the lease; the standby takes over when it expires");
      }
    }
  }
}
