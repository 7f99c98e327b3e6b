import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadClusterConfig, NoClusterConfigError } from "../../src/kube/config.ts";

describe("loadClusterConfig", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-cfg-"));
  const file = path.join(dir, "kubeconfig");
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
  );

  it("fails with a clear message instead of falling back to localhost:8080", () => {
    const env = { HOME: dir };
    const saved = process.env.HOME;
    process.env.HOME = dir; // os.homedir() reads HOME
    try {
      expect(() => loadClusterConfig(undefined, env)).toThrow(NoClusterConfigError);
      expect(() => loadClusterConfig(undefined, env)).toThrow(/no cluster configuration found/);
    } finally {
      process.env.HOME = saved;
    }
  });

  it("prefers --kubeconfig, then $KUBECONFIG", () => {
    expect(loadClusterConfig(file, {}).kubeConfig.getCurrentCluster()?.server).toBe("https://127.0.0.1:6443");
    expect(loadClusterConfig(undefined, { KUBECONFIG: file }).source).toBe(`$KUBECONFIG ${file}`);
    expect(() => loadClusterConfig(path.join(dir, "missing"), {})).toThrow(/does not exist/);
  });
});
