// The user-facing latency of `kubectl auxo jobs <policy>` (docs/cli.md) on a storage policy with N jobs over three
// copies: the primary, a synchronous copy "offsite" with every job and a selective copy "monthly" (Monthly, First
// full) holding every 28th job (all fulls), on a hostPath filesystem library, with one job event per copied job
// beside each secondary (bench/fixture.ts, the fixture of bench/rebuild.ts). The world is the full local one; the
// operator runs in this process (agentImage "auxo:dev", no automatic aux copy or data aging), and the manifests are
// applied in a fresh namespace; the runs start once every copy's repository is ready and scanned (no operator pod
// left) and the StoragePolicy's status names its MediaAgent image.
//
// Timed: the real plugin as a subprocess through kubectl (`kubectl auxo jobs gold -n <ns> -o json`, PATH with
// <repo>/bin and Node.js 24, KUBECONFIG the world's admin kubeconfig), once untimed to warm up, then `runs` times;
// then once as a table and once with `--copy offsite`. Each output is checked: N rows, and each job's state on each
// copy as the fixture made it (primary and offsite: every job Available; monthly: Available for the jobs it holds,
// ToBeCopied for the first full of each subclient and calendar month (UTC) that it does not hold and the incremental
// the full carries, nothing for the others). Peer, interleaved with the plugin's runs: plain `restic snapshots --json`
// of the three repositories as uid 65532, in parallel (like the plugin's three list pods) and one after another.
// Breakdown, untimed and after the runs: a plugin run with its list pods polled every 100 ms (created → running →
// ended → gone), the plugin's gather (policyView + listCopies) and decision (jobListing) called in this process on
// the same cluster, each list pod's log (bytes, lines, parse time), the list task without a pod (`auxo agent list`
// on the host as uid 65532 with the pod's AUXO_TASK, its restic calls timed through a wrapper; with the pod's fresh
// restic cache folder and without), `restic snapshots` with a fresh cache folder and with --no-cache, Node.js start
// of the plugin and of the agent, `restic cat config` (the list task's second restic call) and the listing of the
// secondaries' job events.
//   node bench/cli-jobs.ts [jobs=10000] [runs=5]
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { listCopies, policyView, requireImage } from "../src/cli/gather.ts";
import { cliPodInput, runPod } from "../src/cli/pods.ts";
import { registerControllers } from "../src/controllers/index.ts";
import type { LibraryObj } from "../src/controllers/resources.ts";
import { KubeClient } from "../src/kube/client.ts";
import { loadClusterConfig } from "../src/kube/config.ts";
import { metadataStore } from "../src/mediaagent/metadata.ts";
import { buildAgentPod } from "../src/mediaagent/pod.ts";
import { copyHistoryOf, jobRecords, METADATA_SUFFIX } from "../src/policy/jobevents.ts";
import { type JobRow, type JobState, jobListing, stateCounts } from "../src/policy/joblisting.ts";
import { installCrds } from "../test/harness/crds.ts";
import type { Obj } from "../test/harness/kube-rest.ts";
import { testManager } from "../test/harness/operator-testing.ts";
import { repoRoot, tools } from "../test/harness/tools.ts";
import { World } from "../test/harness/world.ts";
import {
  COPIES,
  type Copy,
  createNamespace,
  createPolicyManifests,
  holds,
  jobOf,
  policyFixture,
  POLICY,
  removeNamespace,
  SUBCLIENTS,
} from "./fixture.ts";
import { AGENT_UID, load, pct, secs } from "./lib.ts";

const n = Number(process.argv[2] ?? 10000);
const runs = Number(process.argv[3] ?? 5);
if (!Number.isInteger(n) || n < 1 || !Number.isInteger(runs) || runs < 1)
  throw new Error(`usage: node bench/cli-jobs.ts [jobs=10000] [runs=5], got ${process.argv.slice(2).join(" ")}`);
const ns = `cli-jobs-${randomBytes(3).toString("hex")}`;
const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-bench-cli-jobs-"));
chmodSync(dir, 0o755); // uid 65532 (restic, the MediaAgents) walks into it
const world = new World({ dir: path.join(dir, "world") });
const password = randomBytes(16).toString("hex");
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const s3 = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const median = (xs: number[]) => pct(xs, 50);
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
const failures: string[] = [];

