// A storage policy's three repositories with N jobs each, for the benchmarks that read them (bench/rebuild.ts,
// bench/cli-jobs.ts): a primary, a synchronous copy "offsite" with every job and a selective copy "monthly" with
// every 28th job (all fulls), on a filesystem library (a folder used as a hostPath Library), with one job event per
// copied job beside each secondary, as an aux copy leaves them (src/policy/jobevents.ts); and the manifests that
// bring them under a namespace (the password Secret, the Library, the StoragePolicy "gold" and its three copies).
//
// Making thousands of jobs with `restic backup` is far too slow (about 0.2 s each, mostly key derivation), so each
// repository gets one real snapshot (`restic backup` into the primary, `restic copy` to the others) and the other
// N-1 are snapshot files written here in restic's repository format: the snapshot JSON (uncompressed, which
// repository v2 allows), encrypted with the repository's master key (AES-256-CTR, Poly1305-AES MAC), named by the
// SHA-256 of the file. All of them point at the real snapshot's tree. The result is checked with plain `restic
// snapshots` and `restic check` before it is handed back.
import { createCipheriv, createHash, randomBytes, scryptSync } from "node:crypto";
import { chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { chown, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { tagsFor, type JobMetadata, type ResticSnapshot } from "../src/policy/catalog.ts";
import { EVENT_SCHEMA, eventKey, METADATA_SUFFIX } from "../src/policy/jobevents.ts";
import type { KubeRest, Obj } from "../test/harness/kube-rest.ts";
import { waitFor } from "../test/harness/net.ts";
import { AGENT_UID, resticAsAgent } from "./lib.ts";

export const SUBCLIENTS = 20;
export const HOUR = 3600_000;
export const POLICY = "gold";
export const LIBRARY = "disk";
export const COPIES = ["primary", "offsite", "monthly"] as const;
export type Copy = (typeof COPIES)[number];
/** Which jobs (by index, oldest first) each copy holds: the monthly copy every full whose index is a multiple of 28. */
export const holds: Record<Copy, (i: number) => boolean> = { primary: () => true, offsite: () => true, monthly: (i) => i % 28 === 0 };
/** Job i: a full every 7th, the others incrementals, all completed, over 20 subclients in turn. */
export const jobOf = (i: number): JobMetadata => ({
  jobId: `job-${i}`,
  type: i % 7 === 0 ? "full" : "incremental",
  status: "completed",
  client: "web",
  subclient: `app-${i % SUBCLIENTS}`,
});

// restic's crypto (restic/internal/crypto): AES-256-CTR, and a Poly1305-AES MAC over the ciphertext.
interface Key {
  encrypt: Buffer;
  k: Buffer;
  r: Buffer;
}
const P1305 = (1n << 130n) - 5n;
const M128 = (1n << 128n) - 1n;

function littleEndian(b: Uint8Array): bigint {
  let x = 0n;
  for (let i = b.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i] as number);
  return x;
}

function poly1305(msg: Buffer, r16: Buffer, s16: Buffer): Buffer {
  const rb = Buffer.from(r16);
  for (const i of [3, 7, 11, 15]) rb[i] = (rb[i] as number) & 15;
  for (const i of [4, 8, 12]) rb[i] = (rb[i] as number) & 252;
  const r = littleEndian(rb);
  let acc = 0n;
  const block = new Uint8Array(17);
  for (let off = 0; off < msg.length; off += 16) {
    const len = Math.min(16, msg.length - off);
    block.fill(0);
    block.set(msg.subarray(off, off + len));
    block[len] = 1;
    acc = ((acc + littleEndian(block.subarray(0, len + 1))) * r) % P1305;
  }
  let tag = (acc + littleEndian(s16)) & M128;
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16; i++, tag >>= 8n) out[i] = Number(tag & 255n);
  return out;
}

function mac(key: Key, iv: Buffer, ct: Buffer): Buffer {
  const aes = createCipheriv("aes-128-ecb", key.k, null).setAutoPadding(false);
  return poly1305(ct, key.r, Buffer.concat([aes.update(iv), aes.final()]));
}

