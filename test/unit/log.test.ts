import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/observability/log.ts";

describe("logger", () => {
  it("redacts secret-bearing fields wherever a log call puts them", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = createLogger("info", sink);
    log.info(
      {
        pod: { env: { RESTIC_PASSWORD: "hunter2", AWS_SECRET_ACCESS_KEY: "s3cr3t", RESTIC_REPOSITORY: "s3:http://127.0.0.1/b" } },
        request: { headers: { authorization: "Bearer eyJtoken" } },
        secret: { data: { password: "cGFzcw==" }, stringData: { password: "pass" } },
        password: "top",
      },
      "starting copy",
    );
    const out = lines.join("");
    for (const leaked of ["hunter2", "s3cr3t", "eyJtoken", "cGFzcw==", '"pass"', '"top"']) expect(out).not.toContain(leaked);
    expect(out).toContain("s3:http://127.0.0.1/b"); // what is not secret stays readable
    expect(out).toContain("[redacted]");
  });
});
