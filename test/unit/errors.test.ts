// Sorting restic's failures by their cause (issue 12, item 4): retry warnings never decide the kind, a run Auxo
// stopped is judged by why it waited, and the message names the cause, not restic's trailing repository address.
import { describe, expect, it } from "vitest";
import { classify, lastWords, readStderr, retryCause } from "../../src/engine/errors.ts";
import { backendErrorReporter, describeLock, fitResult } from "../../src/mediaagent/agent.ts";

// restic 0.18.1's real stderr, captured from runs against versitygw through a TCP relay that cut or held
// connections, a filesystem repository with an overwritten pack, and a repository locked by `restic key passwd`.
// Ports, IDs and times are as captured.
const dumpCut =
  "Load(<data/9f352a3727>, 1076625, 0) returned error, retrying after 1.285596177s: unexpected EOF\nLoad(<data/9f352a3727>, 1923531, 1076625) returned error, retrying after 1.419333134s: unexpected EOF\nLoad(<data/9f352a3727>, 1076625, 0) returned error, retrying after 1.04663983s: unexpected EOF\nLoad(<data/9f352a3727>, 1923531, 1076625) returned error, retrying after 1.885683442s: unexpected EOF\nLoad(<data/9f352a3727>, 1076625, 0) returned error, retrying after 4.420402613s: unexpected EOF\nLoad(<data/9f352a3727>, 1923531, 1076625) returned error, retrying after 3.755191883s: unexpected EOF\nLoad(<data/9f352a3727>, 1076625, 0) returned error, retrying after 6.687186149s: unexpected EOF\nLoad(<data/9f352a3727>, 1923531, 1076625) returned error, retrying after 11.917301054s: unexpected EOF\nLoad(<data/9f352a3727>, 1076625, 0) returned error, retrying after 13.901145593s: unexpected EOF\n\u001b[2Ksignal terminated received, cleaning up\nFatal: cannot dump file: ReadFull(<data/9f352a3727>): context canceled\n";
const holdWrongPassword = "\u001b[2Ksignal terminated received, cleaning up\nFatal: wrong password or no key found\n";
const holdRepositoryAddress =
  "\u001b[2Ksignal terminated received, cleaning up\nFatal: unable to open config file: context canceled\nIs there a repository at the following location?\ns3:http://127.0.0.1:19002/bkt/src\n";
const holdAfterRetry =
  'Stat(<config/>) returned error, retrying after 934.122601ms: Stat: Get "http://127.0.0.1:19002/bkt/?location=": read tcp 127.0.0.1:52570->127.0.0.1:19002: read: connection reset by peer\nStat(<config/>) operation successful after 1 retries\n\u001b[2Ksignal terminated received, cleaning up\nFatal: failed to find snapshot: context canceled\n';
const dumpCorrupt = "Fatal: cannot dump file: decrypting blob <data/d2db24d1> from fa123e9f failed: ciphertext verification failed\n";
const copyCorrupt = "Fatal: decrypting blob <data/d2db24d1> from fa123e9f failed: ciphertext verification failed\n";
const checkCorrupt =
  "pack fa123e9fbb8069741d75ed0dd73c4234c7902ee23bae842980b4130325a2e22d contains 2 errors: [blob d2db24d19d82f954fb7ed44bde628191bc4b036ed8b825326cde2a20817b60cf: decrypting blob <data/d2db24d1> from fa123e9f failed: ciphertext verification failed unexpected pack id 6e19194ef89d4a62c9fc58b8f8f27d21968c38b07b3c1505276471029dc00d13]\n\nThe repository contains damaged pack files. These damaged files must be removed to repair the repository. This can be done using the following commands. Please read the troubleshooting guide at https://restic.readthedocs.io/en/stable/077_troubleshooting.html first.\n\nrestic repair packs fa123e9fbb8069741d75ed0dd73c4234c7902ee23bae842980b4130325a2e22d\nrestic repair snapshots --forget\n\nDamaged pack files can be caused by backend problems, hardware problems or bugs in restic. Please open an issue at https://github.com/restic/restic/issues/new/choose for further troubleshooting!\nFatal: repository contains errors\n";
const lockText =
  "unable to create lock in backend: repository is already locked exclusively by PID 25753 on vm by root (UID 0, GID 0)\nlock was created at 2026-12-01 21:28:41 (2.215182892s ago)\nstorage ID 2c503fe2\nthe `unlock` command can be used to remove stale locks\n";
const lockJson =
  '{"message_type":"exit_error","code":11,"message":"unable to create lock in backend: repository is already locked exclusively by PID 25753 on vm by root (UID 0, GID 0)\\nlock was created at 2026-12-01 21:28:41 (2.771874523s ago)\\nstorage ID 2c503fe2\\nthe `unlock` command can be used to remove stale locks"}\n';
const dropRecovered =
  'Stat(<config/>) returned error, retrying after 903.29143ms: Stat: Get "http://127.0.0.1:19001/bkt/?location=": read tcp 127.0.0.1:33498->127.0.0.1:19001: read: connection reset by peer\nStat(<config/>) returned error, retrying after 1.101150758s: Stat: Get "http://127.0.0.1:19001/bkt/?location=": read tcp 127.0.0.1:33512->127.0.0.1:19001: read: connection reset by peer\nStat(<config/>) operation successful after 2 retries\n';

