// A SnapVault run, decided from plain facts (docs/snapvault.md). A run starts on the schedule or on request (inside
// the storage policy's operation windows), cuts VolumeSnapshots of the selected PVCs, and copies every ready snapshot
// the destination lacks, oldest first, each through a volume restored from it and a MediaAgent pod that mounts it
// read-only, within the destination library's streams. Source faults (an offline volume, a hung driver, a snapshot
// that reports an error) cost the snapshot one attempt of its retry budget and leave it Retrying for later runs;
// destination faults park the copy and cost nothing. Snapshots whose source is gone are Missing at once. The run
// ends Completed, AvailableWithMissingSnaps (some snapshot of it is Missing) or Failed (the destination kept failing).
// Every reconcile also applies the source's retention to the snapshots Auxo cut (never before their copy is settled)
// and removes restored volumes and pods no copy needs. Pure: the plan says what to create and delete.
import type { SnapVaultStatus } from "../api/v1alpha1/index.ts";
import { parseDuration } from "./duration.ts";
import { Annotation, Label, MANAGED_BY } from "./labels.ts";
import { labelValue } from "./names.ts";
import type { ReadyPlan } from "./plan.ts";
import type { Problem } from "./references.ts";
import type { RepositoryAccess } from "./repository.ts";
import { retryVerdict } from "./snapretry.ts";
import { backupCopies, backupSettled, backupSummary, inlineBackupLeft, markInline, startRound } from "./snapvault-backup.ts";
import { vaultRetention } from "./snapvault-aging.ts";
import {
  ACTIVE,
  agePodName,
  backoff,
  backupClaimName,
  backupPodName,
  bound,
  CACHE_GRACE_MS,
  claimName,
  COPY_DEADLINE_SECONDS,
  copyPodName,
  countStates,
  Ctx,
  type Entry,
  flight,
  hash8,
  initPodName,
  MAX_DESTINATION_FAILURES,
  mountPathOf,
  nextRunAt,
  restoreClaim,
  type Run,
  snapshotName,
  type SnapVaultPlan,
  type SnapVaultRunFacts,
  snapshotTask,
  stamp,
  time,
  type VsFacts,
} from "./snapvault-ctx.ts";
import { snapJobId } from "./snaptags.ts";
import { formatTime, parseTime } from "./time.ts";
import { blockingWindow } from "./windows.ts";

export {
  agePodName,
  boundEntries,
  claimName,
  copyPodName,
  countStates,
  initPodName,
  MAX_DESTINATION_FAILURES,
  MAX_LISTED,
  mountPathOf,
  nextRunAt,
  snapshotName,
} from "./snapvault-ctx.ts";
export type { ClaimFacts, PodFacts, ProgressFacts, PvcFacts, SnapVaultPlan, SnapVaultRunFacts, VsFacts } from "./snapvault-ctx.ts";

export function planSnapVaultRun(f: SnapVaultRunFacts): SnapVaultPlan {
  const c = new Ctx(f);
  const repoProblem = repository(c);
  merge(c);
  repick(c);
  let run = c.status.run;
  const running = run !== undefined && (run.phase === "Running" || run.phase === "Pending");
  // After a run, the destination's aging; the next run waits for it (it prunes under restic's exclusive lock).
  if (run && !running && run.aging === undefined) run = c.status.run = age(c, run);
  if (!running && (run === undefined || run.aging !== undefined) && f.problems.length === 0 && c.status.repositoryId) run = maybeStart(c);
  // Backup copies first: an Inline run's end waits for those of its snapshots.
  const backupConditions = backupCopies(c);
  if (run && (run.phase === "Running" || run.phase === "Pending")) {
    run = c.status.run = step(c, run);
    // A run that ended now ages the destination at once.
    if (run.phase !== "Running" && run.phase !== "Pending") run = age(c, run);
  } else settleOutsideRun(c);
  c.status.run = run;
  sourceRetention(c);
  sweep(c);
  // An Offline backup copy's snapshots not picked yet stay listed: the pick reads them from status.
  const offline = f.sv.spec.backupCopy?.enabled === true && f.sv.spec.backupCopy.mode === "Offline";
  const { listed, droppedThrough } = bound(c.entries, (e) => offline && !!e.uid && e.backupCopy === undefined);
  c.status.snapshots = listed;
  if (droppedThrough !== undefined) c.status.settledThrough = formatTime(Math.max(droppedThrough, parseTime(c.status.settledThrough) ?? 0));
  c.status.counts = countStates(listed);
  c.status.phase = run?.phase;
  const next = nextRunAt(c.status, f.sv.spec, parseTime(f.sv.createdAt) ?? f.now);
  c.status.nextRunTime = f.sv.spec.schedule?.suspend ? undefined : formatTime(Math.max(next, f.now));
  if (!(run && (run.phase === "Running" || run.phase === "Pending")) && !f.sv.spec.schedule?.suspend && next > f.now) c.wake(next - f.now);
  for (const state of ["Pending", "Copying", "Copied", "Retrying", "Missing"] as const)
    c.metric({ metric: "snapVaultSnapshots", labels: { state }, value: listed.filter((e) => e.state === state).length });
  const problems = [...f.problems, ...(repoProblem ? [repoProblem] : [])];
  return {
    ...c.plan,
    status: prune(c.status),
    ready: {
      problems,
      ok: { reason: "DestinationReady", message: `destination repository ${c.status.repositoryId ?? ""} is ready`.replace("  ", " ") },
      unknown: c.status.repositoryId ? undefined : { reason: "RepositoryPending", message: "the destination repository is being opened" },
      others: [...(mirrorCondition(c) ?? []), ...backupConditions],
    },
    events: c.events,
    metrics: c.metrics,
    requeueAfterMs: c.requeue,
  };
}

