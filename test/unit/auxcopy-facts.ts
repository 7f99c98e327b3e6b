// Plain facts for the aux copy plan tests: a policy "nightly" with a primary, target copies on libraries that are
// Ready, and a fixed clock.
import type { CopySide, PartPod, RunFacts, TargetFacts } from "../../src/policy/auxcopy.ts";
import type { CopyPart } from "../../src/policy/auxcopy.ts";

export const NOW = Date.parse("2026-03-01T12:00:00Z");
export const at = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
export const MINUTE = 60_000;

export const side = (name: string, library = "disk", over: Partial<CopySide> = {}): CopySide => ({
  name,
  library: { name: library, phase: "Ready", maxStreams: 10 },
  repositoryReady: true,
  access: { repository: `/repo/${name}`, options: {}, volumes: [], env: [] },
  ...over,
});

/** A target copy filled from `source` (the primary unless said), with its source's facts. */
export function target(name: string, over: Partial<TargetFacts> & { source?: string; library?: string } = {}): TargetFacts {
  const { source = "primary", library = "disk", ...rest } = over;
  return {
    name,
    copy: { ...side(name, library), source, rules: { copyType: "Synchronous" } },
    sourceCopy: side(source),
    deadHosts: [],
    ...rest,
  };
}

export const podOf = (name: string, over: Partial<PartPod> = {}): PartPod => ({
  name,
  uid: `uid-${name}`,
  createdAt: NOW - MINUTE,
  ...over,
});

/** The facts of job "run1" of policy "nightly", created an hour ago; `status` is what the last reconcile wrote. */
export function facts(
  over: Partial<Omit<RunFacts, "job">> & {
    spec?: Partial<RunFacts["job"]["spec"]>;
    status?: RunFacts["job"]["status"];
    parts?: CopyPart[];
  } = {},
): RunFacts {
  const { spec, status, parts, ...rest } = over;
  const st = status ?? (parts ? { startTime: at(NOW - 10 * MINUTE), phase: "Running" as const, copies: parts } : {});
  return {
    job: {
      name: "run1",
      namespace: "team",
      uid: "uid-run1",
      resourceVersion: "100",
      createdAt: at(NOW - 60 * MINUTE),
      spec: { storagePolicy: "nightly", ...spec },
      status: st,
      owner: {
        apiVersion: "auxo.dev/v1alpha1",
        kind: "AuxCopyJob",
        name: "run1",
        uid: "uid-run1",
        controller: true,
        blockOwnerDeletion: true,
      },
    },
    policy: { name: "nightly", primaryCopy: "primary", timeZone: "UTC" },
    pods: [],
    targets: [target("offsite")],
    others: [],
    streamQueue: [],
    streams: { job: 0, byLibrary: {} },
    settings: { agentImage: "auxo:test", retryBaseMs: 1000, progressIntervalMs: 2000, pendingGiveUpMs: 10 * MINUTE },
    now: NOW,
    ...rest,
  };
}

/** A finished copy pod's result. */
export const ended = (data: Record<string, unknown>, ok = true, message = ok ? "copied" : "failed") => ({
  ok,
  message,
  at: at(NOW - 5000),
  data,
});
