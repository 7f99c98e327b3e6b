// Backup copies of a SnapVault's snapshots into its storage policy's primary copy (docs/snapvault.md, "Backup copy"),
// decided from plain facts. Inline: each snapshot a run cuts is backed up in that run (the run ends once they are
// settled). Offline: on the backup copy's own schedule or on request, over the snapshots not backed up yet, all of
// them or the first or last of each PVC per period. Each backup copy is a MediaAgent pod (task backupcopy) that
// mounts a volume restored from the snapshot and writes one backup job to the primary copy in force, typed by the
// PVC's history there (policy/backupjobtype.ts), placed by the access-node rule (policy/placement.ts), within the
// primary library's streams and the policy's BackupCopy windows. Source faults cost the snapshot's backup copy one
// attempt of the SnapVault's retry budget; faults of the primary copy park it and cost nothing. Pure.
import { parseDuration } from "./duration.ts";
import { Annotation, Label } from "./labels.ts";
import { labelValue } from "./names.ts";
import { type AccessNodes, backupCopyPlacement, describeAccessNodes } from "./placement.ts";
import type { ReadyPlan } from "./plan.ts";
import { periodKey } from "./selection.ts";
import { retryVerdict } from "./snapretry.ts";
import {
  backoff,
  backupClaimName,
  backupPodName,
  COPY_DEADLINE_SECONDS,
  type Ctx,
  type Entry,
  flight,
  MAX_DESTINATION_FAILURES,
  mountPathOf,
  restoreClaim,
  snapshotTask,
  time,
  type VsFacts,
} from "./snapvault-ctx.ts";
import { snapJobId } from "./snaptags.ts";
import { formatTime, parseTime } from "./time.ts";
import { blockingWindow } from "./windows.ts";

type Backup = NonNullable<Entry["backupCopy"]>;
type State = NonNullable<NonNullable<Ctx["status"]["backupCopy"]>>;

const enabled = (c: Ctx) => c.f.sv.spec.backupCopy?.enabled === true;
const modeOf = (c: Ctx) => c.f.sv.spec.backupCopy?.mode ?? "Inline";
const inline = (c: Ctx) => enabled(c) && modeOf(c) === "Inline";

/** A snapshot an Inline run cuts gets its backup copy with it. */
export function markInline(c: Ctx, e: Entry, run: number): Entry {
  if (inline(c)) e.backupCopy = { state: "Pending", round: run };
  return e;
}

/** An Inline run is a round of backup copies: Retrying ones are tried again in it. */
export function startRound(c: Ctx, run: number): void {
  if (inline(c)) c.status.backupCopy = { ...c.status.backupCopy, round: run, destinationFailures: undefined, retryAt: undefined };
}

/**
 * Whether a snapshot's backup copy no longer needs it: on the primary copy, or not selected. Inline: snapshots cut
 * before backup copy was enabled need none. Offline: every snapshot waits for its pick. Missing keeps the snapshot.
 */
export function backupSettled(c: Ctx, e: Entry): boolean {
  if (!enabled(c)) return true;
  const b = e.backupCopy;
  if (!b) return modeOf(c) === "Inline";
  return b.state === "Copied" || b.state === "Skipped";
}

/** An Inline run waits for the backup copies of the snapshots it cut, except those its snapshot's faults hold back. */
export function inlineBackupLeft(c: Ctx, run: number): boolean {
  if (!inline(c)) return false;
  return c.entries.some(
    (e) =>
      e.cutBy === run &&
      (e.backupCopy?.state === "Copying" || (e.backupCopy?.state === "Pending" && e.state !== "Retrying" && e.state !== "Missing")),
  );
}

/** What a run's end says of the backup copies of the snapshots it cut. */
export function backupSummary(c: Ctx, run: number): string | undefined {
  if (!inline(c)) return undefined;
  const mine = c.entries.filter((e) => e.cutBy === run && e.backupCopy);
  if (!mine.length) return undefined;
  const copied = mine.filter((e) => e.backupCopy?.state === "Copied");
  const types = ["full", "incremental", "differential"]
    .map((t) => [t, copied.filter((e) => e.backupCopy?.type === t).length] as const)
    .filter(([, n]) => n > 0)
    .map(([t, n]) => `${n} ${t}`);
  const other = mine.filter((e) => e.backupCopy?.state !== "Copied");
  return (
    `backup copies: ${copied.length} to ${c.f.backupTarget?.copy ?? "the primary copy"}${types.length ? ` (${types.join(", ")})` : ""}` +
    (other.length ? `, ${other.map((e) => `${e.name} ${e.backupCopy?.state}`).join(", ")}` : "")
  );
}

