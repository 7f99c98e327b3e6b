// One repository, one copy; a client Secret that holds what the MediaAgents use; repository paths that stay in
// their namespace. Pure rules (src/policy/repository.ts).
import { describe, expect, it } from "vitest";
import {
  clientEnvironment,
  locationsOverlap,
  type RepositoryClaim,
  repositoryConflict,
  repositoryLocation,
  repositoryPathProblem,
  resticPasswordFromFile,
} from "../../src/policy/repository.ts";
import { boundedName, labelValue } from "../../src/policy/names.ts";

const s3 = (over: Record<string, unknown> = {}) =>
  ({ s3: { endpoint: "http://127.0.0.1:9000", bucket: "backups", credentialsSecret: { name: "s3" }, ...over } }) as never;
const claim = (key: string, location: string, over: Partial<RepositoryClaim> = {}): RepositoryClaim => ({
  key,
  location,
  established: false,
  createdAt: "2026-01-01T00:00:00Z",
  ...over,
});

describe("repository locations", () => {
  it("names the storage and the path, so that two libraries on one bucket resolve to one location", () => {
    const a = repositoryLocation(s3({ prefix: "team" }), "a", "a/gold/offsite");
    const b = repositoryLocation(s3({ endpoint: "http://127.0.0.1:9000/", prefix: "team/a" }), "b", "gold/offsite");
    expect(a).toBe("s3:127.0.0.1:9000/backups//team/a/gold/offsite");
    expect(b).toBe(a);
    // The scheme's default port is the same server.
    expect(repositoryLocation(s3({ endpoint: "https://s3.example.com" }), "x", "p")).toBe(
      repositoryLocation(s3({ endpoint: "https://S3.example.com:443" }), "y", "p"),
    );
    // A claim belongs to its namespace: the same claim name in two namespaces is two volumes.
    const pvc = { filesystem: { persistentVolumeClaim: { claimName: "disk" } } } as never;
    expect(repositoryLocation(pvc, "a", "x/y")).not.toBe(repositoryLocation(pvc, "b", "x/y"));
    const nfs = { filesystem: { nfs: { server: "NAS", path: "/export/" }, path: "repos" } } as never;
    expect(repositoryLocation(nfs, "a", "x")).toBe("nfs:nas:/export//repos/x");
  });

  it("treats a repository inside another's folder as the same repository, and siblings as different", () => {
    expect(locationsOverlap("s3:h:80/b//a/gold", "s3:h:80/b//a/gold/primary")).toBe(true);
    expect(locationsOverlap("s3:h:80/b//a/gold/primary", "s3:h:80/b//a/gold/primary")).toBe(true);
    expect(locationsOverlap("s3:h:80/b//a/gold/prim", "s3:h:80/b//a/gold/primary")).toBe(false);
    expect(locationsOverlap("s3:h:80/b//a/gold", "s3:h:80/c//a/gold")).toBe(false);
  });
});

describe("one repository, one copy", () => {
  const loc = "s3:h:80/b//ns/p/c";
  it("refuses the younger of two new copies on one location, and never the older", () => {
    const older = claim("ns/a", loc, { createdAt: "2026-01-01T00:00:00Z" });
    const younger = claim("ns/b", loc, { createdAt: "2026-01-02T00:00:00Z" });
    expect(repositoryConflict(older, [older, younger])).toBeUndefined();
    expect(repositoryConflict(younger, [older, younger])).toMatchObject({ reason: "RepositoryShared" });
    expect(repositoryConflict(younger, [older, younger])?.message).toContain("ns/a");
  });

  it("keeps the repository with the copy established there, even if a copy claiming it is older", () => {
    const established = claim("ns/new", loc, { createdAt: "2026-02-01T00:00:00Z", established: true, id: "abc" });
    const oldButNew = claim("other/old", loc, { createdAt: "2025-01-01T00:00:00Z" });
    expect(repositoryConflict(established, [established, oldButNew])).toBeUndefined();
    expect(repositoryConflict(oldButNew, [established, oldButNew])?.reason).toBe("RepositoryShared");
  });

  it("refuses a copy whose repository has another's ID at another location (two names for one storage)", () => {
    const a = claim("ns/a", "hostpath:/srv//x", { id: "f00d", established: true });
    const b = claim("ns/b", "pvc:ns/disk//x", { id: "f00d", established: true, createdAt: "2026-03-01T00:00:00Z" });
    expect(repositoryConflict(b, [a, b])?.message).toContain("the same restic repository");
    expect(repositoryConflict(a, [a, b])).toBeUndefined();
  });

  it("breaks a tie of creation times by name, so both copies agree on who keeps it", () => {
    const a = claim("ns/a", loc);
    const b = claim("ns/b", loc);
    expect([repositoryConflict(a, [a, b]), repositoryConflict(b, [a, b])].filter(Boolean)).toHaveLength(1);
  });
});