/** Drops undefined fields: status is compared and applied whole. */
function prune<T extends object>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}

// ---- the destination repository ----

/** Opens (or creates) the destination repository once, with the init task, and records its ID. */
function repository(c: Ctx): Problem | undefined {
  const { f } = c;
  const name = initPodName(f.sv.name);
  const pod = f.pods.find((p) => p.name === name);
  if (c.status.repositoryId) {
    if (pod) c.plan.deletePods?.push(name);
    return undefined;
  }
  if (f.problems.length || !f.access || !f.library) return undefined;
  if (pod?.result) {
    const id = pod.result.data.id;
    if (pod.result.ok && id) {
      c.plan.deletePods?.push(name);
      c.status.repositoryId = id;
      c.status.initFailures = undefined;
      c.event("Normal", "RepositoryReady", `destination repository ${id} ${pod.result.data.created ? "created" : "opened"}`, `repo/${id}`);
      return undefined;
    }
    // The failed pod stays until its back-off passes: it holds the time of the failure.
    const failures = c.status.initFailures ?? 0;
    const retryAt = (parseTime(pod.result.at) ?? c.now) + backoff(f.settings.retryBaseMs, failures + 1);
    if (c.now >= retryAt) {
      c.plan.deletePods?.push(name);
      c.status.initFailures = failures + 1;
    } else c.wake(retryAt - c.now);
    return {
      reason: "RepositoryInitFailed",
      message: `opening the destination repository failed (retried at ${formatTime(retryAt)}): ${pod.result.message}`,
    };
  }
  if (!pod && f.library.phase === "Ready")
    c.plan.pods?.push({
      task: "init",
      namespace: f.sv.namespace,
      name,
      owner: f.sv.owner,
      image: f.settings.agentImage,
      target: f.access,
      deadlineSeconds: 600,
      labels: { [Label.snapVault]: labelValue(f.sv.name), [Label.targetLibrary]: labelValue(f.library.name) },
    });
  if (f.library.phase !== "Ready") c.wake(10_000);
  return undefined;
}

// ---- what the caches say of each snapshot ----

/** Adds the snapshots not listed yet; a snapshot to copy whose VolumeSnapshot is gone is Missing at once. */
function merge(c: Ctx): void {
  const byUid = new Map(c.f.snapshots.map((s) => [s.uid, s]));
  const known = new Set(c.entries.map((e) => e.uid).filter(Boolean));
  // A cut recorded twice (a decision taken on a status the cache had not caught up with, whose write then landed):
  // the entry that knows the snapshot is it; the other is no snapshot of its own and goes, rather than turn Missing.
  const named = new Set(c.entries.filter((e) => e.uid).map((e) => e.name));
  const keep = c.entries.filter((e) => {
    if (e.uid) return true;
    if (named.has(e.name)) return false;
    named.add(e.name);
    return true;
  });
  c.entries.splice(0, c.entries.length, ...keep);
  for (const e of c.entries) {
    let vs = e.uid ? byUid.get(e.uid) : undefined;
    if (!e.uid) {
      // Cut by this operator, not seen yet: the first snapshot of that name is it.
      vs = c.f.snapshots.find((s) => s.name === e.name && !known.has(s.uid));
      if (vs) {
        e.uid = vs.uid;
        known.add(vs.uid);
      }
    }
    if (vs) {
      if (vs.creationTime) e.creationTime = vs.creationTime;
      e.storageClassName ??= vs.storageClassName;
      continue;
    }
    if (!ACTIVE.has(e.state)) continue;
    if (!e.uid && c.now - time(e) < CACHE_GRACE_MS) continue;
    missing(c, e, "SourceSnapshotDeleted", `VolumeSnapshot ${e.name} was deleted before it was copied`);
  }
  // A VolumeSnapshot being deleted (its finalizers wait, e.g. for an offline array) is as good as gone; one in flight
  // is settled by its copy's step.
  for (const e of c.entries) {
    const vs = e.uid ? byUid.get(e.uid) : undefined;
    if (vs?.deleting && (e.state === "Pending" || e.state === "Retrying"))
      missing(c, e, "SourceSnapshotDeleted", `VolumeSnapshot ${e.name} is being deleted: it was not copied`);
  }
  // Settled snapshots the bounded status dropped: done, not to be taken up again.
  const settledThrough = parseTime(c.status.settledThrough) ?? -Infinity;
  for (const s of c.f.snapshots)
    if (!known.has(s.uid) && !s.deleting && !((parseTime(s.creationTime) ?? Infinity) <= settledThrough)) {
      const e: Entry = {
        name: s.name,
        uid: s.uid,
        persistentVolumeClaim: s.pvc,
        origin: s.origin,
        creationTime: s.creationTime,
        storageClassName: s.storageClassName,
        state: "Pending",
        ...(s.run !== undefined ? { cutBy: s.run } : {}),
      };
      // Cut by the run in progress but not in its status (a decision on a stale status, a status wiped): its
      // backup copy is still the run's.
      const run = c.status.run;
      if (s.run !== undefined && run?.number === s.run && run.phase === "Running") markInline(c, e, s.run);
      c.entries.push(e);
    }
}