function set(e: Entry, b: Partial<Backup>): Backup {
  e.backupCopy = { ...(e.backupCopy as Backup), ...b };
  return e.backupCopy;
}

function missing(c: Ctx, e: Entry, reason: string, message: string): void {
  set(e, { state: "Missing", reason, lastError: message.slice(0, 1000) });
  c.event(
    "Warning",
    "BackupCopyMissing",
    `backup copy of ${e.name} (PVC ${e.persistentVolumeClaim}) is Missing: ${reason}: ${message}; the snapshot is kept`.slice(0, 1000),
    `bmissing/${e.uid ?? e.name}`,
  );
}

function sourceFault(c: Ctx, e: Entry, message: string, once: string): void {
  const b = e.backupCopy as Backup;
  const attempts = (b.attempts ?? 0) + 1;
  const first = b.firstAttemptTime ?? formatTime(c.now);
  set(e, { attempts, firstAttemptTime: first, lastAttemptTime: formatTime(c.now), lastError: message.slice(0, 1000) });
  const v = retryVerdict(attempts, parseTime(first), c.now, c.f.settings.budget);
  if (v.state === "Missing") return missing(c, e, v.reason, `${v.message}; last error: ${message}`);
  set(e, { state: "Retrying", reason: "SourceFault" });
  c.event(
    "Warning",
    "BackupCopyRetrying",
    `backup copy of ${e.name} (PVC ${e.persistentVolumeClaim}): ${message}; ${v.message.replace("run", "round")}`.slice(0, 1000),
    `bretry/${once}`,
  );
}

/** Offline: a new round on the schedule or on request picks the snapshots not backed up yet, by the select rule. */
function offline(c: Ctx, st: State): void {
  const { f, now } = c;
  const spec = f.sv.spec.backupCopy ?? {};
  const every = parseDuration("spec.backupCopy.schedule.every", spec.schedule?.every ?? "24h");
  // The first scheduled round comes one interval after the SnapVault was created: there is nothing to back up before.
  const last = parseTime(st.lastRunTime) ?? parseTime(f.sv.createdAt) ?? now;
  const next = last + every;
  const suspended = spec.schedule?.suspend === true;
  st.nextRunTime = suspended ? undefined : formatTime(Math.max(next, now));
  const token = f.sv.backupCopyRequested;
  const asked = token !== undefined && token !== "" && token !== st.lastRequest;
  const due = !suspended && now >= next;
  if (!asked && !due) {
    if (!suspended) c.wake(next - now);
    return;
  }
  const blocked = blockingWindow(f.policy?.operationWindows, "BackupCopy", now, f.policy?.timeZone);
  if (blocked) {
    c.wake(blocked.endsAt - now);
    c.event(
      "Normal",
      "BackupCopyQueued",
      `operation window "${blocked.window.name}" blocks backup copies until ${formatTime(blocked.endsAt)}`,
      `bwindow/${blocked.endsAt}`,
    );
    return;
  }
  const round = (st.runs ?? 0) + 1;
  Object.assign(st, { runs: round, round, lastRunTime: formatTime(now), destinationFailures: undefined, retryAt: undefined });
  if (asked) st.lastRequest = token;
  st.nextRunTime = suspended ? undefined : formatTime(now + every);
  const picked = pick(c, round);
  c.event(
    "Normal",
    "BackupCopyStarted",
    `offline backup copy ${round} (${asked ? `requested: ${token}` : "scheduled"}): ${picked} snapshot(s) picked`,
    `bround/${round}`,
  );
}

