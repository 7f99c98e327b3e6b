// The chart's alerts (PrometheusRule) and Grafana dashboard, checked with promtool built from its Go module: the
// rules and every dashboard query parse, every metric they name is exported by a real `auxo operator` process that
// has copied a job, the scrape passes `promtool check metrics`, and rule unit tests on the label sets of that scrape
// show the alerts fire when they should and stay quiet when they should not.
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as yaml from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tagsFor } from "../../src/policy/catalog.ts";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest, Obj } from "../harness/kube-rest.ts";
import { freePort, waitFor } from "../harness/net.ts";
import { ManagedProcess } from "../harness/proc.ts";
import { admin, freshNamespace, resticAsAgent, waitForStatus, world } from "../harness/testing.ts";
import { repoRoot, tools } from "../harness/tools.ts";

const chart = path.join(repoRoot, "charts/auxo");
const scratch = mkdtempSync(path.join(os.tmpdir(), "auxo-alerts-test-"));
const password = "alerts-repository-passphrase";
const restic = resticAsAgent(scratch, password);
let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;
let operator: ManagedProcess | undefined;
let metricsPort: number;
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const enc = { passwordSecret: { name: "repo-password" } };

function helm(...args: string[]): string {
  return execFileSync(tools().helm, args, {
    encoding: "utf8",
    env: {
      ...process.env,
      HELM_CACHE_HOME: path.join(world().dir, "helm-cache"),
      HELM_CONFIG_HOME: path.join(world().dir, "helm-config"),
      HELM_DATA_HOME: path.join(world().dir, "helm-data"),
    },
  });
}

/** promtool with `args`; its exit code and output (stdout and stderr), so a failed check shows what promtool said. */
function promtool(args: string[], input?: string): { code: number | null; out: string } {
  const r = spawnSync(tools().promtool, args, { input, encoding: "utf8", cwd: scratch });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const render = (...set: string[]): Obj[] =>
  yaml
    .loadAll(helm("template", "auxo", chart, "--namespace", "auxo-system", ...set.flatMap((s) => ["--set", s])))
    .filter((d): d is Obj => typeof d === "object" && d !== null);

const docs = () =>
  render(
    "prometheusRule.enabled=true",
    "grafanaDashboard.enabled=true",
    "metrics.serviceMonitor.enabled=true",
    "prometheusRule.additionalLabels.release=kps",
  );
const ruleGroups = (): Obj[] => (docs().find((d) => d.kind === "PrometheusRule") as Obj).spec.groups;
const alertRules = (): Obj[] => ruleGroups().flatMap((g) => g.rules);
/** The rendered rule groups as a Prometheus rule file, rules.yaml in the scratch folder. */
const writeRules = () => writeFileSync(path.join(scratch, "rules.yaml"), yaml.dump({ groups: ruleGroups() }));
const dashboard = (): Obj => JSON.parse(readFileSync(path.join(chart, "dashboards/auxo.json"), "utf8"));

/** Every query target of the dashboard (rows may nest panels). */
function panelQueries(d: Obj): { panel: string; refId: string; expr: string }[] {
  const out: { panel: string; refId: string; expr: string }[] = [];
  const walk = (panels: Obj[] = []) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) out.push({ panel: p.title, refId: t.refId, expr: t.expr });
      walk(p.panels);
    }
  };
  walk(d.panels);
  return out;
}

/** A query as Grafana sends it: its variables interpolated (all namespaces, typical intervals). */
const interpolate = (expr: string): string =>
  expr.replaceAll("$namespace", ".*").replaceAll("$__rate_interval", "2m").replaceAll("$__interval", "5m").replaceAll("$__range", "24h");

/**
 * The metric names a PromQL expression selects: what is left once strings, label matchers, ranges, grouping clauses,
 * offsets, function calls and operators are taken out. Enough for the queries of this chart (checked below against
 * the names they are written with).
 */
function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\boffset\s+\S+/g, " ");
  const words = [...s.matchAll(/\b[a-zA-Z_][a-zA-Z0-9_]*\b(?!\s*\()/g)].map((m) => m[0]);
  return words.filter((w) => !["and", "or", "unless", "bool"].includes(w));
}

