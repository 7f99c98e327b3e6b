// Prometheus metrics with controller-runtime's names and labels, so that existing controller-runtime dashboards
// and alerts work for Auxo unchanged.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { LibraryStatus } from "../api/v1alpha1/library.ts";

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  readonly registry = new Registry();
  readonly reconcileTotal: Counter<"controller" | "result">;
  readonly reconcileErrors: Counter<"controller">;
  readonly terminalReconcileErrors: Counter<"controller">;
  readonly reconcileTime: Histogram<"controller">;
  readonly activeWorkers: Gauge<"controller">;
  readonly maxConcurrentReconciles: Gauge<"controller">;
  readonly workqueueDepth: Gauge<"name" | "controller">;
  readonly workqueueAdds: Counter<"name" | "controller">;
  readonly workqueueRetries: Counter<"name" | "controller">;
  readonly workqueueQueueDuration: Histogram<"name" | "controller">;
  readonly workqueueWorkDuration: Histogram<"name" | "controller">;
  readonly leaderElectionMasterStatus: Gauge<"name">;
  readonly restClientRequests: Counter<"code" | "method" | "host">;
  readonly restClientLatency: Histogram<"verb">;
  readonly copiedJobs: Counter<"namespace" | "policy" | "copy">;
  readonly copiedBytes: Counter<"namespace" | "policy" | "copy">;
  readonly auxCopyRuns: Histogram<"namespace" | "policy" | "phase">;
  readonly copyBacklog: Gauge<"namespace" | "policy" | "copy">;
  readonly copyLag: Gauge<"namespace" | "policy" | "copy">;
  readonly agedJobs: Counter<"namespace" | "policy" | "copy">;
  readonly reclaimedBytes: Counter<"namespace" | "policy" | "copy">;
  readonly agingRuns: Counter<"namespace" | "policy" | "copy" | "result">;
  readonly verificationRuns: Counter<"namespace" | "policy" | "copy" | "result">;
  readonly verifiedJobs: Counter<"namespace" | "policy" | "copy" | "result">;
  readonly snapVaultSnapshots: Gauge<"namespace" | "snapvault" | "state">;
  readonly snapVaultBytes: Counter<"namespace" | "snapvault">;
  readonly snapVaultRuns: Counter<"namespace" | "snapvault" | "phase">;
  readonly snapVaultBackupCopies: Counter<"namespace" | "snapvault" | "type">;
  readonly libraryPhase: Gauge<"namespace" | "library" | "phase">;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const r = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.reconcileTotal = new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller",
      labelNames: ["controller", "result"],
      registers: r,
    });
    this.reconcileErrors = new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller",
      labelNames: ["controller"],
      registers: r,
    });
    this.terminalReconcileErrors = new Counter({
      name: "controller_runtime_terminal_reconcile_errors_total",
      help: "Total number of terminal reconciliation errors per controller",
      labelNames: ["controller"],
      registers: r,
    });
    this.reconcileTime = new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller",
      labelNames: ["controller"],
      buckets: latencyBuckets,
      registers: r,
    });
    this.activeWorkers = new Gauge({
      name: "controller_runtime_active_workers",
      help: "Number of currently used workers per controller",
      labelNames: ["controller"],
      registers: r,
    });
    this.maxConcurrentReconciles = new Gauge({
      name: "controller_runtime_max_concurrent_reconciles",
      help: "Maximum number of concurrent reconciles per controller",
      labelNames: ["controller"],
      registers: r,
    });
    this.workqueueDepth = new Gauge({
      name: "workqueue_depth",
      help: "Current depth of workqueue",
      labelNames: ["name", "controller"],
      registers: r,
    });
    this.workqueueAdds = new Counter({
      name: "workqueue_adds_total",
      help: "Total number of adds handled by workqueue",
      labelNames: ["name", "controller"],
      registers: r,
    });
    this.workqueueRetries = new Counter({
      name: "workqueue_retries_total",
      help: "Total number of retries handled by workqueue",
      labelNames: ["name", "controller"],
      registers: r,
    });
    this.workqueueQueueDuration = new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "How long in seconds an item stays in workqueue before being requested",
      labelNames: ["name", "controller"],
      buckets: latencyBuckets,
      registers: r,
    });
    this.workqueueWorkDuration = new Histogram({
      name: "workqueue_work_duration_seconds",
      help: "How long in seconds processing an item from workqueue takes",
      labelNames: ["name", "controller"],
      buckets: latencyBuckets,
      registers: r,
    });
    this.leaderElectionMasterStatus = new Gauge({
      name: "leader_election_master_status",
      help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease",
      labelNames: ["name"],
      registers: r,
    });
    this.restClientRequests = new Counter({
      name: "rest_client_requests_total",
      help: "Number of HTTP requests, partitioned by status code, method, and host",
      labelNames: ["code", "method", "host"],
      registers: r,
    });
    this.restClientLatency = new Histogram({
      name: "rest_client_request_duration_seconds",
      help: "Request latency in seconds, broken down by verb",
      labelNames: ["verb"],
      buckets: latencyBuckets,
      registers: r,
    });
    const copyLabels = ["namespace", "policy", "copy"] as const;
    this.copiedJobs = new Counter({
      name: "auxo_auxcopy_copied_jobs_total",
      help: "Backup jobs copied to a copy by aux copy",
      labelNames: copyLabels,
      registers: r,
    });
    this.copiedBytes = new Counter({
      name: "auxo_auxcopy_copied_bytes_total",
      help: "Bytes (as backed up) of the jobs copied to a copy by aux copy",
      labelNames: copyLabels,
      registers: r,
    });
    this.auxCopyRuns = new Histogram({
      name: "auxo_auxcopy_run_duration_seconds",
      help: "Duration of finished AuxCopyJobs, by final phase",
      labelNames: ["namespace", "policy", "phase"],
      buckets: [1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600],
      registers: r,
    });
    this.copyBacklog = new Gauge({
      name: "auxo_copy_backlog_jobs",
      help: "Jobs selected for a copy and not copied yet, as of the latest aux copy",
      labelNames: copyLabels,
      registers: r,
    });
    this.copyLag = new Gauge({
      name: "auxo_copy_lag_seconds",
      help: "How far the newest job on a copy is behind the newest valid job on its source, as of the latest aux copy",
      labelNames: copyLabels,
      registers: r,
    });
    this.agedJobs = new Counter({
      name: "auxo_data_aging_aged_jobs_total",
      help: "Jobs aged (forgotten) on a copy by data aging",
      labelNames: copyLabels,
      registers: r,
    });
    this.reclaimedBytes = new Counter({
      name: "auxo_data_aging_reclaimed_bytes_total",
      help: "Bytes freed in a copy's repository by data aging's prune",
      labelNames: copyLabels,
      registers: r,
    });
    this.agingRuns = new Counter({
      name: "auxo_data_aging_runs_total",
      help: "Data aging runs of a copy, by result (completed, stopped by the mass-deletion breaker, failed)",
      labelNames: [...copyLabels, "result"],
      registers: r,
    });
    this.verificationRuns = new Counter({
      name: "auxo_verification_runs_total",
      help: "Data verification runs of a copy, by result (completed, including runs that found bad jobs; failed)",
      labelNames: [...copyLabels, "result"],
      registers: r,
    });
    this.verifiedJobs = new Counter({
      name: "auxo_verification_jobs_total",
      help: "Jobs read by data verification on a copy, by result (ok, failed: Bad on the copy)",
      labelNames: [...copyLabels, "result"],
      registers: r,
    });
    this.snapVaultSnapshots = new Gauge({
      name: "auxo_snapvault_snapshots",
      help: "Snapshots a SnapVault's status lists, by state (Pending, Copying, Copied, Retrying, Missing)",
      labelNames: ["namespace", "snapvault", "state"],
      registers: r,
    });
    this.snapVaultBytes = new Counter({
      name: "auxo_snapvault_copied_bytes_total",
      help: "Bytes of snapshots a SnapVault copied to its destination",
      labelNames: ["namespace", "snapvault"],
      registers: r,
    });
    this.snapVaultRuns = new Counter({
      name: "auxo_snapvault_runs_total",
      help: "SnapVault runs that ended, by phase (Completed, AvailableWithMissingSnaps, Failed)",
      labelNames: ["namespace", "snapvault", "phase"],
      registers: r,
    });
    this.snapVaultBackupCopies = new Counter({
      name: "auxo_snapvault_backup_copies_total",
      help: "Backup jobs a SnapVault wrote to its storage policy's primary copy, by type (full, incremental, differential)",
      labelNames: ["namespace", "snapvault", "type"],
      registers: r,
    });
    this.libraryPhase = new Gauge({
      name: "auxo_library_phase",
      help: "A Library's status.phase: 1 for the phase it is in (Pending, Ready, Unreachable), 0 for the others",
      labelNames: ["namespace", "library", "phase"],
      registers: r,
    });
  }

  /** A Library's phase as its status shows it; undefined (the Library is gone) removes its series. */
  setLibraryPhase(namespace: string, library: string, phase: LibraryPhase | undefined): void {
    for (const p of libraryPhases) {
      if (phase === undefined) this.libraryPhase.remove({ namespace, library, phase: p });
      else this.libraryPhase.set({ namespace, library, phase: p }, p === phase ? 1 : 0);
    }
  }
}

type LibraryPhase = NonNullable<LibraryStatus["phase"]>;
// Every phase, so that a query on any of them finds its 0 or 1 (the compiler checks each is a phase).
const libraryPhases: readonly LibraryPhase[] = ["Pending", "Ready", "Unreachable"];