function missing(c: Ctx, e: Entry, reason: string, message: string): void {
  e.state = "Missing";
  e.reason = reason;
  e.lastError = message;
  e.run = c.status.run?.number ?? e.run;
  c.event(
    "Warning",
    "SnapshotMissing",
    `${e.name} (PVC ${e.persistentVolumeClaim}) is Missing: ${reason}: ${message}`,
    `missing/${e.uid ?? e.name}`,
  );
}

// ---- starting a run ----

function maybeStart(c: Ctx): Run | undefined {
  const { f, now } = c;
  const spec = f.sv.spec;
  const asked = f.sv.runRequested !== undefined && f.sv.runRequested !== "" && f.sv.runRequested !== c.status.lastRequest;
  const dueAt = nextRunAt(c.status, spec, parseTime(f.sv.createdAt) ?? now);
  const due = !spec.schedule?.suspend && now >= dueAt;
  if (!asked && !due) return c.status.run;
  const blocked = blockingWindow(f.policy?.operationWindows, "SnapCopy", now, f.policy?.timeZone);
  if (blocked) {
    c.wake(blocked.endsAt - now);
    c.event(
      "Normal",
      "RunQueued",
      `operation window "${blocked.window.name}" blocks snap copies until ${formatTime(blocked.endsAt)}`,
      `window/${blocked.endsAt}`,
    );
    return c.status.run;
  }
  const number = (c.status.runs ?? 0) + 1;
  c.status.runs = number;
  c.status.lastRunTime = formatTime(now);
  if (asked) c.status.lastRequest = f.sv.runRequested;
  const run: Run = { number, trigger: asked ? "Request" : "Schedule", startTime: formatTime(now), phase: "Running", copied: 0, bytes: 0 };
  c.status.run = run;
  c.event(
    "Normal",
    "RunStarted",
    `run ${number} started (${run.trigger === "Request" ? `requested: ${f.sv.runRequested}` : "scheduled"})`,
    `run/${number}`,
  );
  timeLimits(c, number);
  startRound(c, number);
  // A request's snapshots are named by its token and run number (a token may come back later, for another run).
  cut(c, number, asked ? `q${hash8(`${f.sv.runRequested}/${number}`)}` : stamp(dueAt), run.trigger);
  return run;
}

/** A new re-pick request re-arms the Missing snapshots whose VolumeSnapshot still exists. */
function repick(c: Ctx): void {
  const token = c.f.sv.repickRequested;
  if (!token || token === c.status.lastRepick) return;
  c.status.lastRepick = token;
  const exists = new Set(c.f.snapshots.map((s) => s.uid));
  let n = 0;
  let b = 0;
  for (const e of c.entries) {
    if (!e.uid || !exists.has(e.uid)) continue;
    if (e.state === "Missing") {
      Object.assign(e, { state: "Pending", reason: undefined, attempts: undefined, firstAttemptTime: undefined });
      n++;
    }
    if (e.backupCopy?.state === "Missing") {
      e.backupCopy = { ...e.backupCopy, state: "Pending", reason: undefined, attempts: undefined, firstAttemptTime: undefined };
      b++;
    }
  }
  c.event(
    "Normal",
    "Repicked",
    `${n} Missing snapshot(s) re-armed for copying${b ? `, ${b} for backup copy` : ""} (request ${token})`,
    `repick/${token}`,
  );
}

