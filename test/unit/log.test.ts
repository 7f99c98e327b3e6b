// The logger hides credentials by the shape of what is logged, on the objects the operator really handles.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/kube/errors.ts";
import { buildAgentPod, podName } from "../../src/mediaagent/pod.ts";
import { createLogger } from "../../src/observability/log.ts";
import { repositoryAccess } from "../../src/policy/repository.ts";

function capture(): { log: ReturnType<typeof createLogger>; lines: () => Record<string, any>[]; text: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const log = createLogger("info", sink);
  const text = () => chunks.join("");
  return {
    log,
    text,
    lines: () =>
      text()
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l)),
  };
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

// A Secret as the API server returns it (GET /api/v1/namespaces/team-a/secrets/offsite-credentials).
const apiSecret = {
  kind: "Secret",
  apiVersion: "v1",
  metadata: {
    name: "offsite-credentials",
    namespace: "team-a",
    uid: "7d3c1f5e-0b6e-4a53-9a43-2f1f0d4c9b11",
    resourceVersion: "48211",
    creationTimestamp: "2026-11-30T09:12:44Z",
    managedFields: [
      { manager: "kubectl-create", operation: "Update", apiVersion: "v1", fieldsType: "FieldsV1", fieldsV1: { "f:data": {} } },
    ],
  },
  data: { AWS_ACCESS_KEY_ID: b64("AKIAEXAMPLEKEYID0001"), AWS_SECRET_ACCESS_KEY: b64("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") },
  type: "Opaque",
};

