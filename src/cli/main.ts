// kubectl auxo: answers a backup administrator's questions about a policy's copies (docs/cli.md). It reads Auxo's
// resources with the user's own rights and reads repositories only through MediaAgent pods it starts in the user's
// namespace, which mount the copies' Secrets: the plugin never sees a credential and never needs to reach a library.
import { parseArgs } from "node:util";
import * as yaml from "js-yaml";
import type { AcjObj, PolicyObj, SnapVaultObj } from "../controllers/resources.ts";
import { AuxCopyJobs, PersistentVolumeClaims, SnapVaults, StoragePolicies } from "../controllers/resources.ts";
import { KubeClient } from "../kube/client.ts";
import { loadClusterConfig, NoClusterConfigError } from "../kube/config.ts";
import { ApiError } from "../kube/errors.ts";
import type { RestoreResult } from "../mediaagent/protocol.ts";
import { type JobRow, type JobState, JobStates, jobListing, restoreOrder, stateCounts } from "../policy/joblisting.ts";
import { age, duration, parseSince, progressBar, size, table, UsageError, when } from "./format.ts";
import { CliError, getNamed, listCopies, listCopy, policyView, requireImage, sourceOf, unreadable } from "./gather.ts";
import { cliPodInput, deleteLivePods, runPod, STARTED_BY } from "./pods.ts";

export const usage = `kubectl auxo: job listings, history, aux copy and restore for Auxo storage policies

usage:
  kubectl auxo jobs <policy> [--copy C] [--state S] [--since D]   backup jobs and their state on each copy
  kubectl auxo history <policy> [--limit N]                       aux copy and data aging runs, newest first
  kubectl auxo snapshots <snapvault>                              a SnapVault's snapshots and their copies
  kubectl auxo auxcopy <policy> [--copy C] [--streams N] [--wait] start an aux copy now (--wait: follow it)
  kubectl auxo restore <policy> <job> --to-pvc P [--copy C] [--path DIR]
                                                                  restore a job into a PVC

flags:
  -n, --namespace NS    the namespace (default: the kubeconfig context's, else default)
  -o, --output FORMAT   table (default), json or yaml
      --kubeconfig F    kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)
      --context C       kubeconfig context
      --image I         MediaAgent image (default: the one the operator names in the policy's status)
  -h, --help            this help

--state takes ${JobStates.join(", ")}.
--since takes a duration back from now (90m, 36h, 7d, 2w) or a date (2026-11-30, 2026-11-30T08:00:00Z).
exit codes: 0 done, 1 failed, 2 usage, 3 the aux copy completed with errors.
`;

interface Flags {
  namespace?: string;
  output: "table" | "json" | "yaml";
  kubeconfig?: string;
  context?: string;
  image?: string;
  copy?: string;
  state?: string;
  since?: string;
  streams?: string;
  wait?: boolean;
  "to-pvc"?: string;
  path?: string;
  limit?: string;
}

const out = (s: string) => process.stdout.write(s);
const err = (s: string) => process.stderr.write(s);

function print(f: Flags, data: unknown, render: () => string): void {
  if (f.output === "json") out(`${JSON.stringify(data, null, 2)}\n`);
  else if (f.output === "yaml") out(yaml.dump(data, { noRefs: true, lineWidth: 160 }));
  else out(render());
}

function client(f: Flags): { kube: KubeClient; namespace: string } {
  const { kubeConfig } = loadClusterConfig(f.kubeconfig);
  if (f.context) {
    if (!kubeConfig.getContextObject(f.context)) throw new CliError(`context "${f.context}" is not in the kubeconfig`);
    kubeConfig.setCurrentContext(f.context);
  }
  const ctx = kubeConfig.getContextObject(kubeConfig.getCurrentContext());
  return { kube: new KubeClient(kubeConfig, { userAgent: "kubectl-auxo" }), namespace: f.namespace ?? ctx?.namespace ?? "default" };
}