/** Retrying snapshots past the time limit are Missing before the run tries them again. */
function timeLimits(c: Ctx, run: number): void {
  for (const e of c.entries) {
    if (e.state !== "Retrying") continue;
    const v = retryVerdict(e.attempts ?? 0, parseTime(e.firstAttemptTime), c.now, c.f.settings.budget);
    if (v.state === "Missing") {
      e.run = run;
      missing(c, e, v.reason, v.message);
    }
  }
}

/** Cuts a VolumeSnapshot of every selected PVC; a listed PVC that is gone is a Missing snapshot of this run. */
function cut(c: Ctx, run: number, runKey: string, trigger: Run["trigger"]): void {
  const { f, now } = c;
  const spec = f.sv.spec.source;
  const exists = new Map(f.pvcs.map((p) => [p.name, p]));
  const names = [...new Set([...f.listed, ...f.pvcs.map((p) => p.name)])].sort();
  const cutNames: string[] = [];
  for (const pvc of names) {
    const name = snapshotName(f.sv.name, pvc, runKey);
    // Already cut: this run was decided before, on a status the cache had not caught up with (names are the run's).
    if (c.entries.some((e) => e.name === name)) continue;
    const p = exists.get(pvc);
    if (!p) {
      const e: Entry = {
        name,
        persistentVolumeClaim: pvc,
        origin: "Taken",
        creationTime: formatTime(now),
        state: "Pending",
        attempts: 0,
        cutBy: run,
      };
      c.entries.push(e);
      e.run = run;
      missing(c, e, "SourceVolumeDeleted", `PVC ${pvc} does not exist: no snapshot was cut`);
      continue;
    }
    if (!p.bound) {
      c.event("Warning", "SourceNotBound", `PVC ${pvc} is not bound yet: no snapshot of it in run ${run}`, `unbound/${pvc}/${run}`);
      continue;
    }
    c.plan.createSnapshots.push({
      apiVersion: "snapshot.storage.k8s.io/v1",
      kind: "VolumeSnapshot",
      metadata: {
        name,
        namespace: f.sv.namespace,
        labels: {
          [Label.managedBy]: MANAGED_BY,
          [Label.snapVault]: labelValue(f.sv.name),
          [Label.pvc]: labelValue(pvc),
          [Label.trigger]: trigger,
        },
        annotations: { [Annotation.snapVault]: f.sv.name, [Annotation.run]: String(run) },
        ownerReferences: [{ ...f.sv.owner, controller: true, blockOwnerDeletion: false }],
      },
      spec: {
        source: { persistentVolumeClaimName: pvc },
        ...(spec.volumeSnapshotClassName ? { volumeSnapshotClassName: spec.volumeSnapshotClassName } : {}),
      },
    });
    c.entries.push(
      markInline(
        c,
        { name, persistentVolumeClaim: pvc, origin: "Taken", creationTime: formatTime(now), state: "Pending", cutBy: run },
        run,
      ),
    );
    cutNames.push(name);
  }
  // One event per run, not per snapshot: an object's events are rate-limited (burst 25, one per 5 minutes), and the
  // Warnings about single snapshots must not be crowded out by routine news.
  if (cutNames.length)
    c.event(
      "Normal",
      "SnapshotsCut",
      `run ${run} cut ${cutNames.length} VolumeSnapshot(s): ${cutNames.join(", ")}`.slice(0, 1000),
      `cut/${run}`,
    );
}

// ---- a running run ----