/** Picks the snapshots of an offline round; returns how many. First and Last are per PVC and period; Last waits for the period to end. */
function pick(c: Ctx, round: number): number {
  const { f, now } = c;
  const sel = f.sv.spec.backupCopy?.select;
  const take = sel?.take ?? "All";
  const period = sel?.period ?? "Daily";
  const tz = f.policy?.timeZone ?? "UTC";
  const ready = new Set(f.snapshots.filter((s) => s.readyToUse && !s.deleting).map((s) => s.uid));
  const candidates = c.entries.filter((e) => e.uid && ready.has(e.uid) && e.backupCopy === undefined);
  if (take === "All") {
    for (const e of candidates) e.backupCopy = { state: "Pending", round };
    return candidates.length;
  }
  const key = (e: Entry) => `${e.persistentVolumeClaim}\u0000${periodKey(time(e), period, {}, tz)}`;
  const current = (e: Entry) => periodKey(time(e), period, {}, tz) === periodKey(now, period, {}, tz);
  const groups = new Map<string, Entry[]>();
  for (const e of c.entries.filter((x) => x.uid)) groups.set(key(e), [...(groups.get(key(e)) ?? []), e]);
  let n = 0;
  for (const group of groups.values()) {
    const open = group.filter((e) => e.backupCopy === undefined && ready.has(e.uid as string));
    if (!open.length) continue;
    if (take === "Last" && current(group[0] as Entry)) continue;
    const sorted = [...group].sort((a, b) => time(a) - time(b) || a.name.localeCompare(b.name));
    const chosen = group.find((e) => e.backupCopy && e.backupCopy.state !== "Skipped") ?? (take === "First" ? sorted[0] : sorted.at(-1));
    for (const e of open) {
      if (e === chosen) {
        e.backupCopy = { state: "Pending", round };
        n++;
      } else
        e.backupCopy = {
          state: "Skipped",
          round,
          reason: `not the ${take.toLowerCase()} snapshot of its PVC in its ${period.toLowerCase()} period`,
        };
    }
  }
  return n;
}

const accessOf = (c: Ctx, pvc: string): AccessNodes | undefined => {
  const names = c.f.pvcs.find((p) => p.name === pvc)?.accessNodes;
  const selector = c.f.sv.spec.backupCopy?.accessNodes;
  return names?.length ? { names } : selector ? { selector } : undefined;
};

function start(c: Ctx, e: Entry, s: VsFacts, placement: ReturnType<typeof backupCopyPlacement>["placement"]): void {
  const { f } = c;
  const t = f.backupTarget as NonNullable<typeof f.backupTarget>;
  const b = e.backupCopy as Backup;
  const pods = (b.pods ?? 0) + 1;
  const claim = backupClaimName(f.sv.name, s.uid, pods);
  const jobId = snapJobId(f.sv.namespace, s.name, s.uid);
  const spec = f.sv.spec.backupCopy ?? {};
  c.plan.createClaims.push(restoreClaim(c, e, s, claim));
  c.plan.pods?.push({
    task: "backupcopy",
    namespace: f.sv.namespace,
    name: backupPodName(f.sv.name, s.uid, pods),
    owner: f.sv.owner,
    image: f.settings.agentImage,
    target: { ...(t.access as NonNullable<typeof t.access>), repositoryId: t.repositoryId },
    claims: [{ name: "snapshot", claimName: claim, mountPath: mountPathOf(s.pvc) }],
    snapshot: snapshotTask(c, e, s, jobId),
    backupCopy: {
      fullEveryMs: parseDuration("spec.backupCopy.fullEvery", spec.fullEvery ?? "168h"),
      incrementalLimit: spec.incrementalLimit ?? 6,
    },
    placement,
    locks: { deadHosts: f.deadHosts },
    deadlineSeconds: COPY_DEADLINE_SECONDS,
    labels: {
      [Label.snapVault]: labelValue(f.sv.name),
      [Label.targetLibrary]: labelValue(t.library?.name ?? ""),
      [Label.volumeSnapshotUid]: s.uid,
      [Label.storagePolicy]: labelValue(t.policy),
      // On the copy's repository: its data aging waits for this pod.
      [Label.copy]: labelValue(t.copy ?? ""),
    },
    annotations: { [Annotation.volumeSnapshot]: s.name, [Annotation.copy]: t.copy ?? "" },
  });
  set(e, { state: "Copying", pods, jobId, copy: t.copy, lastAttemptTime: formatTime(c.now) });
}

/**
 * One reconcile of the backup copies: an Offline round when due, the copies in flight, then new ones as far as the
 * primary copy, the windows, the streams and the access nodes allow. Returns the AccessNodes condition (when access
 * nodes are set) and asks for a scan of the primary copy once a job landed on it.
 */