const positive = (flag: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${flag}: "${v}" is not a positive whole number`);
  return n;
};

// ---- jobs ----

async function jobs(f: Flags, [policy]: string[]): Promise<number> {
  if (!policy) throw new UsageError("jobs needs a storage policy: kubectl auxo jobs <policy>");
  if (f.state !== undefined && !JobStates.includes(f.state as JobState))
    throw new UsageError(`--state: "${f.state}" is not a state (${JobStates.join(", ")})`);
  const now = Date.now();
  const since = f.since !== undefined ? parseSince(f.since, now) : undefined;
  const { kube, namespace } = client(f);
  const v = await policyView(kube, namespace, policy, f.image);
  requireImage(v);
  if (f.copy !== undefined && !v.copies.some((c) => c.metadata.name === f.copy))
    throw new CliError(`storagepolicy "${policy}" has no copy "${f.copy}" (copies: ${v.copies.map((c) => c.metadata.name).join(", ")})`);
  // A copy's states need its source's catalog too.
  const names = new Set(v.copies.map((c) => c.metadata.name));
  if (f.copy !== undefined) {
    const c = v.copies.find((x) => x.metadata.name === f.copy);
    const src = c && sourceOf(v, c);
    names.clear();
    names.add(f.copy);
    if (src !== undefined) names.add(src);
  }
  const copies = await listCopies(kube, v, names, now);
  const shown = f.copy !== undefined ? copies.filter((c) => c.name === f.copy) : copies;
  let rows = jobListing(copies, now).filter((r) => shown.some((c) => r.states[c.name] !== undefined));
  if (since !== undefined) rows = rows.filter((r) => Date.parse(r.startTime) >= since);
  if (f.state !== undefined) rows = rows.filter((r) => shown.some((c) => r.states[c.name] === f.state));
  for (const r of rows) for (const k of Object.keys(r.states)) if (!shown.some((c) => c.name === k)) delete r.states[k];
  for (const c of shown) if (c.error) err(`warning: copy ${c.name} could not be read: ${c.error}\n`);
  const data = {
    storagePolicy: policy,
    namespace,
    copies: shown.map((c) => ({
      name: c.name,
      primary: c.primary,
      copyType: c.copyType,
      precedence: c.precedence,
      ...(c.source ? { source: c.source } : {}),
      ...(c.error ? { error: c.error } : {}),
      states: stateCounts(rows, c.name),
    })),
    jobs: rows,
  };
  print(f, data, () => jobsTable(rows, shown, now));
  return shown.some((c) => c.error) ? 1 : 0;
}

function jobsTable(rows: JobRow[], copies: { name: string }[], now: number): string {
  if (rows.length === 0) return "No jobs found.\n";
  const headers = ["JOB", "TYPE", "STATUS", "CLIENT", "SUBCLIENT", "START", "AGE", "SIZE", ...copies.map((c) => c.name.toUpperCase())];
  return table(
    headers,
    rows.map((r) => [
      r.jobId,
      r.type,
      r.status,
      r.client,
      r.subclient,
      when(r.startTime),
      age(r.startTime, now),
      size(r.bytes),
      ...copies.map((c) => r.states[c.name] ?? "-"),
    ]),
  );
}

// ---- history ----

interface HistoryRow {
  kind: "AuxCopy" | "DataAging";
  name: string;
  copies: string;
  phase: string;
  startTime?: string;
  completionTime?: string;
  durationSeconds?: number;
  jobs?: number;
  bytes?: number;
  errors?: string;
}

async function history(f: Flags, [policy]: string[]): Promise<number> {
  if (!policy) throw new UsageError("history needs a storage policy: kubectl auxo history <policy>");
  const limit = positive("limit", f.limit) ?? 20;
  const { kube, namespace } = client(f);
  const v = await policyView(kube, namespace, policy, f.image);
  const rows: HistoryRow[] = [];
  const acjs = (await kube.list<AcjObj>(AuxCopyJobs, { namespace })).items.filter((j) => j.spec.storagePolicy === policy);
  for (const j of acjs) {
    const st = j.status ?? {};
    const start = st.startTime ?? j.metadata.creationTimestamp;
    const failed = (st.copies ?? []).filter((c) => (c.jobsFailed ?? 0) > 0 || c.phase === "Failed");
    const errors = [
      ...failed.map((c) => `${c.name}: ${c.jobsFailed ?? 0} failed${c.message ? ` (${c.message})` : ""}`),
      ...(st.phase === "Failed" || st.phase === "Killed" ? [st.message ?? st.reason ?? ""] : []),
    ].filter(Boolean);
    rows.push({
      kind: "AuxCopy",
      name: j.metadata.name,
      copies: (st.copies ?? []).map((c) => c.name).join(",") || (j.spec.copies ?? []).join(",") || "*",
      phase: st.phase ?? "Pending",
      startTime: start,
      completionTime: st.completionTime,
      durationSeconds: start && st.completionTime ? Math.round((Date.parse(st.completionTime) - Date.parse(start)) / 1000) : undefined,
      jobs: st.jobsCopied,
      bytes: st.bytesCopied,
      ...(errors.length ? { errors: errors.join("; ") } : {}),
    });
  }
  // Data aging runs: their records beside each copy's repository (they outlive the cluster), read by list pods.
  const warnings: string[] = [];
  await Promise.all(
    v.copies.map(async (c) => {
      const why = unreadable(v, c);
      if (why) return warnings.push(`copy ${c.metadata.name}: data aging runs not read: ${why}`);
      try {
        requireImage(v);
        const l = await listCopy(kube, v, c, { jobs: false, runs: limit });
        for (const r of l.runs) {
          const s = r.summary as { result?: string; agedBytes?: number; reclaimedBytes?: number; message?: string };
          rows.push({
            kind: "DataAging",
            name: `${c.metadata.name}#${r.run}`,
            copies: c.metadata.name,
            phase: s.result === "stopped" ? "Stopped" : "Completed",
            completionTime: r.at,
            jobs: r.jobs,
            bytes: s.agedBytes,
            ...(s.message ? { errors: s.message } : {}),
          });
        }
        if (l.metadataError) warnings.push(`copy ${c.metadata.name}: data aging records not read: ${l.metadataError}`);
      } catch (e) {
        warnings.push(`copy ${c.metadata.name}: data aging runs not read: ${e instanceof Error ? e.message : String(e)}`);
      }
    }),
  );
  const key = (r: HistoryRow) => r.startTime ?? r.completionTime ?? "";
  rows.sort((a, b) => key(b).localeCompare(key(a)));
  const shown = rows.slice(0, limit);
  for (const w of warnings) err(`warning: ${w}\n`);
  print(f, { storagePolicy: policy, namespace, runs: shown }, () =>
    shown.length === 0
      ? "No runs found.\n"
      : table(
          ["KIND", "NAME", "COPIES", "PHASE", "START", "END", "DURATION", "JOBS", "BYTES", "ERRORS"],
          shown.map((r) => [
            r.kind,
            r.name,
            r.copies,
            r.phase,
            when(r.startTime),
            when(r.completionTime),
            r.durationSeconds !== undefined ? duration(r.durationSeconds * 1000) : "-",
            r.jobs !== undefined ? String(r.jobs) : "-",
            size(r.bytes),
            r.errors ?? "",
          ]),
        ),
  );
  return warnings.length ? 1 : 0;
}