describe("restic error classification on real stderr", () => {
  it("never takes a retry warning about a data pack for corruption", () => {
    // The relay cut every download mid-pack; restic retried until Auxo's deadline stopped it.
    expect(dumpCut).toContain("Load(<data/");
    expect(classify(1, dumpCut, "deadline")).toBe("Unreachable");
    expect(lastWords(dumpCut)).toBe("unexpected EOF");
    // Stopped by a pod's SIGTERM: an interruption, retried.
    expect(classify(1, dumpCut, "terminate")).toBe("Interrupted");
    // Signalled by someone else: the same.
    expect(classify(1, dumpCut, false)).toBe("Interrupted");
  });

  it("does not believe what restic prints after it was stopped", () => {
    // Stopped while reading its key, restic says "wrong password" and exits 12: not the cause.
    expect(holdWrongPassword).toContain("wrong password");
    expect(classify(12, holdWrongPassword, "deadline")).toBe("Unreachable");
    expect(classify(12, holdWrongPassword, "terminate")).toBe("Interrupted");
    expect(lastWords(holdWrongPassword)).toBe("");
    // Stopped before any retry line: no repository address as the last words.
    expect(lastWords(holdRepositoryAddress)).toBe("");
    expect(lastWords(holdRepositoryAddress)).not.toContain("s3:http");
    expect(classify(1, holdRepositoryAddress, "deadline")).toBe("Unreachable");
    expect(lastWords(holdAfterRetry)).toContain("connection reset by peer");
    expect(readStderr(holdAfterRetry).signalled).toBe(true);
  });

  it("still finds real corruption", () => {
    expect(classify(1, dumpCorrupt, false)).toBe("CorruptData");
    expect(lastWords(dumpCorrupt)).toContain("ciphertext verification failed");
    expect(classify(1, copyCorrupt, false)).toBe("CorruptData");
    expect(classify(1, checkCorrupt, false)).toBe("CorruptData");
    expect(lastWords(checkCorrupt)).toBe("Fatal: repository contains errors");
  });

  it("reads a lock failure whole, with the lock's storage ID", () => {
    expect(classify(11, lockText, false)).toBe("LockHeld");
    expect(classify(1, lockText, false)).toBe("LockHeld");
    expect(classify(11, lockJson, false)).toBe("LockHeld");
    const words = lastWords(lockText);
    expect(words).toMatch(/^unable to create lock in backend: repository is already locked exclusively by PID \d+ on vm by root/);
    expect(words).toContain("storage ID 2c503fe2");
    expect(words).not.toContain("`unlock` command");
    expect(lastWords(lockJson)).toContain("storage ID 2c503fe2");
  });

  it("classifies a final network error as Unreachable even when it names a data pack", () => {
    const final =
      'Fatal: cannot dump file: Load(<data/9f352a3727>, 0, 0) failed: Get "http://127.0.0.1:1/b/data/9f": dial tcp 127.0.0.1:1: connect: connection refused';
    expect(classify(1, final, false)).toBe("Unreachable");
    // A retry that worked leaves no failure behind: the real last error decides.
    expect(classify(1, `${dropRecovered}Fatal: something new`, false)).toBe("Failed");
  });

  it("hears the cause in a retry line", () => {
    expect(retryCause(dumpCut.split("\n")[0] as string)).toBe("unexpected EOF");
    expect(retryCause("Fatal: repository contains errors")).toBeUndefined();
  });
});

describe("agent results", () => {
  it("fits the termination message: valid JSON of at most 4000 bytes, the verdict kept", () => {
    const big = {
      ok: false,
      task: "verify" as const,
      kind: "CorruptData",
      retryable: false,
      message: `jobs failed verification: ${"é-job-".repeat(2000)}`,
      failedJobs: Array.from({ length: 500 }, (_, i) => `job-${i}-${"x".repeat(20)}`),
      counts: { a: 1 },
    };
    const text = fitResult(big);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(4000);
    const r = JSON.parse(text);
    expect(r).toMatchObject({ ok: false, task: "verify", kind: "CorruptData", retryable: false });
    expect(r.message.startsWith("jobs failed verification: é-job-")).toBe(true);
    expect(r.truncated).toContain("failedJobs");
    const small = { ok: true, task: "scan" as const, jobs: 3 };
    expect(JSON.parse(fitResult(small))).toEqual(small);
  });

  it("reports backend retries at most once per 5 s, scrubbed and short", () => {
    let t = 0;
    const seen: Record<string, unknown>[] = [];
    const report = backendErrorReporter(
      (p) => seen.push(p),
      5000,
      () => t,
    );
    report('Get "https://user:hunter2@rest.example/x": dial tcp: i/o timeout');
    t = 4000;
    report("second");
    t = 5000;
    report("x".repeat(1000));
    expect(seen).toHaveLength(2);
    expect(seen[0]?.backendError).toBe('Get "https://[redacted]@rest.example/x": dial tcp: i/o timeout');
    expect((seen[1]?.backendError as string).length).toBe(300);
  });

  it("names a lock's holder and age", () => {
    expect(
      describeLock("/libraries/source/p", {
        host: "db-1",
        pid: 123,
        user: "root",
        exclusive: true,
        createdAt: "2026-12-01T10:00:00.000Z",
        ageSeconds: 720,
      }),
    ).toBe(
      'repository /libraries/source/p is locked (exclusive) by host "db-1" pid 123 user root since 2026-12-01T10:00:00.000Z (12 min ago)',
    );
  });
});