/** Metric families a /metrics text declares (# TYPE), and the series names with samples. */
function exported(text: string): { families: Set<string>; sampled: Set<string> } {
  const families = new Set<string>();
  const sampled = new Set<string>();
  for (const line of text.split("\n")) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) families.add(t[1] as string);
    else if (line && !line.startsWith("#")) sampled.add(line.split(/[{ ]/)[0] as string);
  }
  return { families, sampled };
}
const declares = (e: ReturnType<typeof exported>, name: string) =>
  e.families.has(name) || e.families.has(name.replace(/_(count|sum|bucket)$/, ""));

/** The label sets of a metric's samples in a /metrics text. */
function labelSets(text: string, name: string): Record<string, string>[] {
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`))
    .map((l) =>
      Object.fromEntries([...l.slice(name.length + 1, l.lastIndexOf("}")).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]])),
    );
}
const series = (name: string, labels: Record<string, string>): string =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(",")}}`;

const scrape = async (): Promise<string> => await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();

beforeAll(async () => {
  execFileSync("chown", ["65532:65532", scratch]);
  kube = admin();
  await installCrds(kube);
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "alerts"));
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
  await kube.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    metadata: { name: "disk" },
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  });
  // `auxo operator` as users run it, with its own metrics port. No automatic aux copies or data aging: it watches
  // every namespace of the shared world, and this test starts the one run it needs.
  const probePort = await freePort();
  metricsPort = await freePort();
  operator = new ManagedProcess({
    name: "alerts-operator",
    command: path.join(repoRoot, "bin/auxo"),
    args: [
      "operator",
      `--kubeconfig=${world().kubeconfig}`,
      "--leader-elect=false",
      `--health-probe-bind-address=127.0.0.1:${probePort}`,
      `--metrics-bind-address=127.0.0.1:${metricsPort}`,
      "--auto-aux-copy=false",
      "--data-aging=false",
    ],
    logFile: path.join(world().dir, "alerts-operator.log"),
  });
  operator.start();
  await waitFor(
    "the operator ready",
    async () => ((await fetch(`http://127.0.0.1:${probePort}/readyz`).catch(() => undefined))?.ok ? true : undefined),
    { timeoutMs: 30_000 },
  ).catch((err) => {
    throw new Error(`${(err as Error).message}\n${operator?.tail()}`, { cause: err });
  });
  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { persistentVolumeClaim: { claimName: "disk" } } }));
  await kube.create(
    api("storagepolicies"),
    auxo("StoragePolicy", "gold", { primaryCopy: "primary", auxCopySchedule: { continuous: false } }),
  );
  await kube.create(api("policycopies"), auxo("PolicyCopy", "primary", { storagePolicy: "gold", library: "disk", encryption: enc }));
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "offsite", { storagePolicy: "gold", library: "disk", backups: { mode: "All" }, encryption: enc }),
  );
  for (const c of ["primary", "offsite"])
    await waitForStatus(kube, api("policycopies", c), `${c} initialised`, (s) => s.repositoryReady === true, { timeoutMs: 90_000 });
  // Two jobs on the primary, fed with the plain restic CLI; one aux copy run copies them.
  const pvc = await kube.get(`/api/v1/namespaces/${ns}/persistentvolumeclaims/disk`);
  const primary = path.join(world().controlPlaneDir, "node", "claims", ns, `disk-${pvc.metadata.uid}`, ns, "gold", "primary");
  const data = path.join(scratch, "data");
  mkdirSync(data);
  for (const [i, type] of (["full", "incremental"] as const).entries()) {
    writeFileSync(path.join(data, `f${i}`), randomBytes(4096));
    execFileSync("chown", ["-R", "65532:65532", data]);
    const job = { jobId: `db-${i}`, type, status: "completed" as const, client: "db", subclient: "pg" };
    restic(primary, {}, "backup", "-q", "--host", "db", ...tagsFor(job).flatMap((t) => ["--tag", t]), data);
  }
  await kube.create(api("auxcopyjobs"), auxo("AuxCopyJob", "run-1", { storagePolicy: "gold" }));
  const st = await waitForStatus(kube, api("auxcopyjobs", "run-1"), "the aux copy to finish", (s) =>
    ["Completed", "CompletedWithErrors", "Failed"].includes(s.phase),
  );
  expect(st.phase).toBe("Completed");
}, 180_000);