// ---- snapshots ----

async function snapshots(f: Flags, [name]: string[]): Promise<number> {
  if (!name) throw new UsageError("snapshots needs a SnapVault: kubectl auxo snapshots <snapvault>");
  const { kube, namespace } = client(f);
  const sv = await getNamed<SnapVaultObj>(kube, SnapVaults, namespace, name);
  const list = [...(sv.status?.snapshots ?? [])].sort((a, b) => (b.creationTime ?? "").localeCompare(a.creationTime ?? ""));
  const now = Date.now();
  print(f, { snapVault: name, namespace, mode: sv.spec.mode, snapshots: list }, () =>
    list.length === 0
      ? "No snapshots found.\n"
      : table(
          ["SNAPSHOT", "PVC", "CREATED", "STATE", "ATTEMPTS", "REASON", "COPIED AS", "SIZE", "BACKUP COPY", "JOB"],
          list.map((s) => [
            s.name,
            s.persistentVolumeClaim,
            age(s.creationTime, now),
            s.state,
            String(s.attempts ?? 0),
            s.reason ?? "",
            s.copiedAs ? s.copiedAs.slice(0, 8) : "-",
            size(s.bytes),
            s.backupCopy ? `${s.backupCopy.state}${s.backupCopy.type ? ` (${s.backupCopy.type})` : ""}` : "-",
            s.backupCopy?.jobId ?? "-",
          ]),
        ),
  );
  return 0;
}