function decrypt(key: Key, file: Buffer): Buffer {
  const iv = file.subarray(0, 16);
  const ct = file.subarray(16, file.length - 16);
  if (!mac(key, iv, ct).equals(file.subarray(file.length - 16))) throw new Error("restic ciphertext: MAC mismatch (wrong key?)");
  const aes = createCipheriv("aes-256-ctr", key.encrypt, iv);
  return Buffer.concat([aes.update(ct), aes.final()]);
}

function encrypt(key: Key, plain: Buffer): Buffer {
  const iv = randomBytes(16);
  const aes = createCipheriv("aes-256-ctr", key.encrypt, iv);
  const ct = Buffer.concat([aes.update(plain), aes.final()]);
  return Buffer.concat([iv, ct, mac(key, iv, ct)]);
}

/** The repository's master key, from its (only) key file and the password. */
function masterKey(repo: string, password: string): Key {
  const [keyId] = readdirSync(path.join(repo, "keys"));
  if (!keyId) throw new Error(`${repo}: no key file`);
  const kf = JSON.parse(readFileSync(path.join(repo, "keys", keyId), "utf8")) as {
    kdf: string;
    N: number;
    r: number;
    p: number;
    salt: string;
    data: string;
  };
  if (kf.kdf !== "scrypt") throw new Error(`${repo}: key file kdf ${kf.kdf}`);
  const uk = scryptSync(password, Buffer.from(kf.salt, "base64"), 64, { N: kf.N, r: kf.r, p: kf.p, maxmem: 512 << 20 });
  const user = { encrypt: uk.subarray(0, 32), k: uk.subarray(32, 48), r: uk.subarray(48, 64) };
  const mk = JSON.parse(decrypt(user, Buffer.from(kf.data, "base64")).toString("utf8")) as {
    mac: { k: string; r: string };
    encrypt: string;
  };
  return { encrypt: Buffer.from(mk.encrypt, "base64"), k: Buffer.from(mk.mac.k, "base64"), r: Buffer.from(mk.mac.r, "base64") };
}

export type Listed = ResticSnapshot & { tree: string };

export interface PolicyFixture {
  /** The library's root (the Library's hostPath); the repositories are `<libRoot>/<ns>/gold/<copy>`. */
  libRoot: string;
  /** A folder of uid 65532's: restic's HOME and the password file. */
  scratch: string;
  repoOf: (c: Copy) => string;
  /** Plain restic as uid 65532 (bench/lib.ts). */
  restic: ReturnType<typeof resticAsAgent>;
  /** `restic snapshots --json` of a copy's repository. */
  list: (c: Copy) => Promise<Listed[]>;
  /** Job i started at `startOf(i)` (ms): hourly, the newest at `end`. */
  startOf: (i: number) => number;
  end: number;
  /** Jobs in each repository. */
  expected: Map<Copy, number>;
  /** The snapshot IDs of each repository, as plain restic lists them after the fixture was written. */
  before: Map<Copy, Set<string>>;
  files: number;
  events: number;
  /** restic init ×3, the backup and the 2 copies; the files and events written; the read-back and check; all. */
  ms: { restic: number; gen: number; check: number; total: number };
}

/**
 * Writes the three repositories of policy "gold" in namespace `ns` under `<dir>/library`, with `n` jobs on the
 * primary and offsite. `worldDir` is the started World's folder (its copy of restic). Not timed by the callers.
 */
