// A throw-away PKI for the local control plane, made with the openssl CLI (Node cannot sign X.509 certificates).
// One CA signs the API server's serving certificate, the kubelet endpoint's and every client certificate
// (user = CN, groups = O), as controller-runtime's envtest does with its TinyCA.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export interface CertPair {
  cert: string; // path
  key: string; // path
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

export class Pki {
  readonly dir: string;
  readonly ca: CertPair;
  private serial = 1;

  private constructor(dir: string) {
    this.dir = dir;
    this.ca = { cert: path.join(dir, "ca.crt"), key: path.join(dir, "ca.key") };
  }

  static create(dir: string): Pki {
    mkdirSync(dir, { recursive: true });
    const pki = new Pki(dir);
    openssl(["req", "-x509", ...ecKey, "-keyout", "ca.key", "-out", "ca.crt", "-days", "30", "-subj", "/CN=auxo-local-ca"], dir);
    // Service-account token signing key pair.
    const { privateKey, publicKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    writeFileSync(path.join(dir, "sa.key"), privateKey, { mode: 0o600 });
    writeFileSync(path.join(dir, "sa.pub"), publicKey);
    return pki;
  }

  static open(dir: string): Pki {
    return new Pki(dir);
  }

  get saKey(): string {
    return path.join(this.dir, "sa.key");
  }

  get saPub(): string {
    return path.join(this.dir, "sa.pub");
  }

  caPem(): string {
    return readFileSync(this.ca.cert, "utf8");
  }

  private sign(name: string, subject: string, ext: string): CertPair {
    const base = `${name}-${process.pid}-${this.serial++}`;
    const cert = path.join(this.dir, `${name}.crt`);
    const key = path.join(this.dir, `${name}.key`);
    writeFileSync(path.join(this.dir, `${base}.ext`), ext);
    openssl(["req", "-new", ...ecKey, "-keyout", key, "-out", `${base}.csr`, "-subj", subject], this.dir);
    openssl(
      [
        "x509",
        "-req",
        "-in",
        `${base}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-set_serial",
        `0x${randomBytes(16).toString("hex")}`,
        "-days",
        "30",
      ].concat(["-extfile", `${base}.ext`, "-out", cert]),
      this.dir,
    );
    return { cert, key };
  }

  /** A serving certificate for localhost / 127.0.0.1. */
  server(name: string): CertPair {
    return this.sign(
      name,
      "/CN=localhost",
      "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n",
    );
  }

  /** A client certificate: the API server reads the user from CN and the groups from O. */
  client(file: string, user: string, groups: string[] = []): CertPair {
    const esc = (s: string) => s.replace(/[/\\]/g, (c) => `\\${c}`);
    const subject = `${groups.map((g) => `/O=${esc(g)}`).join("")}/CN=${esc(user)}`;
    return this.sign(file, subject, "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n");
  }
}