function step(c: Ctx, run: Run): Run {
  const { f, now } = c;
  const r: Run = { ...run };
  const vs = new Map(f.snapshots.map((s) => [s.uid, s]));
  const pods = new Map(f.pods.map((p) => [p.name, p]));
  const claims = new Map(f.claims.map((p) => [p.name, p]));
  const staging = parseDuration("spec.stagingTimeout", f.sv.spec.stagingTimeout ?? "5m");
  const copying = c.entries.filter((e) => e.state === "Copying");
  let waiting: string | undefined;

  // Copies in flight first: their pods' results and faults.
  for (const e of copying) {
    const names = { pod: copyPodName(f.sv.name, e.uid ?? "", e.pods ?? 0), claim: claimName(f.sv.name, e.uid ?? "", e.pods ?? 0) };
    const started = parseTime(e.lastAttemptTime) ?? now;
    const v = flight(c, e, e.uid ? vs.get(e.uid) : undefined, pods.get(names.pod), claims.get(names.claim), started, names);
    switch (v.kind) {
      case "done": {
        const d = v.result;
        Object.assign(e, {
          state: "Copied",
          reason: undefined,
          lastError: undefined,
          copiedAs: d.snapshotId,
          bytes: d.bytes,
          run: r.number,
        });
        if (!d.already) r.copied = (r.copied ?? 0) + 1;
        r.bytes = (r.bytes ?? 0) + (d.already ? 0 : (d.bytes ?? 0));
        // No event per copy (status lists it, with its restic ID): the run's end sums them up.
        if (!d.already) c.metric({ metric: "snapVaultBytes", value: d.bytes ?? 0, once: names.pod });
        break;
      }
      case "destination":
        // The destination's fault (or the pod's): the snapshot waits, the run retries the copy later.
        r.destinationFailures = (r.destinationFailures ?? 0) + 1;
        r.retryAt = formatTime(now + backoff(f.settings.retryBaseMs, r.destinationFailures));
        waiting = `copy of ${e.name} failed on the destination: ${v.message}`;
        Object.assign(e, { state: "Pending", lastError: v.message });
        c.event("Warning", "DestinationFault", `${waiting} (no attempt counted; retry at ${r.retryAt})`, `dest/${names.pod}`);
        c.plan.probe = waiting;
        break;
      case "source":
        sourceFault(c, e, r.number, v.message, v.once);
        break;
      case "missing":
        missing(c, e, "SourceSnapshotDeleted", v.message);
        break;
      case "restart":
        Object.assign(e, { state: "Pending" });
        break;
      case "wait":
        c.wake(v.running ? 2000 : 3000);
    }
  }

  // Then new copies, oldest snapshot first, as far as the library, the window and the streams allow.
  const todo = c.entries
    .filter((e) => (e.state === "Pending" || e.state === "Retrying") && e.run !== r.number && e.uid)
    .sort((a, b) => time(a) - time(b) || a.name.localeCompare(b.name));
  const lib = f.library;
  const retryAt = parseTime(r.retryAt);
  const blocked = blockingWindow(f.policy?.operationWindows, "SnapCopy", now, f.policy?.timeZone);
  let streams = lib ? lib.maxStreams - f.streamsInUse : 0;
  let notReady = false;
  for (const e of todo) {
    const s = vs.get(e.uid as string);
    if (!s) continue;
    if (s.error) {
      sourceFault(c, e, r.number, `VolumeSnapshot ${s.name} is not ready: ${s.error}`, `vs/${s.uid}/${e.attempts ?? 0}`);
      continue;
    }
    if (!s.readyToUse) {
      if (now - Math.max(parseTime(r.startTime) ?? now, time(e)) >= staging)
        sourceFault(
          c,
          e,
          r.number,
          `VolumeSnapshot ${s.name} is not ready after ${f.sv.spec.stagingTimeout ?? "5m"}`,
          `vs/${s.uid}/${e.attempts ?? 0}`,
        );
      else notReady = true;
      continue;
    }
    if (f.problems.length || !c.status.repositoryId || !f.access || !lib) {
      waiting = f.problems[0]?.message ?? "the destination repository is not open yet";
      continue;
    }
    if (lib.phase !== "Ready") {
      waiting = `destination library ${lib.name} is ${lib.phase ?? "Pending"}${lib.message ? `: ${lib.message}` : ""}`;
      continue;
    }
    if (blocked) {
      waiting = `operation window "${blocked.window.name}" blocks snap copies until ${formatTime(blocked.endsAt)}`;
      c.wake(blocked.endsAt - now);
      continue;
    }
    if (retryAt !== undefined && retryAt > now) {
      waiting ??= `a copy failed on the destination; retrying at ${r.retryAt}`;
      c.wake(retryAt - now);
      continue;
    }
    if (streams <= 0) {
      waiting = `all ${lib.maxStreams} streams of library ${lib.name} are in use`;
      continue;
    }
    const podN = copyPodName(f.sv.name, s.uid, (e.pods ?? 0) + 1);
    const refused = f.rejected?.find((x) => x.name === podN);
    if (refused) {
      // Neither the source's fault nor the snapshot's: like a destination fault, it waits and costs no attempt.
      r.destinationFailures = (r.destinationFailures ?? 0) + 1;
      r.retryAt = formatTime(now + backoff(f.settings.retryBaseMs, r.destinationFailures));
      waiting = refused.message;
      c.event("Warning", "PodRejected", `copy of ${e.name}: ${refused.message}`, `rejected/${podN}/${r.destinationFailures}`);
      continue;
    }
    streams--;
    startCopy(c, e, s);
  }

  // Snapshots cut by this run that the cache does not show yet are still to come (merge() gives up on them).
  const left =
    c.entries.some((e) => e.state === "Copying" || ((e.state === "Pending" || e.state === "Retrying") && e.run !== r.number)) ||
    inlineBackupLeft(c, r.number);
  if (c.entries.some((e) => !e.uid && e.state === "Pending")) notReady = true;
  if ((r.destinationFailures ?? 0) >= MAX_DESTINATION_FAILURES && !c.entries.some((e) => e.state === "Copying")) {
    return end(c, r, "Failed", `the destination failed ${r.destinationFailures} times in this run: ${waiting ?? ""}`.trim());
  }
  if (!left) {
    const missed = c.entries.filter((e) => e.state === "Missing" && e.run === r.number);
    return missed.length
      ? end(
          c,
          r,
          "AvailableWithMissingSnaps",
          `${r.copied ?? 0} copied, ${missed.length} missing: ${missed
            .map((e) => `${e.name} (${e.reason})`)
            .join(", ")
            .slice(0, 900)}`,
        )
      : end(c, r, "Completed", `${r.copied ?? 0} snapshot(s) copied, ${r.bytes ?? 0} bytes`);
  }
  r.waiting = waiting;
  if (waiting || notReady) c.wake(waiting?.includes("streams") ? 5000 : 3000);
  c.status.current = current(c);
  return r;
}

