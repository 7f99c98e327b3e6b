// The API as a user meets it: every manifest in examples/ is accepted by the real API server, every manifest in
// examples/invalid/ is rejected with the message its header promises, and the rules that judge changes (not
// single manifests) hold on update.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installCrds } from "../harness/crds.ts";
import type { KubeRest } from "../harness/kube-rest.ts";
import { admin, freshNamespace, world } from "../harness/testing.ts";
import { repoRoot } from "../harness/tools.ts";

let kube: KubeRest;
let ns: string;
let removeNs: () => Promise<void>;

function kubectl(...args: string[]): { ok: boolean; out: string } {
  try {
    return {
      ok: true,
      out: execFileSync("kubectl", [`--kubeconfig=${world().kubeconfig}`, "-n", ns, ...args], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      }),
    };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

beforeAll(async () => {
  kube = admin();
  await installCrds(kube);
  ({ name: ns, remove: removeNs } = await freshNamespace(kube, "api"));
});

afterAll(async () => {
  await removeNs?.();
  kube?.close();
});

const invalidDir = path.join(repoRoot, "examples/invalid");
const invalid = readdirSync(invalidDir).filter((f) => f.endsWith(".yaml"));

describe("examples", () => {
  it("applies the gold policy and the SnapVault, and lists them with kubectl get auxo", () => {
    const gold = kubectl("apply", "--server-side", "--field-manager=examples", "-f", path.join(repoRoot, "examples/gold"));
    expect(gold.ok, gold.out).toBe(true);
    for (const f of ["snapvault.yaml", "snapvault-backupcopy.yaml"]) {
      const sv = kubectl("apply", "--server-side", "--field-manager=examples", "-f", path.join(repoRoot, "examples", f));
      expect(sv.ok, sv.out).toBe(true);
    }
    const listed = kubectl("get", "auxo", "-o", "name");
    expect(listed.out.trim().split("\n").sort()).toEqual(
      [
        "auxcopyjob.auxo.dev/gold-offsite-catch-up",
        "library.auxo.dev/offsite-s3",
        "library.auxo.dev/onsite-disk",
        "policycopy.auxo.dev/monthly",
        "policycopy.auxo.dev/offsite",
        "policycopy.auxo.dev/primary",
        "snapvault.auxo.dev/databases",
        "snapvault.auxo.dev/orders",
        "storagepolicy.auxo.dev/gold",
      ].sort(),
    );
  });

  it("fills the defaults: retention, copy type, selection, calendar, schedules, job limits and snapshot copies", async () => {
    const primary = await kube.get(`/apis/auxo.dev/v1alpha1/namespaces/${ns}/policycopies/primary`);
    expect(primary.spec.retention).toMatchObject({ enableDataAging: true, days: 14, cycles: 2, spool: false });
    expect(primary.spec).toMatchObject({ copyType: "Synchronous", active: true, deduplication: { enabled: false } });
    // Verification is off unless asked for; where it is on, its defaults fill in.
    expect(primary.spec.dataVerification).toMatchObject({ enabled: false, scope: "AllJobs", afterCopy: false });
    const offsite = await kube.get(`/apis/auxo.dev/v1alpha1/namespaces/${ns}/policycopies/offsite`);
    expect(offsite.spec.dataVerification).toEqual({
      enabled: true,
      scope: "AllJobs",
      afterCopy: true,
      reverifyAfterDays: 90,
      schedule: { every: "24h", suspend: false },
    });
    const monthly = await kube.get(`/apis/auxo.dev/v1alpha1/namespaces/${ns}/policycopies/monthly`);
    expect(monthly.spec.selection).toMatchObject({ mode: "Automatic", frequency: "Monthly", full: "Last" });
    expect(monthly.spec.retention.calendar).toMatchObject({ weekStartsOn: "Friday", monthStartsOn: 1, yearStartsOn: "January" });
    expect(monthly.spec.retention.extended[0]).toMatchObject({ graceDays: 0, select: "Last" });
    const gold = await kube.get(`/apis/auxo.dev/v1alpha1/namespaces/${ns}/storagepolicies/gold`);
    expect(gold.spec).toMatchObject({ auxCopySchedule: { enabled: true, every: "30m" }, dataAging: { enabled: true, at: "12:00" } });
    const acj = await kube.get(`/apis/auxo.dev/v1alpha1/namespaces/${ns}/auxcopyjobs/gold-offsite-catch-up`);
    expect(acj.spec).toMatchObject({
      scalableResourceAllocation: true,
      jobLimit: 1000,
      maxRunningTime: "2h",
      suspend: false,
      cancel: false,
    });
    const sv = await kube.get(`/apis/auxo.dev/v1alpha1/namespaces/${ns}/snapvaults/databases`);
    // The retry budget is the operator's (--snap-retry-max-attempts, --snap-retry-max-days) unless spec.retry says.
    expect(sv.spec.retry).toBeUndefined();
    expect(sv.spec).toMatchObject({ mode: "Vault", stagingTimeout: "5m", schedule: { every: "1h", suspend: false } });
    expect(sv.spec.source.retention).toEqual({ days: 3, recoveryPoints: 0, spool: false, keepNewest: "Never" });
    expect(sv.spec.retention).toMatchObject({ days: 30, recoveryPoints: 0, ignoreCompletedWithErrorsForExtendedRetention: false });
    const orders = await kube.get(`/apis/auxo.dev/v1alpha1/namespaces/${ns}/snapvaults/orders`);
    expect(orders.spec.source.retention).toMatchObject({ spool: true, keepNewest: "Scheduled" });
    expect(orders.spec.backupCopy).toMatchObject({
      enabled: true,
      mode: "Inline",
      fullEvery: "168h",
      incrementalLimit: 6,
      schedule: { every: "24h", suspend: false },
      accessNodes: { matchLabels: { "auxo.dev/access-node": "true" } },
    });
  });
});

describe("examples/invalid", () => {
  it("has at least 15 manifests, each naming the error it expects", () => {
    expect(invalid.length).toBeGreaterThanOrEqual(15);
  });

  it.each(invalid)("rejects %s with its message", (file) => {
    const text = readFileSync(path.join(invalidDir, file), "utf8");
    const expected = /^# expect: (.+)$/m.exec(text)?.[1];
    expect(expected, `${file} has no '# expect:' line`).toBeTruthy();
    const res = kubectl("apply", "--server-side", "--field-manager=examples", "-f", path.join(invalidDir, file));
    expect(res.ok, `${file} was accepted`).toBe(false);
    expect(res.out).toContain(expected);
  });
});

describe("rules on change", () => {
  const patch = (kind: string, name: string, body: object) => kubectl("patch", kind, name, "--type=merge", "-p", JSON.stringify(body));

  it("refuses to move a copy to another policy", () => {
    const res = patch("policycopy", "offsite", { spec: { storagePolicy: "silver" } });
    expect(res.ok).toBe(false);
    expect(res.out).toContain("storagePolicy cannot be changed");
  });

  it("refuses to turn deduplication on or off after the copy exists", () => {
    const off = patch("policycopy", "offsite", { spec: { deduplication: { enabled: false } } });
    expect(off.ok).toBe(false);
    expect(off.out).toContain("deduplication cannot be turned on or off after the copy exists");
    const on = patch("policycopy", "primary", { spec: { deduplication: { enabled: true } } });
    expect(on.ok).toBe(false);
    expect(on.out).toContain("deduplication cannot be turned on or off after the copy exists");
  });

  it("lets a job be cancelled but not un-cancelled", () => {
    expect(patch("auxcopyjob", "gold-offsite-catch-up", { spec: { cancel: true } }).ok).toBe(true);
    const res = patch("auxcopyjob", "gold-offsite-catch-up", { spec: { cancel: false } });
    expect(res.ok).toBe(false);
    expect(res.out).toContain("a cancelled job cannot be un-cancelled");
  });

  it("accepts ordinary edits", () => {
    expect(patch("policycopy", "offsite", { spec: { retention: { days: 60 }, active: false } }).ok).toBe(true);
  });
});