// ---- auxcopy ----

const exitOf = (phase: string | undefined) => (phase === "Completed" ? 0 : phase === "CompletedWithErrors" ? 3 : 1);
const ENDED = new Set(["Completed", "CompletedWithErrors", "Failed", "Killed"]);

async function auxcopy(f: Flags, [policy]: string[]): Promise<number> {
  if (!policy) throw new UsageError("auxcopy needs a storage policy: kubectl auxo auxcopy <policy>");
  const streams = positive("streams", f.streams);
  const { kube, namespace } = client(f);
  await getNamed<PolicyObj>(kube, StoragePolicies, namespace, policy);
  const created = await kube.create<AcjObj>(AuxCopyJobs, {
    apiVersion: "auxo.dev/v1alpha1",
    kind: "AuxCopyJob",
    metadata: { name: "", generateName: `${policy.slice(0, 40)}-manual-`, namespace, labels: { [STARTED_BY]: "kubectl-auxo" } },
    spec: { storagePolicy: policy, ...(f.copy ? { copies: [f.copy] } : {}), ...(streams ? { streams } : {}) },
  } as AcjObj);
  const name = created.metadata.name;
  err(`auxcopyjob.auxo.dev/${name} created\n`);
  if (!f.wait) {
    print(f, { name, namespace }, () => `${name}\n`);
    return 0;
  }
  const tty = process.stderr.isTTY === true;
  let last = "";
  let st: AcjObj["status"];
  for (;;) {
    st = (await kube.get<AcjObj>(AuxCopyJobs, namespace, name)).status;
    const copies = st?.copies ?? [];
    const total = copies.reduce((s, c) => s + (c.bytesTotal ?? 0), 0);
    const done = copies.reduce((s, c) => s + (c.bytesCopied ?? 0), 0);
    const line = `${(st?.phase ?? "Pending").padEnd(10)} ${progressBar(done, total || undefined)}  jobs ${st?.jobsCopied ?? 0}/${st?.jobsSelected ?? "?"}${
      st?.reason && !ENDED.has(st.phase ?? "") ? `  (${st.reason})` : ""
    }`;
    if (tty) err(`\r\u001b[2K${line}`);
    else if (line !== last) err(`${line}\n`);
    last = line;
    if (ENDED.has(st?.phase ?? "")) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  if (tty) err("\n");
  err(`${name}: ${st?.phase}${st?.message ? `: ${st.message}` : ""}\n`);
  print(f, { name, namespace, status: st }, () => "");
  return exitOf(st?.phase);
}

// ---- restore ----

async function restore(f: Flags, [policy, job]: string[]): Promise<number> {
  if (!policy || !job) throw new UsageError("restore needs a storage policy and a job: kubectl auxo restore <policy> <job> --to-pvc <pvc>");
  const pvc = f["to-pvc"];
  if (!pvc) throw new UsageError("restore needs --to-pvc: the PersistentVolumeClaim the files go to");
  const folder = (f.path ?? "").replace(/^\/+|\/+$/g, "");
  if (folder.split("/").includes("..")) throw new UsageError(`--path: "${f.path}" may not contain ..`);
  const { kube, namespace } = client(f);
  const v = await policyView(kube, namespace, policy, f.image);
  const image = requireImage(v);
  await getNamed(kube, PersistentVolumeClaims, namespace, pvc);
  if (f.copy !== undefined && !v.copies.some((c) => c.metadata.name === f.copy))
    throw new CliError(`storagepolicy "${policy}" has no copy "${f.copy}"`);
  const order = restoreOrder(
    v.copies.map((c) => ({ name: c.metadata.name, copyType: c.spec.copyType ?? "Synchronous", precedence: c.status?.precedence ?? 99, c })),
    f.copy,
  );
  const tty = process.stderr.isTTY === true;
  const tried: string[] = [];
  for (const { c } of order) {
    const why = unreadable(v, c);
    if (why) {
      tried.push(`${c.metadata.name}: skipped, ${why}`);
      err(`copy ${c.metadata.name}: skipped, ${why}\n`);
      continue;
    }
    err(`restoring job ${job} from copy ${c.metadata.name} into pvc ${pvc}:/${folder}\n`);
    const input = cliPodInput("restore", c, v.libraries.get(c.spec.library) as NonNullable<ReturnType<typeof v.libraries.get>>, image, {
      restore: { jobId: job, mountPath: "/restore", path: folder },
      claims: [{ name: "restore-target", claimName: pvc, mountPath: "/restore", readOnly: false }],
    });
    let shownLine = "";
    const { outcome } = await runPod(kube, input, {
      onProgress: (p) => {
        const line = progressBar(p.bytesDone ?? 0, p.bytesTotal);
        if (tty) err(`\r\u001b[2K${line}`);
        else if (line !== shownLine) err(`${line}\n`);
        shownLine = line;
      },
    });
    if (tty && shownLine) err("\n");
    const r = outcome.data as Partial<RestoreResult>;
    if (outcome.ok) {
      const data = { storagePolicy: policy, job, copy: c.metadata.name, persistentVolumeClaim: pvc, path: `/${folder}`, ...r };
      print(
        f,
        data,
        () => `restored job ${job} from copy ${c.metadata.name}: ${r.files ?? 0} files, ${size(r.bytes)} into pvc ${pvc}:/${folder}\n`,
      );
      return 0;
    }
    tried.push(`${c.metadata.name}: ${outcome.message}`);
    err(`copy ${c.metadata.name}: ${outcome.message}\n`);
  }
  throw new CliError(`job ${job} could not be restored from any copy (${tried.join("; ") || "no copy to try"})`);
}

// ---- main ----

const commands: Record<string, (f: Flags, args: string[]) => Promise<number>> = { jobs, history, snapshots, auxcopy, restore };

export async function kubectlAuxo(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        namespace: { type: "string", short: "n" },
        output: { type: "string", short: "o", default: "table" },
        kubeconfig: { type: "string" },
        context: { type: "string" },
        image: { type: "string" },
        copy: { type: "string" },
        state: { type: "string" },
        since: { type: "string" },
        streams: { type: "string" },
        wait: { type: "boolean" },
        "to-pvc": { type: "string" },
        path: { type: "string" },
        limit: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    err(`kubectl auxo: ${e instanceof Error ? e.message : String(e)}\n\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...args] = positionals;
  if (values.help || command === undefined || command === "help") {
    out(usage);
    return command === undefined && !values.help ? 2 : 0;
  }
  const run = commands[command];
  if (!run) {
    err(`kubectl auxo: unknown command "${command}"\n\n${usage}`);
    return 2;
  }
  if (!["table", "json", "yaml"].includes(values.output as string)) {
    err(`kubectl auxo: -o ${values.output}: use table, json or yaml\n`);
    return 2;
  }
  const onInt = () => void deleteLivePods().finally(() => process.exit(130));
  process.once("SIGINT", onInt);
  process.once("SIGTERM", onInt);
  try {
    return await run(values as Flags, args);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`kubectl auxo ${command}: ${e.message}\n`);
      return 2;
    }
    if (e instanceof CliError || e instanceof NoClusterConfigError) {
      err(`kubectl auxo ${command}: ${e.message}\n`);
      return 1;
    }
    if (e instanceof ApiError) {
      // The API server's words (a 403 names the verb and resource the user lacks).
      err(`kubectl auxo ${command}: ${e.code === 403 ? "forbidden: " : ""}${e.apiMessage}\n`);
      return 1;
    }
    throw e;
  } finally {
    await deleteLivePods();
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onInt);
  }
}