/** What the fixture made: each job's state on each copy (absent: the copy does not hold it and will not take it). */
function expectedStates(startOf: (i: number) => number): Map<Copy, Map<string, JobState>> {
  const out = new Map<Copy, Map<string, JobState>>(COPIES.map((c) => [c, new Map()]));
  for (let i = 0; i < n; i++) for (const c of ["primary", "offsite"] as const) out.get(c)?.set(jobOf(i).jobId, "Available");
  // The monthly copy (Selective, Monthly, First full): the first full of each subclient in each UTC calendar month,
  // and the incrementals it carries (its subclient's next jobs up to the first completed one: here just the next,
  // i+20, which is never a full as i is a multiple of 7); it holds every 28th job.
  const monthly = out.get("monthly") as Map<string, JobState>;
  const firstOfMonth = new Set<string>();
  const selected = new Set<number>();
  for (let i = 0; i < n; i += 7) {
    const key = `${i % SUBCLIENTS} ${new Date(startOf(i)).toISOString().slice(0, 7)}`;
    if (firstOfMonth.has(key)) continue;
    firstOfMonth.add(key);
    selected.add(i);
    if (i + SUBCLIENTS < n) selected.add(i + SUBCLIENTS);
  }
  for (let i = 0; i < n; i++) {
    if (holds.monthly(i)) monthly.set(jobOf(i).jobId, "Available");
    else if (selected.has(i)) monthly.set(jobOf(i).jobId, "ToBeCopied");
  }
  return out;
}

const countsOf = (m: Map<string, JobState>): Partial<Record<JobState, number>> => {
  const o: Partial<Record<JobState, number>> = {};
  for (const s of m.values()) o[s] = (o[s] ?? 0) + 1;
  return o;
};
const countsText = (o: Partial<Record<string, number>>) =>
  Object.entries(o)
    .sort()
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
const sameCounts = (a: Partial<Record<string, number>>, b: Partial<Record<string, number>>) => countsText(a) === countsText(b);

interface PluginRun {
  ms: number;
  code: number;
  stdout: string;
  stderr: string;
}

