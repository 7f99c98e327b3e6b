// bin/auxo under an older Node.js stops with one line saying what it needs, not a stack trace from the first type
// annotation it cannot parse. The machine's /usr/bin/node is older than 24; the tests' own Node.js is 24.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

const auxo = path.resolve(import.meta.dirname, "../../bin/auxo");
const run = (pathDirs: string[]) =>
  spawnSync(auxo, ["version"], { encoding: "utf8", env: { ...process.env, PATH: [...pathDirs, "/usr/bin", "/bin"].join(":") } });

describe("bin/auxo", () => {
  it("refuses an older Node.js in one line", () => {
    // The machine's own Node.js when it is older than 24 (here v20); elsewhere a stand-in that says it is v20.
    let dir = "/usr/bin";
    let old = existsSync("/usr/bin/node") ? spawnSync("/usr/bin/node", ["--version"], { encoding: "utf8" }).stdout.trim() : "";
    if (!(Number(old.slice(1).split(".")[0]) < 24)) {
      dir = mkdtempSync(path.join(tmpdir(), "old-node-"));
      writeFileSync(path.join(dir, "node"), "#!/bin/sh\necho v20.11.1\n");
      chmodSync(path.join(dir, "node"), 0o755);
      old = "v20.11.1";
    }
    const r = run([dir]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`auxo needs Node.js 24 or newer (found ${old})\n`);
  }, 60_000);

  it("runs under Node.js 24", () => {
    const r = run([path.dirname(process.execPath)]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^auxo \d+\.\d+\.\d+/);
    expect(r.status).toBe(0);
  }, 60_000); // a whole Node.js start with every module: slow on a loaded machine
});