export function backupCopies(c: Ctx): NonNullable<ReadyPlan["others"]> {
  const { f, now } = c;
  if (!enabled(c)) {
    c.status.backupCopy = undefined;
    return [];
  }
  const st: State = { ...c.status.backupCopy };
  c.status.backupCopy = st;
  const t = f.backupTarget;
  st.primaryCopy = t?.copy;
  if (modeOf(c) === "Offline") offline(c, st);
  else st.nextRunTime = undefined;
  const vs = new Map(f.snapshots.map((s) => [s.uid, s]));
  const pods = new Map(f.pods.map((p) => [p.name, p]));
  const claims = new Map(f.claims.map((p) => [p.name, p]));
  let landed = false;
  let waiting: string | undefined;

  for (const e of c.entries) {
    const b = e.backupCopy;
    if (!b || (b.state !== "Pending" && b.state !== "Retrying")) continue;
    const s = e.uid ? vs.get(e.uid) : undefined;
    if ((e.uid && !s) || s?.deleting) missing(c, e, "SourceSnapshotDeleted", `VolumeSnapshot ${e.name} was deleted before its backup copy`);
    else if (e.state === "Missing" && (e.reason === "SourceSnapshotDeleted" || e.reason === "SourceVolumeDeleted"))
      missing(c, e, e.reason, e.lastError ?? "the snapshot is gone");
  }

  for (const e of c.entries) {
    const b = e.backupCopy;
    if (b?.state !== "Copying") continue;
    const names = { pod: backupPodName(f.sv.name, e.uid ?? "", b.pods ?? 0), claim: backupClaimName(f.sv.name, e.uid ?? "", b.pods ?? 0) };
    const started = parseTime(b.lastAttemptTime) ?? now;
    const v = flight(c, e, e.uid ? vs.get(e.uid) : undefined, pods.get(names.pod), claims.get(names.claim), started, names);
    switch (v.kind) {
      case "done": {
        const d = v.result;
        set(e, {
          state: "Copied",
          reason: undefined,
          lastError: undefined,
          type: d.type,
          status: d.status,
          snapshotId: d.snapshotId,
          bytes: d.bytes,
        });
        Object.assign(st, { destinationFailures: undefined, retryAt: undefined });
        landed = true;
        if (!d.already) c.metric({ metric: "snapVaultBackupCopies", labels: { type: d.type ?? "unknown" }, value: 1, once: names.pod });
        if (d.status === "completedWithErrors")
          c.event(
            "Warning",
            "BackupCopyCompletedWithErrors",
            `backup copy of ${e.name} (PVC ${e.persistentVolumeClaim}) completed with errors: ${d.message ?? ""}${d.unreadable?.length ? ` (${d.unreadable.slice(0, 3).join(", ")})` : ""}`.slice(
              0,
              1000,
            ),
            `bcwe/${names.pod}`,
          );
        break;
      }
      case "destination":
        st.destinationFailures = (st.destinationFailures ?? 0) + 1;
        st.retryAt = formatTime(now + backoff(f.settings.retryBaseMs, st.destinationFailures));
        waiting = `backup copy of ${e.name} failed on the primary copy ${b.copy ?? ""}: ${v.message}`;
        set(e, { state: "Pending", lastError: v.message.slice(0, 1000) });
        c.event(
          "Warning",
          "BackupCopyDestinationFault",
          `${waiting} (no attempt counted; retry at ${st.retryAt})`.slice(0, 1000),
          `bdest/${names.pod}`,
        );
        break;
      case "source":
        sourceFault(c, e, v.message, v.once);
        break;
      case "missing":
        missing(c, e, "SourceSnapshotDeleted", v.message);
        break;
      case "restart":
        set(e, { state: "Pending" });
        break;
      case "wait":
        c.wake(v.running ? 2000 : 3000);
    }
  }

  // An Inline run does not wait forever for a primary copy that keeps failing: this round's backup copies are tried
  // again in the next run, at no cost to their budget.
  const run = c.status.run;
  if (inline(c) && (st.destinationFailures ?? 0) >= MAX_DESTINATION_FAILURES && run && run.phase === "Running")
    for (const e of c.entries)
      if (e.cutBy === run.number && e.backupCopy?.state === "Pending")
        set(e, { state: "Retrying", reason: "DestinationFault", round: run.number });

  const round = st.round ?? 0;
  const todo = c.entries
    .filter(
      (e) => e.uid && (e.backupCopy?.state === "Pending" || (e.backupCopy?.state === "Retrying" && (e.backupCopy.round ?? 0) < round)),
    )
    .sort((a, b) => time(a) - time(b) || a.name.localeCompare(b.name));
  const lib = t?.library;
  let streams = lib ? lib.maxStreams - (t?.streamsInUse ?? 0) : 0;
  const unmatched = new Set<string>();
  for (const e of todo) {
    const s = vs.get(e.uid as string);
    // A snapshot not ready (or failing) is the vault copy's business: its faults are counted there.
    if (!s || !s.readyToUse || s.error) continue;
    if (!t || t.problem || !t.access || !lib || !t.repositoryId) {
      waiting = t?.problem ?? `storage policy ${f.sv.spec.storagePolicy ?? ""} has no primary copy ready`;
      break;
    }
    if (lib.phase !== "Ready") {
      waiting = `library ${lib.name} of the primary copy ${t.copy} is ${lib.phase ?? "Pending"}${lib.message ? `: ${lib.message}` : ""}`;
      break;
    }
    if (t.pruning) {
      waiting = `data aging prunes the primary copy ${t.copy}`;
      break;
    }
    const blocked = blockingWindow(f.policy?.operationWindows, "BackupCopy", now, f.policy?.timeZone);
    if (blocked) {
      waiting = `operation window "${blocked.window.name}" blocks backup copies until ${formatTime(blocked.endsAt)}`;
      c.wake(blocked.endsAt - now);
      break;
    }
    const retryAt = parseTime(st.retryAt);
    if (retryAt !== undefined && retryAt > now) {
      waiting ??= `a backup copy failed on the primary copy; retrying at ${st.retryAt}`;
      c.wake(retryAt - now);
      break;
    }
    if (streams <= 0) {
      waiting = `all ${lib.maxStreams} streams of library ${lib.name} are in use`;
      break;
    }
    const access = accessOf(c, s.pvc);
    const d = backupCopyPlacement({ access, copy: t.placement, nodes: f.nodes });
    st.placement = d.rule;
    if (d.unmatched) {
      unmatched.add(d.unmatched);
      waiting = `${d.unmatched}: backup copies of PVC ${s.pvc} wait`;
      continue;
    }
    const podN = backupPodName(f.sv.name, s.uid, (e.backupCopy?.pods ?? 0) + 1);
    const refused = f.rejected?.find((x) => x.name === podN);
    if (refused) {
      st.destinationFailures = (st.destinationFailures ?? 0) + 1;
      st.retryAt = formatTime(now + backoff(f.settings.retryBaseMs, st.destinationFailures));
      waiting = refused.message;
      c.event("Warning", "PodRejected", `backup copy of ${e.name}: ${refused.message}`, `brejected/${podN}/${st.destinationFailures}`);
      continue;
    }
    streams--;
    start(c, e, s, d.placement);
  }
  st.waiting = waiting?.slice(0, 1000);
  if (waiting) c.wake(waiting.includes("streams") ? 5000 : 10_000);
  if (landed && t?.copy) c.plan.rescan = t.copy;

  const n = (state: string) => c.entries.filter((e) => e.backupCopy?.state === state).length;
  st.counts = {
    pending: n("Pending"),
    copying: n("Copying"),
    copied: n("Copied"),
    retrying: n("Retrying"),
    missing: n("Missing"),
    skipped: n("Skipped"),
  };
  const jobs = (type: string) => c.entries.filter((e) => e.backupCopy?.state === "Copied" && e.backupCopy.type === type).length;
  st.jobs = { full: jobs("full"), incremental: jobs("incremental"), differential: jobs("differential") };
  return accessCondition(c, unmatched);
}

function accessCondition(c: Ctx, unmatched: Set<string>): NonNullable<ReadyPlan["others"]> {
  const spec = c.f.sv.spec.backupCopy?.accessNodes;
  const perPvc = c.f.pvcs.filter((p) => p.accessNodes?.length);
  if (!spec && perPvc.length === 0) return [];
  if (unmatched.size)
    return [
      {
        type: "AccessNodes",
        status: "False",
        reason: "NoAccessNode",
        message: `${[...unmatched].join("; ")}: backup copies wait`.slice(0, 1000),
      },
    ];
  const what = [
    spec ? describeAccessNodes({ selector: spec }) : undefined,
    ...perPvc.map((p) => `PVC ${p.name}: ${describeAccessNodes({ names: p.accessNodes })}`),
  ]
    .filter(Boolean)
    .join("; ");
  return [{ type: "AccessNodes", status: "True", reason: "Matched", message: `backup copies run on ${what}`.slice(0, 1000) }];
}