/** Outside a run nothing is copying: a copy left Copying (status written by a run that since ended) goes back to Pending. */
function settleOutsideRun(c: Ctx): void {
  for (const e of c.entries) if (e.state === "Copying") e.state = "Pending";
  c.status.current = undefined;
}

function end(c: Ctx, r: Run, phase: Run["phase"], message: string): Run {
  const bc = backupSummary(c, r.number);
  const said = bc ? `${message}; ${bc}` : message;
  const done: Run = { ...r, phase, endTime: formatTime(c.now), message: said.slice(0, 1000), waiting: undefined, retryAt: undefined };
  c.status.current = undefined;
  const type = phase === "Completed" ? "Normal" : "Warning";
  c.event(
    type,
    phase === "Completed" ? "RunCompleted" : phase === "Failed" ? "RunFailed" : "RunAvailableWithMissingSnaps",
    `run ${r.number}: ${said}`.slice(0, 1000),
    `end/${r.number}`,
  );
  c.metric({ metric: "snapVaultRuns", labels: { phase }, value: 1, once: `run/${r.number}` });
  return done;
}

/** A source fault: one attempt of the snapshot's budget; Retrying for a later run, or Missing once it is used up. */
function sourceFault(c: Ctx, e: Entry, run: number, message: string, once: string): void {
  e.attempts = (e.attempts ?? 0) + 1;
  e.firstAttemptTime ??= formatTime(c.now);
  e.lastAttemptTime = formatTime(c.now);
  e.lastError = message.slice(0, 1000);
  e.run = run;
  const v = retryVerdict(e.attempts, parseTime(e.firstAttemptTime), c.now, c.f.settings.budget);
  if (v.state === "Missing") {
    missing(c, e, v.reason, `${v.message}; last error: ${message}`.slice(0, 1000));
    return;
  }
  e.state = "Retrying";
  e.reason = "SourceFault";
  c.event(
    "Warning",
    "SnapshotRetrying",
    `${e.name} (PVC ${e.persistentVolumeClaim}): ${message}; ${v.message}`.slice(0, 1000),
    `retry/${once}`,
  );
}

function startCopy(c: Ctx, e: Entry, s: VsFacts): void {
  const { f } = c;
  const pods = (e.pods ?? 0) + 1;
  const uid = s.uid;
  const claim = claimName(f.sv.name, uid, pods);
  c.plan.createClaims.push(restoreClaim(c, e, s, claim));
  const lib = f.library as NonNullable<SnapVaultRunFacts["library"]>;
  c.plan.pods?.push({
    task: "snapcopy",
    namespace: f.sv.namespace,
    name: copyPodName(f.sv.name, uid, pods),
    owner: f.sv.owner,
    image: f.settings.agentImage,
    target: { ...(f.access as RepositoryAccess), repositoryId: c.status.repositoryId },
    claims: [{ name: "snapshot", claimName: claim, mountPath: mountPathOf(s.pvc) }],
    snapshot: snapshotTask(c, e, s, snapJobId(f.sv.namespace, s.name, uid)),
    locks: { deadHosts: f.deadHosts },
    deadlineSeconds: COPY_DEADLINE_SECONDS,
    labels: { [Label.snapVault]: labelValue(f.sv.name), [Label.targetLibrary]: labelValue(lib.name), [Label.volumeSnapshotUid]: uid },
    annotations: { [Annotation.volumeSnapshot]: s.name },
  });
  Object.assign(e, { state: "Copying", pods, lastAttemptTime: formatTime(c.now) });
}

