// Where a copy's restic repository lives, and what a MediaAgent pod needs to open it: the repository string, the
// volumes to mount, and the environment, with every credential coming from a Secret (env valueFrom or a mounted
// file), never from an argument. Pure.
import type { LibrarySpec } from "../api/v1alpha1/library.ts";
import { METADATA_SUFFIX } from "./jobevents.ts";

export interface VolumeSpec {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  source: Record<string, unknown>; // a core/v1 Volume source: persistentVolumeClaim, nfs, hostPath, secret
}

export interface EnvFromSecret {
  name: string;
  secret: string;
  key: string;
}

/** Where Auxo's per-job metadata lives beside the repository (policy/jobevents.ts). REST servers hold only restic's files. */
export type MetadataLocation = { path: string } | { s3: { endpoint: string; bucket: string; prefix: string; region: string } };

export interface RepositoryAccess {
  repository: string;
  metadata?: MetadataLocation;
  /** Absent for a library probe, which opens no repository. */
  passwordFile?: string;
  caFile?: string;
  insecureTls?: boolean;
  options: Record<string, string>;
  volumes: VolumeSpec[];
  env: EnvFromSecret[];
  /** The restic repository ID the operator recorded: the agent checks it before it writes or forgets. */
  repositoryId?: string;
}

const join = (...parts: (string | undefined)[]) =>
  parts
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/^\/+|\/+$/g, ""))
    .filter(Boolean)
    .join("/");

/** Default repository location inside a library: <namespace>/<policy>/<copy>. */
export const defaultRepositoryPath = (namespace: string, policy: string, copy: string): string => join(namespace, policy, copy);

/**
 * How a pod opens the repository at `repoPath` in `library`. `role` prefixes volume names and mount points, so that a
 * copy pod can open a source and a target side by side.
 */
export function repositoryAccess(
  library: LibrarySpec,
  repoPath: string,
  password: { secret: string; key: string } | undefined,
  role = "target",
): RepositoryAccess {
  const volumes: VolumeSpec[] = [];
  const env: EnvFromSecret[] = [];
  const options: Record<string, string> = {};
  const secretsDir = `/var/run/auxo/${role}`;
  let passwordFile: string | undefined;
  if (password) {
    volumes.push({
      name: `${role}-password`,
      mountPath: `${secretsDir}/password`,
      readOnly: true,
      source: { secret: { secretName: password.secret, items: [{ key: password.key, path: "password" }], defaultMode: 0o440 } },
    });
    passwordFile = `${secretsDir}/password/password`;
  }
  let repository: string;
  let caFile: string | undefined;
  let insecureTls: boolean | undefined;
  let metadata: MetadataLocation | undefined;
  if (library.filesystem) {
    const fs = library.filesystem;
    const mount = `/libraries/${role}`;
    const source = fs.persistentVolumeClaim
      ? { persistentVolumeClaim: { claimName: fs.persistentVolumeClaim.claimName } }
      : fs.nfs
        ? { nfs: { server: fs.nfs.server, path: fs.nfs.path } }
        : { hostPath: { path: fs.hostPath?.path, type: "DirectoryOrCreate" } };
    volumes.push({ name: `${role}-library`, mountPath: mount, source });
    repository = `/${join(mount, fs.path, repoPath)}`;
    metadata = { path: `${repository}${METADATA_SUFFIX}` };
  } else if (library.s3) {
    const s3 = library.s3;
    repository = `s3:${s3.endpoint.replace(/\/+$/, "")}/${join(s3.bucket, s3.prefix, repoPath)}`;
    options["s3.region"] = s3.region ?? "us-east-1";
    metadata = {
      s3: {
        endpoint: s3.endpoint.replace(/\/+$/, ""),
        bucket: s3.bucket,
        prefix: `${join(s3.prefix, repoPath)}${METADATA_SUFFIX}`,
        region: options["s3.region"],
      },
    };
    // restic reads one set of AWS variables: source and target of a copy must share credentials (same account).
    env.push({
      name: "AWS_ACCESS_KEY_ID",
      secret: s3.credentialsSecret.name,
      key: s3.credentialsSecret.accessKeyIdKey ?? "AWS_ACCESS_KEY_ID",
    });
    env.push({
      name: "AWS_SECRET_ACCESS_KEY",
      secret: s3.credentialsSecret.name,
      key: s3.credentialsSecret.secretAccessKeyKey ?? "AWS_SECRET_ACCESS_KEY",
    });
    if (s3.caSecret) {
      volumes.push({
        name: `${role}-ca`,
        mountPath: `${secretsDir}/ca`,
        readOnly: true,
        source: { secret: { secretName: s3.caSecret.name, items: [{ key: s3.caSecret.key ?? "ca.crt", path: "ca.crt" }] } },
      });
      caFile = `${secretsDir}/ca/ca.crt`;
    }
    insecureTls = s3.insecureSkipTLSVerify || undefined;
  } else if (library.rest) {
    const rest = library.rest;
    repository = `rest:${rest.url.replace(/\/+$/, "")}/${join(repoPath)}`;
    if (rest.credentialsSecret) {
      env.push({
        name: "RESTIC_REST_USERNAME",
        secret: rest.credentialsSecret.name,
        key: rest.credentialsSecret.usernameKey ?? "username",
      });
      env.push({
        name: "RESTIC_REST_PASSWORD",
        secret: rest.credentialsSecret.name,
        key: rest.credentialsSecret.passwordKey ?? "password",
      });
    }
    if (rest.caSecret) {
      volumes.push({
        name: `${role}-ca`,
        mountPath: `${secretsDir}/ca`,
        readOnly: true,
        source: { secret: { secretName: rest.caSecret.name, items: [{ key: rest.caSecret.key ?? "ca.crt", path: "ca.crt" }] } },
      });
      caFile = `${secretsDir}/ca/ca.crt`;
    }
  } else {
    throw new Error("library has no backend");
  }
  return { repository, metadata, passwordFile, caFile, insecureTls, options, volumes, env };
}

