// The pure rules of the local node runner: env resolution, $(VAR) expansion, scheduling, termination messages.
import { describe, expect, it } from "vitest";
import {
  ContainerConfigError,
  commandLine,
  expandVars,
  finalPhase,
  projectKeys,
  resolveEnv,
  restartBackoffMs,
  safeRelative,
  schedulable,
  shouldRestart,
  terminationMessage,
} from "../harness/node-runner/podspec.ts";

const pod = {
  metadata: { name: "p", namespace: "ns", uid: "u1", labels: { app: "db" } },
  spec: { nodeName: "n1", serviceAccountName: "sa" },
};
const sources = {
  secret: (n: string) => (n === "creds" ? { user: "u", pass: "p" } : undefined),
  configMap: (n: string) => (n === "cfg" ? { MODE: "vault", A: "1" } : undefined),
};

describe("expandVars", () => {
  const vars = new Map([
    ["A", "1"],
    ["B", "two"],
  ]);
  it("replaces defined variables, keeps undefined ones and unescapes $$", () => {
    expect(expandVars("$(A)-$(B)", vars)).toBe("1-two");
    expect(expandVars("$(C)", vars)).toBe("$(C)");
    expect(expandVars("$$(A)", vars)).toBe("$(A)");
    expect(expandVars("cost $5 $(A", vars)).toBe("cost $5 $(A");
    expect(expandVars("", vars)).toBe("");
  });
});

describe("resolveEnv", () => {
  it("applies envFrom first, then env, with later entries winning and $(VAR) expansion", () => {
    const env = resolveEnv(
      pod,
      {
        envFrom: [{ configMapRef: { name: "cfg" } }, { secretRef: { name: "creds" }, prefix: "S_" }],
        env: [
          { name: "A", value: "override" },
          { name: "P", valueFrom: { secretKeyRef: { name: "creds", key: "pass" } } },
          { name: "NS", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
          { name: "APP", valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: "PATHY", value: "/r/$(NS)/$(MODE)" },
        ],
      },
      sources,
    );
    expect(Object.fromEntries(env)).toEqual({
      MODE: "vault",
      A: "override",
      S_user: "u",
      S_pass: "p",
      P: "p",
      NS: "ns",
      APP: "db",
      PATHY: "/r/ns/vault",
    });
  });

  it("fails with the kubelet's words for a missing Secret or key, and skips optional ones", () => {
    expect(() => resolveEnv(pod, { env: [{ name: "X", valueFrom: { secretKeyRef: { name: "nope", key: "k" } } }] }, sources)).toThrow(
      new ContainerConfigError('secret "nope" not found'),
    );
    expect(() => resolveEnv(pod, { env: [{ name: "X", valueFrom: { secretKeyRef: { name: "creds", key: "k" } } }] }, sources)).toThrow(
      "couldn't find key k in Secret ns/creds",
    );
    expect(() => resolveEnv(pod, { envFrom: [{ configMapRef: { name: "nope" } }] }, sources)).toThrow('configmap "nope" not found');
    const env = resolveEnv(
      pod,
      {
        envFrom: [{ secretRef: { name: "nope", optional: true } }],
        env: [{ name: "X", valueFrom: { configMapKeyRef: { name: "cfg", key: "k", optional: true } } }],
      },
      sources,
    );
    expect(env.size).toBe(0);
  });
});

describe("commandLine", () => {
  it("uses command and args, expanded, or the image's known entrypoint", () => {
    const env = new Map([["T", "copy"]]);
    expect(commandLine({ command: ["auxo"], args: ["agent", "$(T)"] }, env, {})).toEqual(["auxo", "agent", "copy"]);
    expect(commandLine({ image: "auxo:dev", args: ["version"] }, env, { "auxo:dev": ["auxo"] })).toEqual(["auxo", "version"]);
    expect(() => commandLine({ image: "nginx" }, env, {})).toThrow(ContainerConfigError);
  });
});

describe("schedulable", () => {
  const node = { name: "n1", labels: { "kubernetes.io/hostname": "n1", zone: "a" } };
  const p = (spec: object, status: object = {}) => ({ metadata: {}, spec, status });
  it("takes pods without a node whose selectors and required affinity match", () => {
    expect(schedulable(p({}), node)).toBe(true);
    expect(schedulable(p({ nodeSelector: { zone: "a" } }), node)).toBe(true);
    expect(schedulable(p({ nodeSelector: { zone: "b" } }), node)).toBe(false);
    const aff = (op: string, values: string[]) => ({
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: "zone", operator: op, values }] }],
          },
        },
      },
    });
    expect(schedulable(p(aff("In", ["a", "b"])), node)).toBe(true);
    expect(schedulable(p(aff("NotIn", ["a"])), node)).toBe(false);
  });
  it("leaves pods for other schedulers, other nodes, or already finished", () => {
    expect(schedulable(p({ schedulerName: "volcano" }), node)).toBe(false);
    expect(schedulable(p({ nodeName: "n2" }), node)).toBe(false);
    expect(schedulable(p({}, { phase: "Failed" }), node)).toBe(false);
  });
});