function current(c: Ctx): SnapVaultStatus["current"] {
  const copying = c.entries.filter((e) => e.state === "Copying").sort((a, b) => time(a) - time(b));
  for (const e of copying) {
    const pod = c.f.pods.find((p) => p.name === copyPodName(c.f.sv.name, e.uid ?? "", e.pods ?? 0));
    const p = pod?.progress;
    const secs = pod?.startedAt !== undefined ? (c.now - pod.startedAt) / 1000 : undefined;
    return {
      snapshot: e.name,
      persistentVolumeClaim: e.persistentVolumeClaim,
      bytesDone: p?.bytesDone,
      bytesTotal: p?.bytesTotal,
      percent: p?.percent,
      bytesPerSecond: p?.bytesDone !== undefined && secs && secs > 0 ? Math.round(p.bytesDone / secs) : undefined,
      startTime: pod?.startedAt !== undefined ? formatTime(pod.startedAt) : undefined,
    };
  }
  return undefined;
}

// ---- the source's retention and hygiene ----

/**
 * Snapshots Auxo cut are deleted by the source's retention (days, recovery points per PVC; or, as a spool, as soon as
 * every copy that needs them has them), never before their copy is settled (Copied or Missing), never before their
 * backup copy is on the primary copy (a failed one keeps the snapshot), and never while a restored volume of them
 * exists. With keepNewest Scheduled a spool keeps the newest settled snapshot of each PVC that a scheduled run cut.
 * Adopted snapshots are never deleted.
 */
function sourceRetention(c: Ctx): void {
  const { f, now } = c;
  const r = f.sv.spec.source.retention;
  const days = r?.days ?? 7;
  const points = r?.recoveryPoints ?? 0;
  const spool = r?.spool === true;
  const byUid = new Map(c.entries.filter((e) => e.uid).map((e) => [e.uid as string, e]));
  const inUse = new Set(c.entries.filter((e) => e.state === "Copying" || e.backupCopy?.state === "Copying").map((e) => e.uid));
  const taken = f.snapshots.filter((s) => s.origin === "Taken" && !s.deleting);
  const byPvc = new Map<string, VsFacts[]>();
  for (const s of taken) byPvc.set(s.pvc, [...(byPvc.get(s.pvc) ?? []), s]);
  const settledOf = (s: VsFacts) => {
    const e = byUid.get(s.uid);
    return e && (e.state === "Copied" || e.state === "Missing") && backupSettled(c, e) && !inUse.has(s.uid) ? e : undefined;
  };
  for (const list of byPvc.values()) {
    list.sort((a, b) => (parseTime(b.creationTime) ?? 0) - (parseTime(a.creationTime) ?? 0));
    const kept = spool && r?.keepNewest === "Scheduled" ? list.find((s) => s.trigger === "Schedule" && settledOf(s)) : undefined;
    list.forEach((s, i) => {
      const e = settledOf(s);
      if (!e || s === kept) return;
      const t = parseTime(s.creationTime);
      const old = !spool && days >= 0 && t !== undefined && now - t >= days * 86_400_000;
      const beyond = !spool && points > 0 && i >= points;
      if (!spool && !old && !beyond) return;
      const why = spool ? "spool: every copy that needs it has it" : old ? `older than ${days} days` : `beyond ${points} recovery points`;
      const bc =
        e.backupCopy?.state === "Copied"
          ? `, its backup copy job ${e.backupCopy.jobId ?? ""} is on ${e.backupCopy.copy ?? "the primary"}`
          : "";
      c.plan.deleteSnapshots.push(s.name);
      c.event(
        "Normal",
        "SnapshotDeleted",
        `deleted VolumeSnapshot ${s.name} by the source's retention (${why}); its copy is ${e.state}${bc}`,
        `del/${s.uid}`,
      );
    });
  }
}

/** Restored volumes and pods that no copy in flight needs go (after a result, a failure, a restart). */
function sweep(c: Ctx): void {
  const { f } = c;
  const wanted = new Set<string>();
  for (const e of c.entries) {
    if (e.state === "Copying" && e.uid) {
      wanted.add(copyPodName(f.sv.name, e.uid, e.pods ?? 0));
      wanted.add(claimName(f.sv.name, e.uid, e.pods ?? 0));
    }
    if (e.backupCopy?.state === "Copying" && e.uid) {
      wanted.add(backupPodName(f.sv.name, e.uid, e.backupCopy.pods ?? 0));
      wanted.add(backupClaimName(f.sv.name, e.uid, e.backupCopy.pods ?? 0));
    }
  }
  const run = c.status.run;
  if (run && run.aging === undefined) wanted.add(agePodName(f.sv.name, run.number));
  const init = initPodName(f.sv.name);
  for (const p of f.pods)
    if (!wanted.has(p.name) && p.name !== init && !c.plan.deletePods?.includes(p.name)) c.plan.deletePods?.push(p.name);
  for (const cl of f.claims) if (!wanted.has(cl.name)) c.plan.deleteClaims.push(cl.name);
}