export async function policyFixture(o: { dir: string; worldDir: string; ns: string; n: number; password: string }): Promise<PolicyFixture> {
  const { n, ns, password } = o;
  const fixtureStart = performance.now();
  const libRoot = path.join(o.dir, "library");
  const scratch = path.join(o.dir, "scratch");
  const policyDir = path.join(libRoot, ns, POLICY);
  mkdirSync(policyDir, { recursive: true });
  mkdirSync(scratch);
  for (const d of [libRoot, path.join(libRoot, ns), policyDir, scratch]) chownSync(d, AGENT_UID, AGENT_UID);
  const repoOf = (c: Copy) => path.join(policyDir, c);
  const restic = resticAsAgent(o.worldDir, scratch, password);
  const pwFile = path.join(scratch, "pw");
  const from = ["--from-repo", repoOf("primary"), "--from-password-file", pwFile];
  await restic(repoOf("primary"), {}, "init", "-q");
  for (const c of ["offsite", "monthly"] as const) await restic(repoOf(c), {}, "init", "-q", "--copy-chunker-params", ...from);

  // Job i starts at end - (n-1-i) hours; job 0 is the one real backup (a full), copied to both secondaries.
  const end = Math.floor(Date.now() / 1000) * 1000;
  const startOf = (i: number) => end - (n - 1 - i) * HOUR;
  const data = path.join(scratch, "data");
  mkdirSync(data);
  writeFileSync(path.join(data, "file"), randomBytes(1024));
  chownSync(data, AGENT_UID, AGENT_UID);
  chownSync(path.join(data, "file"), AGENT_UID, AGENT_UID);
  const t0Time = new Date(startOf(0)).toISOString().replace("T", " ").slice(0, 19);
  await restic(
    repoOf("primary"),
    { TZ: "UTC" },
    "backup",
    "-q",
    "--no-scan",
    "--host",
    "web",
    "--time",
    t0Time,
    ...tagsFor(jobOf(0)).flatMap((x) => ["--tag", x]),
    data,
  );
  for (const c of ["offsite", "monthly"] as const) await restic(repoOf(c), {}, "copy", "-q", ...from);
  const list = async (c: Copy) => JSON.parse(await restic(repoOf(c), {}, "snapshots", "--json")) as Listed[];
  const real = (await list("primary"))[0];
  if (!real) throw new Error("fixture: the real backup is not in the primary");
  for (const c of ["offsite", "monthly"] as const) {
    const copies = await list(c);
    if (copies.length !== 1 || copies[0]?.original !== real.id) throw new Error(`${c}: restic copy did not leave one copy of ${real.id}`);
  }
  const resticMs = performance.now() - fixtureStart;

  // The other n-1 snapshots of each repository, written one file at a time (awaited, so the node runner in this
  // process keeps its lease), and the job events beside the secondaries.
  let t = performance.now();
  const primaryIds: string[] = [real.id];
  const expected = new Map<Copy, number>();
  let files = 0;
  let events = 0;
  for (const c of COPIES) {
    const repo = repoOf(c);
    const key = masterKey(repo, password);
    const snapDir = path.join(repo, "snapshots");
    const meta = `${repo}${METADATA_SUFFIX}`;
    let count = 0;
    for (let i = 0; i < n; i++) {
      if (!holds[c](i)) continue;
      count++;
      if (i > 0) {
        const snapshot = {
          time: new Date(startOf(i)).toISOString(),
          tree: real.tree,
          paths: real.paths,
          hostname: "web",
          username: "",
          tags: tagsFor(jobOf(i)),
          ...(c === "primary" ? {} : { original: primaryIds[i] }),
          program_version: "restic 0.18.1",
        };
        const file = encrypt(key, Buffer.from(JSON.stringify(snapshot)));
        const id = createHash("sha256").update(file).digest("hex");
        if (c === "primary") primaryIds.push(id);
        const f = path.join(snapDir, id);
        await writeFile(f, file, { mode: 0o400, flag: "wx" });
        await chown(f, AGENT_UID, AGENT_UID);
        files++;
      }
      if (c !== "primary") {
        const at = new Date(Math.min(startOf(i) + HOUR / 2, end)).toISOString();
        const ev = { schema: EVENT_SCHEMA, jobId: jobOf(i).jobId, kind: "copy", result: "ok", at } as const;
        const f = path.join(meta, eventKey(ev, randomBytes(4).toString("hex")));
        await mkdir(path.dirname(f), { recursive: true });
        await writeFile(f, JSON.stringify(ev));
        events++;
      }
    }
    expected.set(c, count);
  }
  // Beside the secondaries: everything uid 65532's, as MediaAgents leave it.
  for (const c of ["offsite", "monthly"] as const) {
    const meta = `${repoOf(c)}${METADATA_SUFFIX}`;
    const jobs = path.join(meta, "jobs");
    for (const d of [meta, jobs]) await chown(d, AGENT_UID, AGENT_UID);
    for (const j of readdirSync(jobs)) {
      await chown(path.join(jobs, j), AGENT_UID, AGENT_UID);
      for (const e of readdirSync(path.join(jobs, j))) await chown(path.join(jobs, j, e), AGENT_UID, AGENT_UID);
    }
  }
  const genMs = performance.now() - t;

  // The fixture, read back with plain restic: the snapshot IDs of each repository (also the "before" of a run).
  t = performance.now();
  const idsOf = async (c: Copy) => new Set((await list(c)).map((s) => s.id));
  const before = new Map<Copy, Set<string>>();
  for (const c of COPIES) {
    const ids = await idsOf(c);
    if (ids.size !== expected.get(c))
      throw new Error(`fixture: restic snapshots lists ${ids.size} snapshots in ${c}, expected ${expected.get(c)}`);
    before.set(c, ids);
  }
  for (const id of primaryIds) if (!before.get("primary")?.has(id)) throw new Error(`fixture: snapshot ${id} not listed in the primary`);
  await restic(repoOf("offsite"), {}, "check", "-q").catch((err: Error & { stdout?: string; stderr?: string }) => {
    throw new Error(`fixture: restic check of offsite failed: ${err.stderr || err.stdout || err.message}`);
  });
  const checkMs = performance.now() - t;
  return {
    libRoot,
    scratch,
    repoOf,
    restic,
    list,
    startOf,
    end,
    expected,
    before,
    files,
    events,
    ms: { restic: resticMs, gen: genMs, check: checkMs, total: performance.now() - fixtureStart },
  };
}