describe("repository paths", () => {
  it("keeps a path given by hand under the copy's namespace unless the operator allows otherwise", () => {
    expect(repositoryPathProblem("team-a", undefined, false)).toBeUndefined();
    expect(repositoryPathProblem("team-a", "team-a/gold/x", false)).toBeUndefined();
    expect(repositoryPathProblem("team-a", "team-b/gold/primary", false)).toContain('must start with the copy\'s namespace ("team-a/...")');
    expect(repositoryPathProblem("team-a", "team-b/gold/primary", true)).toBeUndefined();
  });

  it("never lets a stored path escape its library, whatever the operator allows", () => {
    for (const p of ["team-a/../../etc", "/etc/passwd", "team-a/./x"])
      expect(repositoryPathProblem("team-a", p, true)).toContain("not a relative path inside the library");
  });
});

describe("client Secret", () => {
  const fsLib = { filesystem: { persistentVolumeClaim: { claimName: "disk" } } } as never;
  const env = (pw: Uint8Array) => {
    const r = clientEnvironment(fsLib, "ns/p/c", { secret: "pw", key: "password" }, () => pw);
    if (!("data" in r)) throw new Error("missing");
    return r.data.RESTIC_PASSWORD as Buffer;
  };

  it("gives producers the password restic reads from the MediaAgents' password file", () => {
    // kubectl create secret --from-file: the file's trailing newline is in the Secret; restic trims it.
    expect(env(Buffer.from("correct horse\n")).toString()).toBe("correct horse");
    expect(env(Buffer.from("\ufeff  spaced pass \r\n\t")).toString()).toBe("spaced pass");
    expect(env(Buffer.from("pass\u00a0\u3000")).toString()).toBe("pass");
  });

  it("keeps every other byte as it is, valid UTF-8 or not", () => {
    const raw = Buffer.from([0x70, 0xff, 0xfe, 0x00, 0x80, 0x41, 0x0a]);
    expect(env(raw)).toEqual(Buffer.from([0x70, 0xff, 0xfe, 0x00, 0x80, 0x41]));
    expect(resticPasswordFromFile(Buffer.from("inner \n space"))).toEqual(Buffer.from("inner \n space"));
  });

  it("reads a UTF-16 password file as restic does", () => {
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("pw\n", "utf16le")]);
    expect(resticPasswordFromFile(le).toString()).toBe("pw");
  });
});

describe("generated names", () => {
  it("keeps label values within 63 characters, stable and distinct", () => {
    const long = "p".repeat(60);
    expect(labelValue("gold")).toBe("gold");
    expect(labelValue(long)).toBe(long);
    const a = labelValue(`${"x".repeat(70)}-a`);
    const b = labelValue(`${"x".repeat(70)}-b`);
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).not.toBe(b);
    expect(labelValue(`${"x".repeat(70)}-a`)).toBe(a);
    expect(a).toMatch(/^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/);
  });

  it("keeps object names within their limit, keeping the suffix", () => {
    const base = "q".repeat(250);
    const n = boundedName(base, "-auxo-client");
    expect(n.length).toBeLessThanOrEqual(253);
    expect(n.endsWith("-auxo-client")).toBe(true);
    expect(boundedName("gold", "-auxo-client")).toBe("gold-auxo-client");
  });
});