describe("termination and restarts", () => {
  it("prefers the message file, falls back to the log tail only on error when asked", () => {
    expect(terminationMessage(undefined, "from file", 1, "log")).toBe("from file");
    expect(terminationMessage(undefined, "", 1, "log")).toBeUndefined();
    expect(terminationMessage("FallbackToLogsOnError", "", 1, "a\nb\n")).toBe("a\nb\n");
    expect(terminationMessage("FallbackToLogsOnError", "", 0, "a\nb\n")).toBeUndefined();
    expect(terminationMessage(undefined, "x".repeat(5000), 0, "")?.length).toBe(4096);
    expect(terminationMessage("FallbackToLogsOnError", "", 2, "y".repeat(5000))?.length).toBe(2048);
  });
  it("restarts by policy and computes the final phase", () => {
    expect(shouldRestart(undefined, 0)).toBe(true);
    expect(shouldRestart("OnFailure", 0)).toBe(false);
    expect(shouldRestart("OnFailure", 1)).toBe(true);
    expect(shouldRestart("Never", 1)).toBe(false);
    const e = (exitCode: number) => ({ name: "c", exitCode, startedAt: "", finishedAt: "" });
    expect(finalPhase([e(0), e(0)])).toBe("Succeeded");
    expect(finalPhase([e(0), e(3)])).toBe("Failed");
    expect(restartBackoffMs(1)).toBe(10_000);
    expect(restartBackoffMs(3)).toBe(40_000);
    expect(restartBackoffMs(20)).toBe(300_000);
  });
});

describe("volume files", () => {
  it("projects all keys or only the listed items, and refuses paths that leave the volume", () => {
    expect(projectKeys({ a: "1", b: "2" }, undefined, 0o400).map((f) => [f.path, f.mode])).toEqual([
      ["a", 0o400],
      ["b", 0o400],
    ]);
    expect(projectKeys({ a: "1", b: "2" }, [{ key: "b", path: "dir/b.txt" }], undefined)).toEqual([
      { path: "dir/b.txt", content: "2", mode: 0o644 },
    ]);
    expect(() => projectKeys({ a: "1" }, [{ key: "zz", path: "z" }], undefined)).toThrow(ContainerConfigError);
    expect(safeRelative("a/b")).toBe(true);
    expect(safeRelative("../etc")).toBe(false);
    expect(safeRelative("/etc")).toBe(false);
  });
});

describe("staging root", () => {
  it("picks a folder that no mount destination covers", async () => {
    const { stagingRoot } = await import("../harness/node-runner/runner.ts");
    expect(stagingRoot(["/tmp", "/data"], "/w/pod")).toBe("/run/auxo-local-node");
    expect(stagingRoot(["/run"], "/w/pod")).toBe("/var/tmp/auxo-local-node");
    expect(stagingRoot(["/run", "/var", "/dev"], "/w/pod")).toBe("/w/pod/stage");
  });
});