const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });

/**
 * The manifests that bring the fixture's repositories under namespace `ns`, one create after another: the password
 * Secret, the Library (a hostPath filesystem library at `libRoot`), the StoragePolicy and its three PolicyCopies.
 */
export async function createPolicyManifests(kube: KubeRest, ns: string, libRoot: string, password: string): Promise<void> {
  const api = (plural: string) => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}`;
  const enc = { passwordSecret: { name: "repo-password" } };
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
  await kube.create(api("libraries"), auxo("Library", LIBRARY, { filesystem: { hostPath: { path: libRoot } } }));
  await kube.create(api("storagepolicies"), auxo("StoragePolicy", POLICY, { primaryCopy: "primary" }));
  await kube.create(api("policycopies"), auxo("PolicyCopy", "primary", { storagePolicy: POLICY, library: LIBRARY, encryption: enc }));
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "offsite", {
      storagePolicy: POLICY,
      library: LIBRARY,
      copyType: "Synchronous",
      backups: { mode: "All" },
      encryption: enc,
    }),
  );
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "monthly", {
      storagePolicy: POLICY,
      library: LIBRARY,
      copyType: "Selective",
      selection: { frequency: "Monthly", full: "First" },
      backups: { mode: "All" },
      encryption: enc,
    }),
  );
}

/** Creates the namespace and waits for its default ServiceAccount (MediaAgent pods need it). */
export async function createNamespace(kube: KubeRest, ns: string): Promise<void> {
  await kube.create("/api/v1/namespaces", { metadata: { name: ns } });
  await waitFor("service account", async () =>
    (await kube.get(`/api/v1/namespaces/${ns}/serviceaccounts/default`).catch(() => undefined)) ? true : undefined,
  );
}

/** Deletes the namespace and waits (at most a minute) for it to go; a failure is printed, not thrown. */
export async function removeNamespace(kube: KubeRest, ns: string): Promise<void> {
  await kube.deleteIfExists(`/api/v1/namespaces/${ns}`).catch(() => undefined);
  await waitFor(
    "the namespace to go",
    async () => ((await kube.get(`/api/v1/namespaces/${ns}`).catch(() => undefined)) ? undefined : true),
    {
      timeoutMs: 60_000,
      intervalMs: 500,
    },
  ).catch((err: Error) => console.error(`cleanup: ${err.message}`));
}