/** Where a backup producer mounts a filesystem library's volume to use the policy's client Secret. */
export const CLIENT_LIBRARY_MOUNT = "/libraries/client";

/**
 * A restic client's environment for a repository (the StoragePolicy's client Secret): RESTIC_REPOSITORY and
 * RESTIC_PASSWORD plus the backend's credentials, read through `secret(name, key)` as the Secret's bytes. A
 * filesystem repository is a path under CLIENT_LIBRARY_MOUNT. The password is what the MediaAgents use: they read it
 * from a file, which restic trims (resticPasswordFromFile); restic takes RESTIC_PASSWORD as it is, so the client Secret
 * holds the trimmed bytes. Other values are copied byte for byte. Returns the missing Secret key instead when one is
 * absent. Pure.
 */
export function clientEnvironment(
  library: LibrarySpec,
  repoPath: string,
  password: { secret: string; key: string },
  secret: (name: string, key: string) => Uint8Array | undefined,
): { data: Record<string, Buffer> } | { missing: string } {
  const a = repositoryAccess(library, repoPath, password, "client");
  const data: Record<string, Buffer> = { RESTIC_REPOSITORY: Buffer.from(a.repository) };
  for (const e of [{ name: "RESTIC_PASSWORD", secret: password.secret, key: password.key }, ...a.env]) {
    const v = secret(e.secret, e.key);
    if (v === undefined) return { missing: `${e.secret}/${e.key}` };
    data[e.name] = e.name === "RESTIC_PASSWORD" ? resticPasswordFromFile(v) : Buffer.from(v);
  }
  if (a.options["s3.region"]) data.AWS_DEFAULT_REGION = Buffer.from(a.options["s3.region"]);
  return { data };
}

// Unicode white space as Go's unicode.IsSpace sees it, in UTF-8: what strings.TrimSpace removes at either end.
const SPACES = [
  [0x09],
  [0x0a],
  [0x0b],
  [0x0c],
  [0x0d],
  [0x20],
  [0xc2, 0x85],
  [0xc2, 0xa0],
  [0xe1, 0x9a, 0x80],
  ...Array.from({ length: 11 }, (_, i) => [0xe2, 0x80, 0x80 + i]),
  [0xe2, 0x80, 0xa8],
  [0xe2, 0x80, 0xa9],
  [0xe2, 0x80, 0xaf],
  [0xe2, 0x81, 0x9f],
  [0xe3, 0x80, 0x80],
];

/**
 * The password restic reads from a password file (restic 0.18 cmd/restic/global.go loadPasswordFromFile: the file as
 * UTF-8 without a byte order mark, then strings.TrimSpace). A Secret made with `--from-file` ends with a newline,
 * which restic drops; every other byte is kept as it is. Pure.
 */
export function resticPasswordFromFile(raw: Uint8Array): Buffer {
  let b = Buffer.from(raw);
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) b = b.subarray(3);
  else if ((b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0xfe && b[1] === 0xff)) {
    // UTF-16 with a byte order mark: restic converts it to UTF-8 first.
    const le = b[0] === 0xff;
    const body = Buffer.from(b.subarray(2));
    if (!le) body.swap16();
    b = Buffer.from(body.toString("utf16le"), "utf8");
  }
  const at = (i: number) => SPACES.find((sp) => sp.every((x, j) => b[i + j] === x));
  const before = (end: number) => SPACES.find((sp) => end - sp.length >= 0 && sp.every((x, j) => b[end - sp.length + j] === x));
  let start = 0;
  let end = b.length;
  for (let sp = at(start); sp && start < end; sp = at(start)) start += sp.length;
  for (let sp = before(end); sp && end > start; sp = before(end)) end -= sp.length;
  return Buffer.from(b.subarray(start, end));
}

