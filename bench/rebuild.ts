// The rebuild of a storage policy's view after the cluster is lost: a policy's three repositories (primary, a
// synchronous copy "offsite" with every job, a selective copy "monthly" with a subset of the fulls) outlived the
// cluster on a filesystem library (hostPath); a fresh namespace gets the manifests again (the password Secret, the
// Library, the StoragePolicy and its three PolicyCopies) with the operator running in this process, and the run is
// timed from the first create request to the poll (every 100 ms) that sees every copy's repository ready, scanned,
// and its available jobs equal to the jobs in its repository. Peer: plain `restic snapshots --json` of the three
// repositories one after another, same run; the repositories are checked unchanged afterwards (same snapshot IDs).
//
// The fixture is not timed. Making thousands of jobs with `restic backup` is far too slow (about 0.2 s each, mostly
// key derivation), so each repository gets one real snapshot (`restic backup` into the primary, `restic copy` to the
// others) and the other N-1 are snapshot files written here in restic's repository format: the snapshot JSON
// (uncompressed, which repository v2 allows), encrypted with the repository's master key (AES-256-CTR, Poly1305-AES
// MAC), named by the SHA-256 of the file. All of them point at the real snapshot's tree. Beside each secondary
// repository: one job event per copied job, as an aux copy leaves them (src/policy/jobevents.ts).
//   node bench/rebuild.ts [jobs=1000]
import { createCipheriv, createHash, randomBytes, scryptSync } from "node:crypto";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { chown, mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { registerControllers } from "../src/controllers/index.ts";
import { tagsFor, type JobMetadata, type ResticSnapshot } from "../src/policy/catalog.ts";
import { EVENT_SCHEMA, eventKey, METADATA_SUFFIX } from "../src/policy/jobevents.ts";
import { installCrds } from "../test/harness/crds.ts";
import type { Obj } from "../test/harness/kube-rest.ts";
import { waitFor } from "../test/harness/net.ts";
import { testManager } from "../test/harness/operator-testing.ts";
import { World } from "../test/harness/world.ts";
import { AGENT_UID, countRequestsByResource, delta, load, requestsByMethod, resticAsAgent, secs, sorted, total } from "./lib.ts";

const n = Number(process.argv[2] ?? 1000);
if (!Number.isInteger(n) || n < 1) throw new Error(`usage: node bench/rebuild.ts [jobs=1000], got ${process.argv.slice(2).join(" ")}`);
const SUBCLIENTS = 20;
const HOUR = 3600_000;
const ns = "rebuild";
const COPIES = ["primary", "offsite", "monthly"] as const;
type Copy = (typeof COPIES)[number];
/** Which jobs (by index, oldest first) each copy holds: the monthly copy every full whose index is a multiple of 28. */
const holds: Record<Copy, (i: number) => boolean> = { primary: () => true, offsite: () => true, monthly: (i) => i % 28 === 0 };
const jobOf = (i: number): JobMetadata => ({
  jobId: `job-${i}`,
  type: i % 7 === 0 ? "full" : "incremental",
  status: "completed",
  client: "web",
  subclient: `app-${i % SUBCLIENTS}`,
});

const dir = mkdtempSync(path.join(os.tmpdir(), "auxo-bench-rebuild-"));
chmodSync(dir, 0o755); // uid 65532 (restic, the MediaAgents) walks into it
const world = new World({ dir: path.join(dir, "world") });
const password = randomBytes(16).toString("hex");
const api = (plural: string, name = "") => `/apis/auxo.dev/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ""}`;
const auxo = (kind: string, name: string, spec: Obj) => ({ apiVersion: "auxo.dev/v1alpha1", kind, metadata: { name }, spec });
const enc = { passwordSecret: { name: "repo-password" } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
function masterKey(repo: string): Key {
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

const loadBefore = load();
let mgr: ReturnType<typeof testManager> | undefined;
let nsCreated = false;
try {
  await world.start();
  const kube = world.cp.client;
  await installCrds(kube);

  // The fixture, not timed: three repositories that outlived the cluster.
  const fixtureStart = performance.now();
  const libRoot = path.join(dir, "library");
  const scratch = path.join(dir, "scratch");
  const policyDir = path.join(libRoot, ns, "gold");
  mkdirSync(policyDir, { recursive: true });
  mkdirSync(scratch);
  for (const d of [libRoot, path.join(libRoot, ns), policyDir, scratch]) chownSync(d, AGENT_UID, AGENT_UID);
  const repoOf = (c: Copy) => path.join(policyDir, c);
  const restic = resticAsAgent(world.dir, scratch, password);
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
  const list = async (c: Copy) => JSON.parse(await restic(repoOf(c), {}, "snapshots", "--json")) as (ResticSnapshot & { tree: string })[];
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
    const key = masterKey(repo);
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

  // The fixture, read back with plain restic: the snapshot IDs of each repository (also the "before" of the run).
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
  const fixtureMs = performance.now() - fixtureStart;

  // The operator, running before the manifests come back.
  mgr = testManager(world.cp.kubeconfig);
  registerControllers(mgr, {
    agentImage: "auxo:dev",
    allowHostPathLibraries: true,
    autoAuxCopy: false,
    dataAging: false,
    scanIntervalSeconds: 3600,
  });
  const byResource = countRequestsByResource(mgr);
  await mgr.start();
  // The namespace and its default ServiceAccount (MediaAgent pods need it) exist before the clock starts.
  await kube.create("/api/v1/namespaces", { metadata: { name: ns } });
  nsCreated = true;
  await waitFor("service account", async () =>
    (await kube.get(`/api/v1/namespaces/${ns}/serviceaccounts/default`).catch(() => undefined)) ? true : undefined,
  );
  await sleep(1000);

  // The run: the manifests, one create after another, then polls every 100 ms.
  const reqBefore = await requestsByMethod(mgr);
  byResource.reset();
  const runStart = performance.now();
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { metadata: { name: "repo-password" }, stringData: { password } });
  await kube.create(api("libraries"), auxo("Library", "disk", { filesystem: { hostPath: { path: libRoot } } }));
  await kube.create(api("storagepolicies"), auxo("StoragePolicy", "gold", { primaryCopy: "primary" }));
  await kube.create(api("policycopies"), auxo("PolicyCopy", "primary", { storagePolicy: "gold", library: "disk", encryption: enc }));
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "offsite", {
      storagePolicy: "gold",
      library: "disk",
      copyType: "Synchronous",
      backups: { mode: "All" },
      encryption: enc,
    }),
  );
  await kube.create(
    api("policycopies"),
    auxo("PolicyCopy", "monthly", {
      storagePolicy: "gold",
      library: "disk",
      copyType: "Selective",
      selection: { frequency: "Monthly", full: "First" },
      backups: { mode: "All" },
      encryption: enc,
    }),
  );
  const createdMs = performance.now() - runStart;
  const at: Record<Copy, { ready?: number; scanned?: number; available?: number; status?: Obj }> = {
    primary: {},
    offsite: {},
    monthly: {},
  };
  type PodSpan = { task: string; seen: number; last: number; ended?: number; phase?: string };
  const pods = new Map<string, PodSpan>();
  let libraryReady: number | undefined;
  const deadline = runStart + Math.max(600_000, n * 60);
  for (;;) {
    const now = performance.now();
    const [copies, lib, podList] = await Promise.all([
      kube.get(api("policycopies")),
      libraryReady === undefined ? kube.get(api("libraries", "disk")) : undefined,
      kube.get(`/api/v1/namespaces/${ns}/pods`),
    ]);
    if (lib?.status?.phase === "Ready") libraryReady = now;
    for (const p of podList.items as Obj[]) {
      const e: PodSpan = pods.get(p.metadata.name) ?? {
        task: p.metadata.labels?.["auxo.dev/task"] ?? "?",
        seen: now,
        last: now,
      };
      e.last = now;
      if (!e.ended && (p.status?.phase === "Succeeded" || p.status?.phase === "Failed")) {
        e.ended = now;
        e.phase = p.status.phase;
      }
      pods.set(p.metadata.name, e);
    }
    for (const o of copies.items as Obj[]) {
      const c = o.metadata.name as Copy;
      const s = o.status ?? {};
      const a = at[c];
      if (!a) continue;
      a.status = s;
      if (s.repositoryReady === true) a.ready ??= now;
      if (s.lastScanTime) a.scanned ??= now;
      if (s.repositoryReady === true && s.lastScanTime && s.jobs?.available === expected.get(c)) a.available ??= now;
    }
    if (COPIES.every((c) => at[c].available !== undefined)) break;
    if (now > deadline) {
      for (const c of COPIES) console.error(`${c}: ${JSON.stringify(at[c].status)}`);
      throw new Error(`the copies were not all ready and scanned after ${secs(now - runStart)}`);
    }
    await sleep(Math.max(0, 100 - (performance.now() - now)));
  }
  const runMs = Math.max(...COPIES.map((c) => at[c].available as number)) - runStart;
  const requests = delta(await requestsByMethod(mgr), reqBefore);
  const resources = new Map(byResource.counts);

  // Peer: plain restic snapshots --json of the three repositories, one after another; and the repositories unchanged.
  const peer = new Map<Copy, number>();
  const after = new Map<Copy, Set<string>>();
  for (const c of COPIES) {
    t = performance.now();
    const snaps = await list(c);
    peer.set(c, performance.now() - t);
    after.set(c, new Set(snaps.map((s) => s.id)));
  }
  const peerMs = [...peer.values()].reduce((a, b) => a + b, 0);
  const unchanged = COPIES.map((c) => {
    const b = before.get(c) as Set<string>;
    const a = after.get(c) as Set<string>;
    return { c, same: a.size === b.size && [...b].every((id) => a.has(id)), b: b.size, a: a.size };
  });

  const rel = (ms: number | undefined) => (ms === undefined ? "never" : `+${secs(ms - runStart)}`);
  const counts = COPIES.map((c) => `${c} ${expected.get(c)}`).join(", ");
  console.log(
    `rebuild of a storage policy's view from its library after losing the cluster, ${n} jobs (${SUBCLIENTS} subclients, hourly, a full every 7th), 3 copies on one filesystem library (hostPath):`,
  );
  console.log(
    `  fixture (not part of the run): ${secs(fixtureMs)}: restic init ×3, 1 backup, 2 copies ${secs(resticMs)}; ${files} snapshot files and ${events} job events written ${secs(genMs)}; restic snapshots ×3 + check of offsite ${secs(checkMs)}`,
  );
  console.log(`    jobs in the repositories: ${counts} (monthly: every 28th job, all fulls)`);
  console.log(
    `  manifests created (Secret, Library, StoragePolicy, 3 PolicyCopies; namespace ready before): ${secs(createdMs)}; library Ready ${rel(libraryReady)}`,
  );
  console.log(`  every copy ready and scanned, jobs available as in its repository: ${secs(runMs)} after the first create`);
  for (const c of COPIES) {
    const a = at[c];
    console.log(
      `    ${c}: repository ready ${rel(a.ready)}, scanned ${rel(a.scanned)}, available ${a.status?.jobs?.available}/${expected.get(c)} ${rel(a.available)}`,
    );
  }
  for (const [name, p] of [...pods].sort((x, y) => x[1].seen - y[1].seen))
    console.log(
      `    pod ${name} (${p.task}): first listed ${rel(p.seen)}, ${p.ended ? `${p.phase} ${rel(p.ended)}` : `last listed ${rel(p.last)}`}`,
    );
  console.log(
    `  operator API requests during the run: ${total(requests)}: ${sorted(requests)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  );
  console.log(
    `    by resource: ${sorted(resources)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  );
  console.log(
    `  restic snapshots --json (peer, the 3 repositories one after another, uid ${AGENT_UID}): ${secs(peerMs)} (${COPIES.map((c) => `${c} ${secs(peer.get(c) as number)}`).join(", ")})`,
  );
  console.log(`  ratio rebuild/restic snapshots: ${(runMs / peerMs).toFixed(2)}×`);
  console.log(
    `  repositories unchanged (snapshot IDs from restic snapshots, before → after): ${unchanged
      .map((u) => `${u.c} ${u.b} → ${u.a} ${u.same ? "same" : "CHANGED"}`)
      .join(", ")}`,
  );
  console.log(`  load average before: ${loadBefore}; after: ${load()} (${os.cpus().length} cores)`);
  if (unchanged.some((u) => !u.same)) process.exitCode = 1;
} finally {
  if (nsCreated) {
    const kube = world.cp.client;
    await kube.deleteIfExists(`/api/v1/namespaces/${ns}`).catch(() => undefined);
    await waitFor(
      "the namespace to go",
      async () => ((await kube.get(`/api/v1/namespaces/${ns}`).catch(() => undefined)) ? undefined : true),
      { timeoutMs: 60_000, intervalMs: 500 },
    ).catch((err: Error) => console.error(`cleanup: ${err.message}`));
  }
  await mgr?.stop();
  await world.stop();
  rmSync(dir, { recursive: true, force: true });
}