const loadBefore = load();
let mgr: ReturnType<typeof testManager> | undefined;
let nsCreated = false;
try {
  await world.start();
  const kube = world.cp.client;
  await installCrds(kube);

  // The fixture, not timed: the policy's three repositories.
  const fx = await policyFixture({ dir, worldDir: world.dir, ns, n, password });
  const expected = expectedStates(fx.startOf);
  const expectedCounts = new Map(COPIES.map((c) => [c, countsOf(expected.get(c) as Map<string, JobState>)]));

  // The operator, and the manifests in a fresh namespace; then wait for every copy ready and scanned.
  mgr = testManager(world.cp.kubeconfig);
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    allowHostPathLibraries: true,
    autoAuxCopy: false,
    dataAging: false,
    scanIntervalSeconds: 3600,
  });
  await mgr.start();
  nsCreated = true;
  await createNamespace(kube, ns);
  const setupStart = performance.now();
  await createPolicyManifests(kube, ns, fx.libRoot, password);
  let image: string | undefined;
  for (;;) {
    const [copies, policy, pods] = await Promise.all([
      kube.get(api("policycopies")),
      kube.get(api("storagepolicies", POLICY)),
      kube.get(`/api/v1/namespaces/${ns}/pods`),
    ]);
    const ready = (copies.items as Obj[]).filter((o) => {
      const s = o.status ?? {};
      const cond = (s.conditions ?? []).find((c: Obj) => c.type === "Ready");
      return (
        cond?.status === "True" &&
        s.repositoryReady === true &&
        s.lastScanTime &&
        s.jobs?.available === fx.expected.get(o.metadata.name as Copy)
      );
    });
    image = policy.status?.mediaAgentImage;
    if (ready.length === COPIES.length && image && (pods.items as Obj[]).length === 0) break;
    if (performance.now() - setupStart > Math.max(600_000, n * 60)) {
      for (const o of copies.items as Obj[]) console.error(`${o.metadata.name}: ${JSON.stringify(o.status)}`);
      throw new Error(
        `the copies were not all ready and scanned (or the policy names no image) after ${secs(performance.now() - setupStart)}`,
      );
    }
    await sleep(200);
  }
  const setupMs = performance.now() - setupStart;

  // The plugin, as a user runs it: kubectl finds bin/kubectl-auxo on PATH.
  const kubectl = tools().kubectl;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: [path.join(repoRoot, "bin"), tools().nodeBin, process.env.PATH].join(path.delimiter),
    KUBECONFIG: world.cp.kubeconfig,
  };
  const plugin = (...args: string[]): Promise<PluginRun> => {
    const t = performance.now();
    return new Promise((resolve) => {
      execFile(kubectl, ["auxo", ...args], { env, encoding: "utf8", maxBuffer: 1 << 30 }, (err, stdout, stderr) =>
        resolve({ ms: performance.now() - t, code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
      );
    });
  };
  const jobsArgs = ["jobs", POLICY, "-n", ns];
  // Does the plugin start at all (kubectl finds it, Node.js loads it)?
  const probe = await plugin("--help");
  if (probe.code !== 0) throw new Error(`kubectl auxo --help failed (exit ${probe.code}): ${probe.stderr.trim()}`);

  /** Checks a run's JSON against the fixture; returns the per-copy counts it printed. */
  const checkJson = (what: string, r: PluginRun, shown: readonly Copy[]): string => {
    const bad = (msg: string) => {
      failures.push(`${what}: ${msg}`);
      return `WRONG (${msg})`;
    };
    if (r.code !== 0) return bad(`exit code ${r.code}, stderr: ${r.stderr.trim().slice(0, 2000)}`);
    if (r.stderr.trim()) failures.push(`${what}: stderr not empty: ${r.stderr.trim().slice(0, 2000)}`);
    let data: { copies: { name: string; states: Partial<Record<string, number>>; error?: string }[]; jobs: JobRow[] };
    try {
      data = JSON.parse(r.stdout) as typeof data;
    } catch (e) {
      return bad(`stdout is not JSON (${(e as Error).message}): ${r.stdout.slice(0, 200)}`);
    }
    if (data.jobs.length !== n) return bad(`${data.jobs.length} rows, expected ${n}`);
    // By precedence: the primary 1, the others in creation order, then name (offsite and monthly are created
    // within one second, so monthly comes first); only the set is checked.
    const names = data.copies.map((c) => c.name);
    if ([...names].sort().join(",") !== [...shown].sort().join(",")) return bad(`copies ${names.join(",")}, expected ${shown.join(",")}`);
    for (const c of data.copies) {
      if (c.error) return bad(`copy ${c.name}: ${c.error}`);
      const want = expectedCounts.get(c.name as Copy) ?? {};
      if (!sameCounts(c.states, want)) return bad(`copy ${c.name}: states ${countsText(c.states)}, expected ${countsText(want)}`);
    }
    const wrong: string[] = [];
    for (const row of data.jobs)
      for (const c of COPIES) {
        const want = shown.includes(c) ? expected.get(c)?.get(row.jobId) : undefined;
        if (row.states[c] !== want) wrong.push(`${row.jobId} on ${c}: ${row.states[c] ?? "-"}, expected ${want ?? "-"}`);
      }
    if (wrong.length) return bad(`${wrong.length} job states differ, e.g. ${wrong.slice(0, 3).join("; ")}`);
    if (data.jobs[0]?.jobId !== jobOf(n - 1).jobId || data.jobs.at(-1)?.jobId !== jobOf(0).jobId)
      return bad(`not newest first: ${data.jobs[0]?.jobId} … ${data.jobs.at(-1)?.jobId}`);
    return `right (${n} rows; ${data.copies.map((c) => `${c.name}: ${countsText(c.states)}`).join("; ")})`;
  };

  /** Checks the table: a header and N rows, the last three columns each job's state on a copy (the header names it). */
  const checkTable = (r: PluginRun): string => {
    const bad = (msg: string) => {
      failures.push(`table: ${msg}`);
      return `WRONG (${msg})`;
    };
    if (r.code !== 0) return bad(`exit code ${r.code}, stderr: ${r.stderr.trim().slice(0, 2000)}`);
    const lines = r.stdout.trimEnd().split("\n");
    const header = (lines[0] ?? "").split(/\s+/);
    const columns = header.slice(-3).map((h) => h.toLowerCase()) as Copy[];
    if ([...columns].sort().join(",") !== [...COPIES].sort().join(",")) return bad(`header ${lines[0]}`);
    if (lines.length - 1 !== n) return bad(`${lines.length - 1} rows, expected ${n}`);
    const counts = new Map<Copy, Partial<Record<string, number>>>(COPIES.map((c) => [c, {}]));
    let wrong = 0;
    let example = "";
    for (const line of lines.slice(1)) {
      const cells = line.split(/\s+/);
      if (cells.length !== header.length) {
        wrong++;
        example ||= line;
        continue;
      }
      cells.slice(-3).forEach((s, k) => {
        const c = columns[k] as Copy;
        const want = expected.get(c)?.get(cells[0] as string) ?? "-";
        if (s !== want) {
          wrong++;
          example ||= `${cells[0]} on ${c}: ${s}, expected ${want}`;
        }
        const m = counts.get(c) as Partial<Record<string, number>>;
        if (s !== "-") m[s] = (m[s] ?? 0) + 1;
      });
    }
    if (wrong) return bad(`${wrong} cells differ, e.g. ${example}`);
    return `right (${n} rows; ${columns.map((c) => `${c}: ${countsText(counts.get(c) ?? {})}`).join("; ")})`;
  };

  // Peer: plain restic snapshots --json of the three repositories, in parallel and one after another.
  const peerParallel = async () => {
    const t = performance.now();
    const lists = await Promise.all(COPIES.map((c) => fx.list(c)));
    lists.forEach((l, k) => {
      if (l.length !== fx.expected.get(COPIES[k] as Copy)) failures.push(`peer: ${COPIES[k]} lists ${l.length} snapshots`);
    });
    return performance.now() - t;
  };
  const peerSequential = async () => {
    const per = new Map<Copy, number>();
    for (const c of COPIES) {
      const t = performance.now();
      await fx.list(c);
      per.set(c, performance.now() - t);
    }
    return per;
  };

  // Warm-up (untimed), then the timed runs, each followed by the peer.
  const warm = await plugin(...jobsArgs, "-o", "json");
  const warmCheck = checkJson("warm-up", warm, COPIES);
  const jsonRuns: PluginRun[] = [];
  const checks: string[] = [];
  const parallelMs: number[] = [];
  const sequential: Map<Copy, number>[] = [];
  for (let k = 0; k < runs; k++) {
    const r = await plugin(...jobsArgs, "-o", "json");
    jsonRuns.push(r);
    checks.push(checkJson(`run ${k + 1}`, r, COPIES));
    parallelMs.push(await peerParallel());
    sequential.push(await peerSequential());
  }
  const tableRun = await plugin(...jobsArgs);
  const tableCheck = checkTable(tableRun);
  const offsiteRun = await plugin(...jobsArgs, "--copy", "offsite", "-o", "json");
  const offsiteCheck = checkJson("--copy offsite", offsiteRun, ["offsite"]);

  // Breakdown (untimed). 1: a plugin run with its list pods polled every 100 ms.
  type Span = { copy: string; seen: number; running?: number; ended?: number; gone?: number };
  const spans = new Map<string, Span>();
  const traced = plugin(...jobsArgs, "-o", "json");
  const tracedStart = performance.now();
  let tracedDone = false;
  void traced.then(() => (tracedDone = true));
  for (;;) {
    const at = performance.now() - tracedStart;
    const done = tracedDone;
    const list = await kube.get(`/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent("auxo.dev/started-by=kubectl-auxo")}`);
    const names = new Set<string>();
    for (const p of list.items as Obj[]) {
      names.add(p.metadata.name);
      const s: Span = spans.get(p.metadata.name) ?? { copy: p.metadata.labels?.["auxo.dev/copy"] ?? "?", seen: at };
      if (p.status?.phase === "Running") s.running ??= at;
      if (p.status?.phase === "Succeeded" || p.status?.phase === "Failed") {
        s.running ??= at;
        s.ended ??= at;
      }
      if (p.metadata.deletionTimestamp) s.gone ??= at;
      spans.set(p.metadata.name, s);
    }
    for (const [name, s] of spans) if (!names.has(name)) s.gone ??= at;
    if (done) break;
    await sleep(100);
  }
  const tracedRun = await traced;
  const tracedCheck = checkJson("traced run", tracedRun, COPIES);

  // 2: the plugin's gather and decision in this process (src/cli/gather.ts, src/policy/joblisting.ts).
  const { kubeConfig } = loadClusterConfig(world.cp.kubeconfig);
  const kc = new KubeClient(kubeConfig, { userAgent: "bench-cli-jobs" });
  let t = performance.now();
  const view = await policyView(kc, ns, POLICY);
  const viewMs = performance.now() - t;
  t = performance.now();
  const listed = await listCopies(kc, view, new Set(COPIES), Date.now());
  const gatherMs = performance.now() - t;
  for (const c of listed) if (c.error) failures.push(`in-process listCopies: ${c.name}: ${c.error}`);
  const now = Date.now();
  const listingMs: number[] = [];
  let rows: JobRow[] = [];
  for (let k = 0; k < 3; k++) {
    t = performance.now();
    rows = jobListing(listed, now);
    listingMs.push(performance.now() - t);
  }
  t = performance.now();
  const data = {
    storagePolicy: POLICY,
    namespace: ns,
    copies: listed.map((c) => ({ name: c.name, states: stateCounts(rows, c.name) })),
    jobs: rows,
  };
  const countsMs = performance.now() - t;
  t = performance.now();
  const json = `${JSON.stringify(data, null, 2)}\n`;
  const stringifyMs = performance.now() - t;
  t = performance.now();
  JSON.parse(json);
  const reparseMs = performance.now() - t;

  // 3: each list pod's log: size, lines, and the plugin's parse of it (JSON.parse of each '{"msg":"' line).
  const img = requireImage(view);
  const logs = await Promise.all(
    view.copies.map(async (c) => {
      const lib = view.libraries.get(c.spec.library) as LibraryObj;
      const t0 = performance.now();
      const { outcome, log = "" } = await runPod(kc, cliPodInput("list", c, lib, img, { listing: { runs: 0 } }), { wantLog: true });
      const podMs = performance.now() - t0;
      if (!outcome.ok) failures.push(`list pod of ${c.metadata.name}: ${outcome.message}`);
      const t1 = performance.now();
      let jobs = 0;
      let events = 0;
      let jobBytes = 0;
      let eventBytes = 0;
      const lines = log.split("\n");
      for (const line of lines) {
        if (!line.startsWith('{"msg":"')) continue;
        const m = JSON.parse(line) as { msg: string };
        if (m.msg === "job") {
          jobs++;
          jobBytes += Buffer.byteLength(line) + 1;
        } else if (m.msg === "jobevents") {
          events++;
          eventBytes += Buffer.byteLength(line) + 1;
        }
      }
      const parseMs = performance.now() - t1;
      return {
        copy: c.metadata.name,
        podMs,
        bytes: Buffer.byteLength(log),
        lines: lines.length - 1,
        jobs,
        events,
        jobBytes,
        eventBytes,
        parseMs,
      };
    }),
  );

  // 4: the list task without a pod: `auxo agent list` run on the host as uid 65532, the three at once, with the
  // pod's own AUXO_TASK (its paths mapped back to the host: the library's hostPath, the password file) and a fresh
  // restic cache folder each, as the pod's emptyDir; then again without RESTIC_CACHE_DIR (restic --no-cache).
  const hostList = (cache: boolean) =>
    Promise.all(
      view.copies.map(async (c) => {
        const lib = view.libraries.get(c.spec.library) as LibraryObj;
        const pod = buildAgentPod(cliPodInput("list", c, lib, img, { listing: { runs: 0 } })) as unknown as {
          spec: {
            containers: { env: { name: string; value?: string }[]; volumeMounts: { name: string; mountPath: string }[] }[];
            volumes: { name: string; hostPath?: { path: string } }[];
          };
        };
        const container = pod.spec.containers[0] as (typeof pod.spec.containers)[number];
        let task = container.env.find((e) => e.name === "AUXO_TASK")?.value ?? "";
        for (const m of container.volumeMounts) {
          const vol = pod.spec.volumes.find((v) => v.name === m.name);
          if (vol?.hostPath) task = task.split(`"${m.mountPath}/`).join(`"${vol.hostPath.path}/`);
        }
        const spec = JSON.parse(task) as { target: { passwordFile: string } };
        spec.target.passwordFile = path.join(fx.scratch, "pw");
        const home = path.join(fx.scratch, `agent-${c.metadata.name}-${randomBytes(3).toString("hex")}`);
        mkdirSync(path.join(home, "restic-cache"), { recursive: true });
        chownSync(home, AGENT_UID, AGENT_UID);
        chownSync(path.join(home, "restic-cache"), AGENT_UID, AGENT_UID);
        // restic through a wrapper that stamps each call's start and end (the agent's restic calls, timed).
        const trace = path.join(home, "trace");
        const wrapper = path.join(home, "restic");
        writeFileSync(
          wrapper,
          `#!/bin/sh\necho "$(date +%s.%N) start $*" >> ${trace}\n${path.join(world.dir, "bin", "restic")} "$@"\nrc=$?\necho "$(date +%s.%N) end" >> ${trace}\nexit $rc\n`,
          { mode: 0o755 },
        );
        const agentEnv = {
          AUXO_RESTIC: wrapper,
          PATH: [path.join(world.dir, "bin"), process.env.PATH].join(path.delimiter),
          AUXO_TASK: JSON.stringify(spec),
          AUXO_RESULT_FILE: path.join(home, "result"),
          HOME: home,
          ...(cache ? { RESTIC_CACHE_DIR: path.join(home, "restic-cache") } : {}),
        };
        const t0 = performance.now();
        const epoch0 = Date.now();
        const out = await new Promise<{ stdout: string; err?: Error }>((resolve) =>
          execFile(
            "setpriv",
            [
              `--reuid=${AGENT_UID}`,
              `--regid=${AGENT_UID}`,
              "--clear-groups",
              "--",
              path.join(world.dir, "bin", "node"),
              path.join(repoRoot, "src/main.ts"),
              "agent",
              "list",
            ],
            { env: agentEnv, encoding: "utf8", maxBuffer: 1 << 30 },
            (err, stdout) => resolve({ stdout, err: err ?? undefined }),
          ),
        );
        const ms = performance.now() - t0;
        if (out.err) failures.push(`auxo agent list on the host for ${c.metadata.name}: ${out.err.message}`);
        const result = out.stdout.split("\n").find((l) => l.startsWith('{"level":"info","msg":"result"'));
        if (!result) failures.push(`auxo agent list on the host for ${c.metadata.name}: no result line`);
        // The timeline: process start → each restic call (start/end, ms from the process start) → exit.
        const calls: { what: string; start: number; end?: number }[] = [];
        for (const line of readFileSync(trace, "utf8").trim().split("\n")) {
          const [stamp, kind, ...args] = line.split(" ");
          const at = Number(stamp) * 1000 - epoch0;
          if (kind === "start") calls.push({ what: args.filter((a) => !a.startsWith("-") && !a.startsWith("/")).join(" "), start: at });
          else {
            const open = calls.find((x) => x.end === undefined);
            if (open) open.end = at;
          }
        }
        return { copy: c.metadata.name, ms, bytes: Buffer.byteLength(out.stdout), calls };
      }),
    );
  const hostTasks = await hostList(true);
  const hostTasksNoCache = await hostList(false);
  // restic snapshots --no-lock as the agent runs it, the 3 at once: with a fresh cache folder (which it fills with
  // every snapshot file), and with --no-cache (as the peer).
  const rawSnapshots = async (cache: boolean) => {
    const out = new Map<Copy, number>();
    await Promise.all(
      COPIES.map(async (c) => {
        const dirArgs = ["--no-cache"];
        if (cache) {
          const d = path.join(fx.scratch, `cache-${c}-${randomBytes(3).toString("hex")}`);
          mkdirSync(d);
          chownSync(d, AGENT_UID, AGENT_UID);
          dirArgs.splice(0, 1, "--cache-dir", d);
        }
        const args = ["-r", fx.repoOf(c), "--password-file", path.join(fx.scratch, "pw"), ...dirArgs, "snapshots", "--json", "--no-lock"];
        const t0 = performance.now();
        await new Promise<void>((resolve, reject) =>
          execFile(
            "setpriv",
            [`--reuid=${AGENT_UID}`, `--regid=${AGENT_UID}`, "--clear-groups", "--", path.join(world.dir, "bin", "restic"), ...args],
            { env: { ...process.env, HOME: fx.scratch }, encoding: "utf8", maxBuffer: 1 << 30 },
            (err) => (err ? reject(err) : resolve()),
          ),
        );
        out.set(c, performance.now() - t0);
      }),
    );
    return out;
  };
  const cachedMs = await rawSnapshots(true);
  const uncachedMs = await rawSnapshots(false);

  // 5: the pieces of a list pod and of the plugin outside the cluster: Node.js starts, restic cat config, job events.
  const timeExec = async (file: string, args: string[], runEnv: NodeJS.ProcessEnv = env): Promise<number> => {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) =>
      execFile(file, args, { env: runEnv, encoding: "utf8" }, (err) => (err ? reject(err) : resolve())),
    );
    return performance.now() - t0;
  };
  const helpMs: number[] = [];
  const agentStartMs: number[] = [];
  for (let k = 0; k < 3; k++) {
    helpMs.push(await timeExec(kubectl, ["auxo", "--help"]));
    agentStartMs.push(await timeExec(path.join(tools().nodeBin, "node"), [path.join(repoRoot, "src/main.ts"), "version"]));
  }
  const configMs = new Map<Copy, number>();
  for (const c of COPIES) {
    t = performance.now();
    await fx.restic(fx.repoOf(c), {}, "cat", "config", "--no-lock");
    configMs.set(c, performance.now() - t);
  }
  const eventsMs = new Map<Copy, { ms: number; names: number; jobs: number }>();
  for (const c of ["offsite", "monthly"] as const) {
    const store = metadataStore({ path: `${fx.repoOf(c)}${METADATA_SUFFIX}` }, {});
    t = performance.now();
    const names = (await store?.list()) ?? [];
    const h = copyHistoryOf(jobRecords(names));
    eventsMs.set(c, { ms: performance.now() - t, names: names.length, jobs: h.lastCopied.size });
  }

  // The repositories are what the fixture wrote (nothing was written by the listings).
  const after = new Map<Copy, Set<string>>();
  for (const c of COPIES) after.set(c, new Set((await fx.list(c)).map((s) => s.id)));
  const unchanged = COPIES.map((c) => {
    const b = fx.before.get(c) as Set<string>;
    const a = after.get(c) as Set<string>;
    return { c, same: a.size === b.size && [...b].every((id) => a.has(id)), b: b.size, a: a.size };
  });
  if (unchanged.some((u) => !u.same)) failures.push("a repository changed");

  // The figures.
  const ms = jsonRuns.map((r) => r.ms);
  const plMed = median(ms);
  const parMed = median(parallelMs);
  const seqTotals = sequential.map((m) => [...m.values()].reduce((a, b) => a + b, 0));
  const seqMed = median(seqTotals);
  const bytes = (r: PluginRun) => Buffer.byteLength(r.stdout);
  const perCopySeq = COPIES.map((c) => `${c} ${s3(median(sequential.map((m) => m.get(c) as number)))}`).join(", ");
  console.log(
    `kubectl auxo jobs on a storage policy of ${n} jobs (${SUBCLIENTS} subclients, hourly, a full every 7th), 3 copies on one filesystem library (hostPath), through ${kubectl} and bin/kubectl-auxo, admin kubeconfig:`,
  );
  console.log(
    `  fixture (not part of the runs): ${secs(fx.ms.total)} (${fx.files} snapshot files, ${fx.events} job events); manifests applied → every copy ready and scanned, policy names its image (${image}): ${secs(setupMs)}`,
  );
  console.log(`    jobs in the repositories: ${COPIES.map((c) => `${c} ${fx.expected.get(c)}`).join(", ")}`);
  console.log(`    expected states: ${COPIES.map((c) => `${c}: ${countsText(expectedCounts.get(c) ?? {})}`).join("; ")}`);
  console.log(`  warm-up (untimed): ${s3(warm.ms)}, ${warmCheck}`);
  console.log(
    `  jobs -o json, ${runs} runs: median ${s3(plMed)}  min ${s3(Math.min(...ms))}  max ${s3(Math.max(...ms))}  (${ms.map(s3).join(", ")})`,
  );
  checks.forEach((c, k) => console.log(`    run ${k + 1}: ${c}`));
  console.log(`    output: ${bytes(jsonRuns[0] as PluginRun)} bytes (${mib(bytes(jsonRuns[0] as PluginRun))})`);
  console.log(`  jobs (table), once: ${s3(tableRun.ms)}, ${bytes(tableRun)} bytes, ${tableCheck}`);
  console.log(
    `  jobs --copy offsite -o json, once (reads offsite and its source primary): ${s3(offsiteRun.ms)}, ${bytes(offsiteRun)} bytes, ${offsiteCheck}`,
  );
  console.log(
    `  restic snapshots --json (peer, uid ${AGENT_UID}, ${runs} runs after each plugin run): the 3 in parallel median ${s3(parMed)} (${parallelMs.map(s3).join(", ")}); one after another median ${s3(seqMed)} (${perCopySeq})`,
  );
  console.log(
    `  ratio plugin/restic: ${(plMed / parMed).toFixed(2)}× against the 3 in parallel, ${(plMed / seqMed).toFixed(2)}× against one after another`,
  );
  console.log(`  breakdown (untimed runs after the timed ones):`);
  console.log(`    traced run (pods polled every 100 ms, times from the plugin's start): ${s3(tracedRun.ms)}, ${tracedCheck}`);
  for (const [name, s] of [...spans].sort((a, b) => a[1].seen - b[1].seen)) {
    const at = (x: number | undefined) => (x === undefined ? "?" : `+${s3(x)}`);
    console.log(
      `      pod ${name} (${s.copy}): created ${at(s.seen)}, running ${at(s.running)}, ended ${at(s.ended)}, gone ${at(s.gone)}  (start ${s.running !== undefined ? s3(s.running - s.seen) : "?"}, run ${s.running !== undefined && s.ended !== undefined ? s3(s.ended - s.running) : "?"}, ended → gone ${s.ended !== undefined && s.gone !== undefined ? s3(s.gone - s.ended) : "?"})`,
    );
  }
  const lastGone = Math.max(...[...spans.values()].map((s) => s.gone ?? 0));
  const firstSeen = Math.min(...[...spans.values()].map((s) => s.seen));
  console.log(
    `      before the first pod: ${s3(firstSeen)}; after the last pod gone: ${s3(tracedRun.ms - lastGone)} (decide, print, exit)`,
  );
  console.log(
    `    kubectl auxo --help (kubectl + Node.js start + the plugin's imports): median ${s3(median(helpMs))} (${helpMs.map(s3).join(", ")})`,
  );
  console.log(`    node src/main.ts version (the agent's Node.js start + imports, on the host): median ${s3(median(agentStartMs))}`);
  console.log(`    in process: policyView ${s3(viewMs)}; listCopies (3 list pods in parallel, logs read and parsed) ${s3(gatherMs)}`);
  console.log(
    `    in process: jobListing (planCopy for offsite and monthly) median ${s3(median(listingMs))} (${listingMs.map(s3).join(", ")}); stateCounts ${s3(countsMs)}; JSON.stringify ${s3(stringifyMs)} (${Buffer.byteLength(json)} bytes; JSON.parse of it ${s3(reparseMs)})`,
  );
  for (const l of logs)
    console.log(
      `    list pod of ${l.copy}: ${s3(l.podMs)} create → log read (runPod polls every 500 ms); log ${l.bytes} bytes (${mib(l.bytes)}), ${l.lines} lines: ${l.jobs} jobs ${l.jobBytes} bytes (${(l.jobBytes / Math.max(1, l.jobs)).toFixed(0)} per job), ${l.events} job records ${l.eventBytes} bytes; parse ${s3(l.parseMs)}`,
    );
  const hostTasksMs = (hs: typeof hostTasks) => Math.max(...hs.map((h) => h.ms));
  const perJob = Math.max(...logs.map((l) => (l.jobBytes + l.eventBytes) / Math.max(1, l.jobs)));
  console.log(
    `    a 10 MiB container log (a kubelet's containerLogMaxSize default; the local node runner has no limit) holds about ${Math.floor((10 * 1024 * 1024) / perJob)} jobs at the largest per-job size here (${perJob.toFixed(0)} bytes with its job record)`,
  );
  console.log(
    `    auxo agent list on the host as uid ${AGENT_UID}, no pod, the 3 at once (same AUXO_TASK, fresh restic cache): ${s3(hostTasksMs(hostTasks))} (${hostTasks.map((h) => `${h.copy} ${s3(h.ms)}, ${h.bytes} bytes out`).join("; ")})`,
  );
  for (const h of hostTasks) {
    const last = Math.max(...h.calls.map((x) => x.end ?? 0));
    console.log(
      `      ${h.copy}: Node.js start to the first restic call ${s3(h.calls[0]?.start ?? Number.NaN)}; ${h.calls.map((x) => `restic ${x.what} ${s3((x.end ?? Number.NaN) - x.start)}`).join(", ")}; after the last restic call (job events, lines printed, exit) ${s3(h.ms - last)}`,
    );
  }
  console.log(
    `    the same without RESTIC_CACHE_DIR (the agent's restic then runs with --no-cache): ${s3(hostTasksMs(hostTasksNoCache))} (${hostTasksNoCache.map((h) => `${h.copy} ${s3(h.ms)}: restic snapshots ${s3((h.calls[0]?.end ?? Number.NaN) - (h.calls[0]?.start ?? Number.NaN))}`).join("; ")})`,
  );
  console.log(
    `    restic snapshots --json --no-lock, the 3 at once: with a fresh --cache-dir (as the agent runs it) ${COPIES.map((c) => `${c} ${s3(cachedMs.get(c) as number)}`).join(", ")}; with --no-cache ${COPIES.map((c) => `${c} ${s3(uncachedMs.get(c) as number)}`).join(", ")}`,
  );
  console.log(
    `    restic cat config --no-lock (the list task's second restic call): ${COPIES.map((c) => `${c} ${s3(configMs.get(c) as number)}`).join(", ")}`,
  );
  console.log(
    `    job events listed and folded in process (readdir -r + jobRecords + copyHistoryOf): ${[...eventsMs].map(([c, e]) => `${c} ${e.names} files, ${e.jobs} jobs, ${s3(e.ms)}`).join("; ")}`,
  );
  console.log(
    `  repositories unchanged (snapshot IDs, before → after): ${unchanged.map((u) => `${u.c} ${u.b} → ${u.a} ${u.same ? "same" : "CHANGED"}`).join(", ")}`,
  );
  console.log(`  load average before: ${loadBefore}; after: ${load()} (${os.cpus().length} cores)`);
  if (failures.length) {
    console.log(`FAILURES (${failures.length}):`);
    for (const f of failures) console.log(`  ${f}`);
    process.exitCode = 1;
  }
} finally {
  if (nsCreated) await removeNamespace(world.cp.client, ns);
  await mgr?.stop();
  await world.stop();
  rmSync(dir, { recursive: true, force: true });
}
