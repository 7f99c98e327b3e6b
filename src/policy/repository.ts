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
 * RESTIC_PASSWORD plus the backend's credentials, read through `secret(name, key)`. A filesystem repository is a path
 * under CLIENT_LIBRARY_MOUNT. Returns the missing Secret key instead when one is absent. Pure.
 */
export function clientEnvironment(
  library: LibrarySpec,
  repoPath: string,
  password: { secret: string; key: string },
  secret: (name: string, key: string) => string | undefined,
): { data: Record<string, string> } | { missing: string } {
  const a = repositoryAccess(library, repoPath, password, "client");
  const data: Record<string, string> = { RESTIC_REPOSITORY: a.repository };
  for (const e of [{ name: "RESTIC_PASSWORD", secret: password.secret, key: password.key }, ...a.env]) {
    const v = secret(e.secret, e.key);
    if (v === undefined) return { missing: `${e.secret}/${e.key}` };
    data[e.name] = v;
  }
  if (a.options["s3.region"]) data.AWS_DEFAULT_REGION = a.options["s3.region"];
  return { data };
}