/** Mirror with a source PVC gone: it keeps every copy of it, and says so. */
function mirrorCondition(c: Ctx): ReadyPlan["others"] {
  if ((c.f.sv.spec.mode ?? "Vault") !== "Mirror") return undefined;
  const present = new Set(c.f.pvcsPresent);
  const gone = [
    ...new Set(c.entries.filter((e) => e.state === "Copied" && !present.has(e.persistentVolumeClaim)).map((e) => e.persistentVolumeClaim)),
  ];
  return [
    gone.length
      ? {
          type: "SourceVolumesGone",
          status: "True",
          reason: "KeepingCopies",
          message: `PVC(s) ${gone.join(", ")} no longer exist: the mirror keeps all their copies`,
        }
      : { type: "SourceVolumesGone", status: "False", reason: "AllPresent", message: "every mirrored PVC exists" },
  ];
}

// ---- the destination's aging ----

/**
 * Ages the destination once after a run (not after a Failed one): a Vault by its retention, a Mirror forgets the
 * copies of snapshots deleted while their PVC exists and a newer copy of it is there. Returns the run with `aging` set
 * once it is done (or nothing was to do); until then a pod runs and the next run waits.
 */
function age(c: Ctx, run: Run): Run {
  const { f } = c;
  if (run.phase === "Failed") return { ...run, aging: "skipped: the run failed" };
  if (!f.access || !c.status.repositoryId || f.library?.phase !== "Ready")
    return { ...run, aging: "skipped: the destination is not ready" };
  const mirror = (f.sv.spec.mode ?? "Vault") === "Mirror";
  let forgetJobs: string[] | undefined;
  if (mirror) {
    const present = new Set(f.snapshots.map((s) => s.uid));
    const pvcs = new Set(f.pvcsPresent);
    const copied = c.entries.filter((e) => e.state === "Copied" && e.uid && e.reason !== "Forgotten");
    forgetJobs = copied
      .filter((e) => !present.has(e.uid as string) && pvcs.has(e.persistentVolumeClaim))
      .filter((e) =>
        copied.some((n) => n.persistentVolumeClaim === e.persistentVolumeClaim && present.has(n.uid as string) && time(n) > time(e)),
      )
      .map((e) => snapJobId(f.sv.namespace, e.name, e.uid as string));
    if (forgetJobs.length === 0) return { ...run, aging: "nothing to forget", aged: 0 };
  }
  const name = agePodName(f.sv.name, run.number);
  const pod = f.pods.find((p) => p.name === name);
  if (pod?.result) {
    const d = pod.result.data;
    c.plan.deletePods?.push(name);
    if (!pod.result.ok) {
      c.event("Warning", "AgingFailed", `aging the destination after run ${run.number} failed: ${pod.result.message}`, `agefail/${name}`);
      return { ...run, aging: `failed: ${pod.result.message}`.slice(0, 1000), aged: 0 };
    }
    if (mirror)
      for (const e of c.entries)
        if (e.uid && forgetJobs?.includes(snapJobId(f.sv.namespace, e.name, e.uid)))
          Object.assign(e, { reason: "Forgotten", copiedAs: undefined });
    const aged = d.aged ?? 0;
    if (aged)
      c.event(
        "Normal",
        "CopiesAged",
        `${aged} copies aged on the destination after run ${run.number}${d.agedJobs?.length ? `: ${d.agedJobs.join(", ")}` : ""}`.slice(
          0,
          1000,
        ),
        `aged/${name}`,
      );
    return {
      ...run,
      aging: mirror ? `${aged} copies of deleted snapshots forgotten` : `${aged} copies aged by the vault's retention`,
      aged,
    };
  }
  if (!pod)
    c.plan.pods?.push({
      task: "age",
      namespace: f.sv.namespace,
      name,
      owner: f.sv.owner,
      image: f.settings.agentImage,
      target: { ...f.access, repositoryId: c.status.repositoryId },
      aging: {
        retention: mirror ? undefined : vaultRetention(f.sv.spec.retention),
        forgetJobs,
        timeZone: f.policy?.timeZone ?? "UTC",
        maxSharePercent: mirror ? 100 : 50,
        at: formatTime(c.now),
      },
      locks: { deadHosts: f.deadHosts },
      deadlineSeconds: 3600,
      labels: { [Label.snapVault]: labelValue(f.sv.name), [Label.targetLibrary]: labelValue(f.library.name) },
    });
  c.wake(3000);
  return run;
}