// ---------------------------------------------------------------------------------------------- repository identity

/**
 * Where a repository really is, as one comparable string with no secret in it: the storage's identity (the claim, NFS
 * export, host folder, S3 endpoint and bucket, REST server) and the normalised path inside it. Two copies whose
 * locations are equal, or one inside the other, would write into one repository. Pure.
 */
export function repositoryLocation(library: LibrarySpec, libraryNamespace: string, repoPath: string): string {
  if (library.filesystem) {
    const fs = library.filesystem;
    const volume = fs.persistentVolumeClaim
      ? `pvc:${libraryNamespace}/${fs.persistentVolumeClaim.claimName}`
      : fs.nfs
        ? `nfs:${fs.nfs.server.toLowerCase()}:/${join(fs.nfs.path)}`
        : `hostpath:/${join(fs.hostPath?.path)}`;
    return `${volume}//${join(fs.path, repoPath)}`;
  }
  if (library.s3) {
    const s3 = library.s3;
    return `s3:${hostOf(s3.endpoint)}/${s3.bucket}//${join(s3.prefix, repoPath)}`;
  }
  if (library.rest) return `rest:${hostOf(library.rest.url)}/${join(new URL(library.rest.url).pathname)}//${join(repoPath)}`;
  throw new Error("library has no backend");
}

/** host:port of a URL, lower case, the scheme's default port made explicit (http://h and http://h:80 are one server). */
function hostOf(url: string): string {
  const u = new URL(url);
  const port = u.port || (u.protocol === "https:" ? "443" : "80");
  return `${u.hostname.toLowerCase()}:${port}`;
}

/** One location is the other, or lies inside it (a repository in another's folder). */
export function locationsOverlap(a: string, b: string): boolean {
  const [sa, pa = ""] = a.split("//");
  const [sb, pb = ""] = b.split("//");
  if (sa !== sb) return false;
  return pa === pb || pa === "" || pb === "" || pa.startsWith(`${pb}/`) || pb.startsWith(`${pa}/`);
}

/** What one copy claims: the repository it resolves to now, and what its status recorded at init. */
export interface RepositoryClaim {
  /** namespace/name of the PolicyCopy (or SnapVault). */
  key: string;
  location: string;
  /** The restic repository ID recorded in status, once known. */
  id?: string;
  /** Its status shows an initialised repository at exactly this location. */
  established: boolean;
  createdAt: string;
}

/**
 * Whether `me` must stay off its repository because another copy has (or gets) it: one repository, one copy. Of two
 * claims on one location (or one repository ID), the one already established there keeps it; otherwise the older one
 * (creation time, then name). The loser is never written. Pure.
 */
export function repositoryConflict(me: RepositoryClaim, others: RepositoryClaim[]): { reason: string; message: string } | undefined {
  const first = (a: RepositoryClaim, b: RepositoryClaim) =>
    a.established !== b.established ? a.established : a.createdAt !== b.createdAt ? a.createdAt < b.createdAt : a.key < b.key;
  for (const o of others) {
    if (o.key === me.key) continue;
    const sameId = !!me.id && me.id === o.id;
    if (!sameId && !locationsOverlap(me.location, o.location)) continue;
    if (first(me, o)) continue;
    const what = sameId ? `the same restic repository (ID ${(me.id ?? "").slice(0, 12)})` : `the repository location of ${o.key}`;
    return {
      reason: "RepositoryShared",
      message: `this copy resolves to ${what}; one repository belongs to one copy, so Auxo never writes it for this copy. Give the copy its own spec.repositoryPath or library`,
    };
  }
  return undefined;
}

/**
 * A repository path given by hand must stay under the copy's namespace (its first segment), so that a tenant cannot
 * reach another namespace's repositories on a shared library; the operator may allow otherwise. Pure.
 */
export function repositoryPathProblem(namespace: string, repoPath: string | undefined, allowOutside: boolean): string | undefined {
  if (repoPath === undefined) return undefined;
  // The API rejects these; an object stored before that rule must not escape its library either.
  if (repoPath.split("/").some((s) => s === "." || s === "..") || repoPath.startsWith("/"))
    return `spec.repositoryPath "${repoPath}" is not a relative path inside the library (no leading "/", no "." or ".." segments)`;
  if (allowOutside) return undefined;
  if (join(repoPath).split("/")[0] === namespace) return undefined;
  return `spec.repositoryPath "${repoPath}" must start with the copy's namespace ("${namespace}/..."): repositories on shared libraries stay under their namespace's prefix`;
}