describe("logger", () => {
  it("redacts a Secret's data as the API returns it, keeping its name and keys readable", () => {
    const { log, lines, text } = capture();
    log.info({ secret: apiSecret }, "read Secret");
    log.info({ obj: { ...apiSecret, kind: undefined, stringData: { password: "from-string-data" } } }, "a list item");
    for (const leaked of [apiSecret.data.AWS_ACCESS_KEY_ID, apiSecret.data.AWS_SECRET_ACCESS_KEY, "from-string-data"])
      expect(text()).not.toContain(leaked);
    const first = lines()[0] as Record<string, any>;
    expect(first.secret.metadata.name).toBe("offsite-credentials");
    expect(first.secret.data).toEqual({ AWS_ACCESS_KEY_ID: "[redacted]", AWS_SECRET_ACCESS_KEY: "[redacted]" });
  });

  it("redacts env values of a MediaAgent pod whose names name a credential, and nothing else", () => {
    const target = repositoryAccess(
      { s3: { endpoint: "http://127.0.0.1:9000", bucket: "b", credentialsSecret: { name: "creds" } } },
      "ns/p/c",
      { secret: "repo-password", key: "password" },
    );
    const pod = buildAgentPod({
      task: "scan",
      namespace: "ns",
      name: podName("offsite", "scan", "7"),
      owner: { apiVersion: "auxo.dev/v1alpha1", kind: "PolicyCopy", name: "offsite", uid: "u1", controller: true },
      image: "ghcr.io/auxo-dev/auxo:1.0",
      target,
      deadlineSeconds: 600,
    }) as any;
    // What a careless edit (or a user's pod template) could add: literal credentials in the env list.
    pod.spec.containers[0].env.push(
      { name: "AWS_SECRET_ACCESS_KEY", value: "s3cr3t-literal-value" },
      { name: "RESTIC_PASSWORD", value: "hunter2-literal" },
      { name: "GITHUB_TOKEN", value: "ghp_literaltokenvalue" },
      { name: "RESTIC_COMPRESSION", value: "max" },
    );
    const { log, lines, text } = capture();
    log.info({ pod }, "creating pod");
    for (const leaked of ["s3cr3t-literal-value", "hunter2-literal", "ghp_literaltokenvalue"]) expect(text()).not.toContain(leaked);
    const env = (lines()[0] as Record<string, any>).pod.spec.containers[0].env as { name: string; value?: string; valueFrom?: any }[];
    expect(env.find((e) => e.name === "RESTIC_COMPRESSION")?.value).toBe("max");
    expect(env.find((e) => e.name === "AWS_SECRET_ACCESS_KEY" && e.value)?.value).toBe("[redacted]");
    // References to Secrets and the non-secret task stay readable: that is what an operator debugs with.
    expect(env.find((e) => e.name === "AWS_SECRET_ACCESS_KEY" && e.valueFrom)?.valueFrom).toEqual({
      secretKeyRef: { name: "creds", key: "AWS_SECRET_ACCESS_KEY" },
    });
    const task = JSON.parse(env.find((e) => e.name === "AUXO_TASK")?.value as string);
    expect(task.target.repository).toBe("s3:http://127.0.0.1:9000/b/ns/p/c");
    expect((lines()[0] as Record<string, any>).pod.metadata.name).toBe("offsite-scan-7");
  });

  it("redacts a Secret an error carries, in its fields and its cause", () => {
    const { log, lines, text } = capture();
    const cause = new ApiError("PATCH", "/api/v1/namespaces/team-a/secrets/gold-auxo-client", 422, {
      kind: "Status",
      reason: "Invalid",
      message: "Secret is invalid",
    });
    const err = Object.assign(new Error("client Secret not written", { cause }), { object: apiSecret, password: "in-an-error" });
    log.error({ err }, "apply failed");
    log.error(err, "apply failed again");
    for (const leaked of [apiSecret.data.AWS_SECRET_ACCESS_KEY, "in-an-error"]) expect(text()).not.toContain(leaked);
    for (const line of lines()) {
      expect(line.err.message).toBe("client Secret not written");
      expect(line.err.type).toBe("Error");
      expect(line.err.stack).toContain("log.test.ts");
      expect(line.err.cause.message).toContain("422 Invalid");
      expect(line.err.object.data.AWS_SECRET_ACCESS_KEY).toBe("[redacted]");
    }
  });

  it("redacts the credentials of an S3 client config, headers and URLs, nested at any depth", () => {
    const { log, lines, text } = capture();
    const s3Config = {
      endpoint: "http://127.0.0.1:9000",
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "AKIAEXAMPLEKEYID0002", secretAccessKey: "verysecretaccesskey", sessionToken: "sessiontok" },
      maxAttempts: 3,
    };
    log.info(
      {
        library: { name: "offsite-s3", client: { config: s3Config } },
        request: { headers: { authorization: "Bearer eyJtoken", "content-type": "application/json" } },
        rest: "rest:https://backup:restpassw0rd@rest.example.com/repo",
        env: { RESTIC_PASSWORD: "hunter2", RESTIC_REPOSITORY: "s3:http://127.0.0.1/b", RESTIC_PASSWORD_FILE: "/var/run/pw" },
        spec: { s3: { credentialsSecret: { name: "dr-credentials", accessKeyIdKey: "KEY_ID", secretAccessKeyKey: "SECRET_KEY" } } },
        password: "top",
      },
      "configured",
    );
    for (const leaked of ["AKIAEXAMPLEKEYID0002", "verysecretaccesskey", "sessiontok", "eyJtoken", "restpassw0rd", "hunter2", '"top"'])
      expect(text()).not.toContain(leaked);
    const l = lines()[0] as Record<string, any>;
    expect(l.library.client.config).toMatchObject({ endpoint: "http://127.0.0.1:9000", region: "us-east-1", maxAttempts: 3 });
    expect(l.request.headers["content-type"]).toBe("application/json");
    expect(l.rest).toBe("rest:https://[redacted]@rest.example.com/repo");
    expect(l.env).toMatchObject({ RESTIC_REPOSITORY: "s3:http://127.0.0.1/b", RESTIC_PASSWORD_FILE: "/var/run/pw" });
    // Where a credential is, is not secret.
    expect(l.spec.s3.credentialsSecret).toEqual({ name: "dr-credentials", accessKeyIdKey: "KEY_ID", secretAccessKeyKey: "SECRET_KEY" });
  });

  it("redacts a child logger's bindings", () => {
    const { log, text } = capture();
    log.child({ task: { token: "child-token-value", copy: "offsite" } }).info("bound");
    expect(text()).not.toContain("child-token-value");
    expect(text()).toContain("offsite");
  });
});