afterAll(async () => {
  await operator?.stop(5000);
  await removeNs?.();
  kube?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe("the chart's alerts and dashboard", () => {
  it("renders a PrometheusRule that promtool accepts, each alert with a severity, a description and a runbook", () => {
    const all = docs();
    const rule = all.find((d) => d.kind === "PrometheusRule") as Obj;
    expect(rule.apiVersion).toBe("monitoring.coreos.com/v1");
    expect(rule.metadata.labels.release).toBe("kps"); // additionalLabels, for the Prometheus' ruleSelector
    // Auxo's metrics carry the copy's namespace in `namespace`: a ServiceMonitor without honorLabels would rename it.
    expect((all.find((d) => d.kind === "ServiceMonitor") as Obj).spec.endpoints[0].honorLabels).toBe(true);
    writeRules();
    const check = promtool(["check", "rules", "--lint=all", "--lint-fatal", "rules.yaml"]);
    expect(check.out).toContain("SUCCESS: 5 rules found");
    expect(check.code, check.out).toBe(0);
    const rules = alertRules();
    expect(rules.map((r) => r.alert)).toEqual([
      "AuxoCopyFallenBehind",
      "AuxoAuxCopyRunFailed",
      "AuxoLibraryUnreachable",
      "AuxoSnapVaultSnapsMissing",
      "AuxoDataAgingStopped",
    ]);
    const operations = readFileSync(path.join(repoRoot, "docs/operations.md"), "utf8");
    for (const r of rules) {
      expect(["warning", "critical"], r.alert).toContain(r.labels.severity);
      expect(r.annotations.summary, r.alert).toContain("{{ $labels.namespace }}");
      expect(r.annotations.description, r.alert).toContain("{{ $labels.namespace }}");
      // The runbook link points at a heading of docs/operations.md.
      const [doc, anchor] = String(r.annotations.runbook_url).split("#");
      expect(doc).toMatch(/\/docs\/operations\.md$/);
      expect(anchor).toBe(r.alert.toLowerCase());
      expect(operations, `docs/operations.md has no heading for ${r.alert}`).toMatch(new RegExp(`^#+ ${r.alert}$`, "m"));
    }
    // Off by default: the chart installs neither without the Prometheus Operator and Grafana.
    const defaults = render().map((d) => d.kind);
    expect(defaults).not.toContain("PrometheusRule");
    expect(defaults).not.toContain("ConfigMap");
  });

  it("ships the dashboard in a ConfigMap for Grafana's sidecar, and every panel query parses", () => {
    const cm = docs().find((d) => d.kind === "ConfigMap") as Obj;
    expect(cm.metadata.labels.grafana_dashboard).toBe("1");
    expect(JSON.parse(cm.data["auxo.json"])).toEqual(dashboard());
    const custom = render("grafanaDashboard.enabled=true", "grafanaDashboard.label=dashboards", "grafanaDashboard.labelValue=auxo").find(
      (d) => d.kind === "ConfigMap",
    ) as Obj;
    expect(custom.metadata.labels).toMatchObject({ dashboards: "auxo" });
    expect(custom.metadata.labels.grafana_dashboard).toBeUndefined();

    const d = dashboard();
    const vars = Object.fromEntries(d.templating.list.map((v: Obj) => [v.name, v]));
    expect(vars.datasource).toMatchObject({ type: "datasource", query: "prometheus" });
    expect(vars.namespace).toMatchObject({ type: "query", includeAll: true, multi: true });
    const queries = panelQueries(d);
    const titles = new Set(queries.map((q) => q.panel));
    for (const t of ["Backlog per copy", "Lag per copy", "Aux copy throughput", "Reconcile errors", "Work queue depth"])
      expect(titles, t).toContain(t);
    for (const m of [
      "auxo_auxcopy_run_duration_seconds_count",
      "auxo_data_aging_runs_total",
      "auxo_verification_runs_total",
      "auxo_snapvault_runs_total",
    ])
      expect(
        queries.some((q) => q.expr.includes(m)),
        m,
      ).toBe(true);
    expect(queries.find((q) => q.panel === "Aux copy throughput")?.expr).toMatch(/rate\(auxo_auxcopy_copied_bytes_total/);
    // Each query as a recording rule, as Grafana sends it (variables interpolated); the namespace variable's
    // label_values() selector too.
    const selector = /^label_values\((.*), namespace\)$/.exec(vars.namespace.query.query)?.[1];
    expect(selector).toBeDefined();
    const recorded = [
      ...queries.map((q, i) => ({ record: `auxo:dashboard:query_${i}`, expr: interpolate(q.expr) })),
      { record: "auxo:dashboard:namespace_variable", expr: selector as string },
    ];
    for (const r of recorded) expect(r.expr, r.record).not.toContain("$");
    writeFileSync(path.join(scratch, "dashboard-rules.yaml"), yaml.dump({ groups: [{ name: "dashboard", rules: recorded }] }));
    const check = promtool(["check", "rules", "dashboard-rules.yaml"]);
    expect(check.out).toContain(`SUCCESS: ${recorded.length} rules found`);
    expect(check.code, check.out).toBe(0);
  });

  it("uses only metrics the running operator exports, and its /metrics passes promtool check metrics", async () => {
    const text = await waitFor("the copy's backlog and lag on /metrics", async () => {
      const t = await scrape();
      return labelSets(t, "auxo_copy_lag_seconds").some((l) => l.namespace === ns && l.copy === "offsite") ? t : undefined;
    });
    // The exposition format parses (a parse error exits 1), and the linter's only findings are three of
    // prom-client's default Node.js metrics (gauges named *_total), which Auxo does not name and no rule uses.
    const lint = promtool(["check", "metrics"], text);
    const findings = lint.out.trim().split("\n").filter(Boolean).sort();
    expect(findings).toEqual(
      ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"].map(
        (m) => `${m} non-counter metrics should not have "_total" suffix`,
      ),
    );
    expect(lint.code, lint.out).toBe(3); // lint findings only

    const used = new Set([
      ...alertRules().flatMap((r) => metricNames(r.expr)),
      ...panelQueries(dashboard()).flatMap((q) => metricNames(interpolate(q.expr))),
    ]);
    // The extraction finds what the queries are written with (it cannot pass by finding nothing).
    expect([...used].sort()).toEqual(
      [
        "auxo_auxcopy_copied_bytes_total",
        "auxo_auxcopy_copied_jobs_total",
        "auxo_auxcopy_run_duration_seconds_count",
        "auxo_copy_backlog_jobs",
        "auxo_copy_lag_seconds",
        "auxo_data_aging_runs_total",
        "auxo_library_phase",
        "auxo_snapvault_runs_total",
        "auxo_snapvault_snapshots",
        "auxo_verification_jobs_total",
        "auxo_verification_runs_total",
        "controller_runtime_reconcile_errors_total",
        "workqueue_depth",
      ].sort(),
    );
    const e = exported(text);
    const undeclared = [...used].filter((m) => !declares(e, m));
    expect(undeclared, "metrics the rules or the dashboard use and the operator does not export").toEqual([]);
    // What this test's run made has samples; the rest (SnapVault, data aging, verification runs, and reconcile
    // errors, which have no series before a controller's first error) is declared, with samples once they happen.
    for (const m of [
      "auxo_copy_backlog_jobs",
      "auxo_copy_lag_seconds",
      "auxo_auxcopy_copied_bytes_total",
      "auxo_auxcopy_copied_jobs_total",
      "auxo_auxcopy_run_duration_seconds_count",
      "auxo_library_phase",
      "workqueue_depth",
    ])
      expect(e.sampled, m).toContain(m);
    // The library gauge shows the library's status.phase (Ready: its probe wrote to the claim).
    const lib = await kube.get(api("libraries", "disk"));
    expect(lib.status.phase).toBe("Ready");
    const phases = labelSets(text, "auxo_library_phase").filter((l) => l.namespace === ns && l.library === "disk");
    expect(phases.map((l) => l.phase).sort()).toEqual(["Pending", "Ready", "Unreachable"]);
    expect(text).toContain(`${series("auxo_library_phase", { namespace: ns, library: "disk", phase: lib.status.phase })} 1`);
  });

  it("fires AuxoCopyFallenBehind on a lagging copy and AuxoAuxCopyRunFailed after a failed run, on the scrape's label sets", async () => {
    const text = await scrape();
    const copy = labelSets(text, "auxo_copy_lag_seconds").find((l) => l.namespace === ns && l.copy === "offsite") as Record<string, string>;
    const run = labelSets(text, "auxo_auxcopy_run_duration_seconds_count").find((l) => l.namespace === ns) as Record<string, string>;
    const lib = labelSets(text, "auxo_library_phase").find((l) => l.namespace === ns && l.phase === "Unreachable") as Record<
      string,
      string
    >;
    expect(copy).toEqual({ namespace: ns, policy: "gold", copy: "offsite" });
    expect(run).toEqual({ namespace: ns, policy: "gold", phase: "Completed" });
    expect(lib).toBeDefined();
    // Prometheus adds the target's labels (the ServiceMonitor keeps the metric's own namespace); the alerts drop them.
    const target = { instance: "10.0.0.7:8080", job: "auxo", pod: "auxo-7d9f-abcde" };
    const lag = series("auxo_copy_lag_seconds", { ...copy, ...target });
    const backlog = series("auxo_copy_backlog_jobs", { ...copy, ...target });
    const completed = series("auxo_auxcopy_run_duration_seconds_count", { ...run, ...target });
    const failed = series("auxo_auxcopy_run_duration_seconds_count", { ...run, phase: "Failed", ...target });
    const fallen = (lagText: string, jobs: number) => ({
      exp_labels: { severity: "warning", ...copy },
      exp_annotations: {
        summary: `Copy offsite of storage policy ${ns}/gold has fallen behind`,
        description:
          `Copy offsite of storage policy gold in namespace ${ns} has ${jobs} jobs waiting to be copied and its newest job is ` +
          `${lagText} behind its source's, as of the latest aux copy (thresholds: 50 jobs, 86400 s).`,
        runbook_url: "https://github.com/auxo-dev/auxo/blob/main/docs/operations.md#auxocopyfallenbehind",
      },
    });
    const runFailed = {
      exp_labels: { severity: "warning", namespace: ns, policy: "gold", phase: "Failed" },
      exp_annotations: {
        summary: `An aux copy of storage policy ${ns}/gold ended Failed`,
        description:
          `An AuxCopyJob of storage policy gold in namespace ${ns} ended Failed in the last 1h. Each copy's part in the ` +
          `job's status.copies says which copy failed and why: kubectl -n ${ns} get auxcopyjobs`,
        runbook_url: "https://github.com/auxo-dev/auxo/blob/main/docs/operations.md#auxoauxcopyrunfailed",
      },
    };
    const tests = {
      rule_files: ["rules.yaml"],
      evaluation_interval: "1m",
      tests: [
        {
          name: "a copy lagging 25 h behind for over an hour",
          interval: "1m",
          input_series: [
            { series: lag, values: "0x10 90000x100" },
            { series: backlog, values: "0x110" },
          ],
          alert_rule_test: [
            { eval_time: "9m", alertname: "AuxoCopyFallenBehind", exp_alerts: [] },
            { eval_time: "60m", alertname: "AuxoCopyFallenBehind", exp_alerts: [] }, // pending: lagging for 49 min
            { eval_time: "75m", alertname: "AuxoCopyFallenBehind", exp_alerts: [fallen("1d 1h 0m 0s", 0)] },
          ],
        },
        {
          name: "a copy with 51 jobs waiting",
          interval: "1m",
          input_series: [
            { series: lag, values: "0x100" },
            { series: backlog, values: "51x100" },
          ],
          alert_rule_test: [{ eval_time: "70m", alertname: "AuxoCopyFallenBehind", exp_alerts: [fallen("0s", 51)] }],
        },
        {
          name: "a copy just below both thresholds",
          interval: "1m",
          input_series: [
            { series: lag, values: "86400x200" },
            { series: backlog, values: "50x200" },
          ],
          alert_rule_test: [
            { eval_time: "90m", alertname: "AuxoCopyFallenBehind", exp_alerts: [] },
            { eval_time: "190m", alertname: "AuxoCopyFallenBehind", exp_alerts: [] },
          ],
        },
        {
          name: "completed runs, then a first failed run (a new series at 1), then a second one",
          interval: "1m",
          input_series: [
            { series: completed, values: "1x40 2x160" },
            { series: failed, values: "_x29 1x90 2x80" },
          ],
          alert_rule_test: [
            { eval_time: "20m", alertname: "AuxoAuxCopyRunFailed", exp_alerts: [] },
            { eval_time: "31m", alertname: "AuxoAuxCopyRunFailed", exp_alerts: [runFailed] },
            { eval_time: "45m", alertname: "AuxoAuxCopyRunFailed", exp_alerts: [runFailed] }, // a completed run adds none
            { eval_time: "85m", alertname: "AuxoAuxCopyRunFailed", exp_alerts: [runFailed] },
            { eval_time: "100m", alertname: "AuxoAuxCopyRunFailed", exp_alerts: [] }, // an hour after it, resolved
            { eval_time: "125m", alertname: "AuxoAuxCopyRunFailed", exp_alerts: [runFailed] }, // the second failure
          ],
        },
        {
          name: "completed runs only",
          interval: "1m",
          input_series: [{ series: completed, values: "_x10 1x50 2x50 3x50" }],
          alert_rule_test: [20, 70, 120, 150].map((m) => ({ eval_time: `${m}m`, alertname: "AuxoAuxCopyRunFailed", exp_alerts: [] })),
        },
        {
          name: "an unreachable library, for longer than 15 minutes",
          interval: "1m",
          input_series: [{ series: series("auxo_library_phase", { ...lib, ...target }), values: "0x5 1x30" }],
          alert_rule_test: [
            { eval_time: "15m", alertname: "AuxoLibraryUnreachable", exp_alerts: [] },
            {
              eval_time: "25m",
              alertname: "AuxoLibraryUnreachable",
              exp_alerts: [
                {
                  exp_labels: { severity: "critical", namespace: ns, library: "disk" },
                  exp_annotations: {
                    summary: `Library ${ns}/disk is unreachable`,
                    description:
                      `The probes of library disk in namespace ${ns} fail (status.phase Unreachable for 15m): no copy on ` +
                      `it can be written, read, verified or aged. status.message says why: kubectl -n ${ns} get library disk -o yaml`,
                    runbook_url: "https://github.com/auxo-dev/auxo/blob/main/docs/operations.md#auxolibraryunreachable",
                  },
                },
              ],
            },
          ],
        },
        {
          name: "a data aging run stopped by the breaker",
          interval: "1m",
          input_series: [
            { series: series("auxo_data_aging_runs_total", { ...copy, result: "completed", ...target }), values: "1x100" },
            { series: series("auxo_data_aging_runs_total", { ...copy, result: "stopped", ...target }), values: "_x10 1x90" },
          ],
          alert_rule_test: [
            { eval_time: "5m", alertname: "AuxoDataAgingStopped", exp_alerts: [] },
            {
              eval_time: "15m",
              alertname: "AuxoDataAgingStopped",
              exp_alerts: [
                {
                  exp_labels: { severity: "warning", ...copy },
                  exp_annotations: {
                    summary: `Data aging of copy offsite of ${ns}/gold was stopped by the mass-deletion breaker`,
                    description:
                      `A data aging run of copy offsite of storage policy gold in namespace ${ns} would have aged an unusually ` +
                      "large share of the copy's jobs and aged nothing (condition DataAging=False, reason MassDeletion). " +
                      "Check the retention and the clocks; if the run is right, set the copy's " +
                      "spec.retention.confirmMassAgingUntil a little ahead.",
                    runbook_url: "https://github.com/auxo-dev/auxo/blob/main/docs/operations.md#auxodataagingstopped",
                  },
                },
              ],
            },
            { eval_time: "30h", alertname: "AuxoDataAgingStopped", exp_alerts: [] }, // 26 h later, with no new stop
          ],
        },
        {
          name: "a SnapVault with a missing snap",
          interval: "1m",
          input_series: [
            {
              series: series("auxo_snapvault_snapshots", { namespace: ns, snapvault: "vault", state: "Copied", ...target }),
              values: "3x30",
            },
            {
              series: series("auxo_snapvault_snapshots", { namespace: ns, snapvault: "vault", state: "Missing", ...target }),
              values: "0x10 1x20",
            },
          ],
          alert_rule_test: [
            { eval_time: "12m", alertname: "AuxoSnapVaultSnapsMissing", exp_alerts: [] }, // not for 5 minutes yet
            {
              eval_time: "20m",
              alertname: "AuxoSnapVaultSnapsMissing",
              exp_alerts: [
                {
                  exp_labels: { severity: "warning", namespace: ns, snapvault: "vault" },
                  exp_annotations: {
                    summary: `SnapVault ${ns}/vault has missing snaps`,
                    description:
                      `SnapVault vault in namespace ${ns} lists 1 snapshot(s) in state Missing: they were not copied and will ` +
                      "not be retried unless re-picked. Each one's reason is in status.snapshots: " +
                      `kubectl -n ${ns} get snapvault vault -o yaml`,
                    runbook_url: "https://github.com/auxo-dev/auxo/blob/main/docs/operations.md#auxosnapvaultsnapsmissing",
                  },
                },
              ],
            },
          ],
        },
      ],
    };
    writeRules();
    writeFileSync(path.join(scratch, "rules-test.yaml"), yaml.dump(tests, { lineWidth: -1 }));
    const r = promtool(["test", "rules", "rules-test.yaml"]);
    expect(r.out).toContain("SUCCESS");
    expect(r.code, r.out).toBe(0);
  });
});
