import { describe, expect, it } from "vitest";
import { ConfigError, parseDuration, parseOperatorConfig } from "../../src/config.ts";

describe("operator configuration", () => {
  it("has production defaults", () => {
    const c = parseOperatorConfig([], {});
    expect(c).toMatchObject({
      leaderElect: true,
      leaderElectionNamespace: "auxo-system",
      leaderElectionId: "auxo-operator",
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      probeAddress: ":8081",
      metricsAddress: ":8080",
      logLevel: "info",
    });
  });

  it("takes flags over environment variables", () => {
    const env = { POD_NAMESPACE: "backup", AUXO_LOG_LEVEL: "debug", POD_NAME: "auxo-0", AUXO_LEADER_ELECT: "false" };
    const c = parseOperatorConfig(["--log-level=warn"], env);
    expect(c).toMatchObject({ leaderElectionNamespace: "backup", logLevel: "warn", identity: "auxo-0", leaderElect: false });
  });

  it("names the flag in every error", () => {
    expect(() => parseOperatorConfig(["--leader-elect=maybe"], {})).toThrow(/--leader-elect: "maybe"/);
    expect(() => parseOperatorConfig(["--metrics-bind-address=8080"], {})).toThrow(/--metrics-bind-address/);
    expect(() => parseOperatorConfig(["--log-level=loud"], {})).toThrow(/--log-level/);
    expect(() => parseOperatorConfig(["--leader-election-namespace=Bad_NS"], {})).toThrow(/namespace name/);
    expect(() => parseOperatorConfig(["--leader-election-renew-deadline=20s"], {})).toThrow(ConfigError);
    expect(() => parseOperatorConfig(["--surprise"], {})).toThrow(ConfigError);
  });

  it("parses Go-style durations", () => {
    expect(parseDuration("d", "15s")).toBe(15_000);
    expect(parseDuration("d", "1m30s")).toBe(90_000);
    expect(parseDuration("d", "250ms")).toBe(250);
    expect(parseDuration("d", "1.5s")).toBe(1500);
    expect(() => parseDuration("d", "15")).toThrow(/not a duration/);
    expect(() => parseDuration("d", "")).toThrow(/not a duration/);
  });

  it("disables an endpoint with 0", () => {
    expect(parseOperatorConfig(["--metrics-bind-address=0"], {}).metricsAddress).toBe("");
  });
});

describe("tenancy settings", () => {
  it("refuses hostPath and NFS libraries unless a flag or AUXO_ALLOW_* allows them", () => {
    expect(parseOperatorConfig([], {})).toMatchObject({ allowHostPathLibraries: false, allowNfsLibraries: false });
    expect(parseOperatorConfig(["--allow-host-path-libraries=true"], {})).toMatchObject({
      allowHostPathLibraries: true,
      allowNfsLibraries: false,
    });
    expect(parseOperatorConfig([], { AUXO_ALLOW_NFS_LIBRARIES: "true" })).toMatchObject({
      allowHostPathLibraries: false,
      allowNfsLibraries: true,
    });
    expect(() => parseOperatorConfig(["--allow-nfs-libraries=perhaps"], {})).toThrow(/--allow-nfs-libraries: "perhaps"/);
  });
});
