import { type Static, Type } from "@sinclair/typebox";
import {
  Bool,
  Conditions,
  DateTime,
  Duration,
  Enum,
  HttpUrl,
  Int,
  LibraryFolder,
  Name,
  Obj,
  ObservedGeneration,
  SecretKey,
  SecretKeyRef,
  Str,
  cel,
  noCredentialsIn,
} from "./schema-helpers.ts";

const Filesystem = Obj(
  {
    persistentVolumeClaim: Type.Optional(
      Obj({ claimName: Name("Name of the PersistentVolumeClaim, in the library's namespace.") }, "A claim that holds the library."),
    ),
    nfs: Type.Optional(
      Obj(
        {
          server: Str("NFS server host name or address.", { minLength: 1, maxLength: 253, pattern: "^[A-Za-z0-9.:\\[\\]-]+$" }),
          path: Str("Exported path.", { maxLength: 1024, pattern: "^/" }),
        },
        "An NFS export.",
      ),
    ),
    hostPath: Type.Optional(
      Obj(
        { path: Str("Absolute path on the node.", { maxLength: 1024, pattern: "^/" }) },
        "A folder on the node (single-node clusters and tests).",
      ),
    ),
    path: Type.Optional(LibraryFolder("Folder inside the volume under which repositories are created. Default: the volume's root.")),
  },
  "A filesystem library: a folder on a volume that MediaAgent pods mount.",
  cel({
    rule: "[has(self.persistentVolumeClaim), has(self.nfs), has(self.hostPath)].filter(x, x).size() == 1",
    message: "a filesystem library needs exactly one of persistentVolumeClaim, nfs or hostPath",
  }),
);

const S3 = Obj(
  {
    endpoint: HttpUrl("S3 endpoint URL, for example https://s3.eu-west-1.amazonaws.com or http://minio.backup:9000."),
    bucket: Str("Bucket name.", { minLength: 3, maxLength: 63, pattern: "^[a-z0-9][a-z0-9.-]*[a-z0-9]$" }),
    prefix: Type.Optional(LibraryFolder("Key prefix inside the bucket under which repositories are created.")),
    region: Type.Optional(Str("Region. Default: us-east-1.", { default: "us-east-1", maxLength: 64, pattern: "^[A-Za-z0-9_.-]+$" })),
    credentialsSecret: Obj(
      {
        name: Name("Name of the Secret, in the same namespace."),
        accessKeyIdKey: Type.Optional(SecretKey("Key holding the access key id.", "AWS_ACCESS_KEY_ID")),
        secretAccessKeyKey: Type.Optional(SecretKey("Key holding the secret access key.", "AWS_SECRET_ACCESS_KEY")),
      },
      "Secret with the S3 credentials.",
    ),
    caSecret: Type.Optional(SecretKeyRef("Secret holding a PEM CA bundle for endpoints with a private CA.", "ca.crt")),
    insecureSkipTLSVerify: Type.Optional(
      Bool("Do not verify the endpoint's TLS certificate (local test servers only).", { default: false }),
    ),
  },
  "An S3-compatible bucket.",
  cel(
    {
      rule: "!(has(self.insecureSkipTLSVerify) && self.insecureSkipTLSVerify && has(self.caSecret))",
      message: "set either caSecret or insecureSkipTLSVerify, not both",
    },
    noCredentialsIn("endpoint"),
  ),
);

const Rest = Obj(
  {
    url: HttpUrl("restic REST server URL, for example https://rest.backup:8000/."),
    credentialsSecret: Type.Optional(
      Obj(
        {
          name: Name("Name of the Secret."),
          usernameKey: Type.Optional(SecretKey("Key holding the user name.", "username")),
          passwordKey: Type.Optional(SecretKey("Key holding the password.", "password")),
        },
        "Secret with HTTP basic credentials.",
      ),
    ),
    caSecret: Type.Optional(SecretKeyRef("Secret holding a PEM CA bundle.", "ca.crt")),
  },
  "A restic REST server.",
  cel(noCredentialsIn("url")),
);

export const LibrarySpec = Obj(
  {
    filesystem: Type.Optional(Filesystem),
    s3: Type.Optional(S3),
    rest: Type.Optional(Rest),
    maxStreams: Type.Optional(
      Int("Most MediaAgent streams that may use this library at once, across all copies and jobs. Default: 10.", {
        minimum: 1,
        maximum: 1000,
        default: 10,
      }),
    ),
    probeInterval: Type.Optional(
      Duration("How often a healthy library is probed. Default: 5m.", { min: "2s", max: "24h" }, { default: "5m" }),
    ),
  },
  "Where backup data is stored: exactly one of filesystem, s3 or rest.",
  cel({
    rule: "[has(self.filesystem), has(self.s3), has(self.rest)].filter(x, x).size() == 1",
    message: "a library has exactly one backend: set one of filesystem, s3 or rest",
  }),
);

export const LibraryStatus = Obj(
  {
    observedGeneration: Type.Optional(ObservedGeneration),
    conditions: Type.Optional(Conditions),
    phase: Type.Optional(Enum(["Pending", "Ready", "Unreachable"] as const, "Pending until the first probe; then Ready or Unreachable.")),
    lastProbeTime: Type.Optional(DateTime("When the library was last probed.")),
    message: Type.Optional(Str("What the last probe found.")),
    consecutiveFailures: Type.Optional(
      Int("Failed probes in a row; while the library is down, probes back off (30 s doubling to 30 min).", { minimum: 0 }),
    ),
    nextProbeTime: Type.Optional(DateTime("When the next probe is due.")),
  },
  "Observed state of the library.",
);

export type LibrarySpec = Static<typeof LibrarySpec>;
export type LibraryStatus = Static<typeof LibraryStatus>;
