// Every process of the local world listens on 127.0.0.1 only and talks only to 127.0.0.1, read from the kernel's
// socket tables (/proc/<pid>/fd and /proc/net/tcp{,6}) rather than trusted from flags.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { world } from "../harness/testing.ts";

interface Sock {
  local: string;
  remote: string;
  state: string;
}

function hexToAddr(hex: string): string {
  const [ip, port] = hex.split(":") as [string, string];
  const p = Number.parseInt(port, 16);
  if (ip.length === 8) {
    const b = Buffer.from(ip, "hex").reverse();
    return `${[...b].join(".")}:${p}`;
  }
  // IPv6: four little-endian 32-bit words.
  const words = ip.match(/.{8}/g) ?? [];
  const bytes = Buffer.concat(words.map((w) => Buffer.from(w, "hex").reverse()));
  const v4mapped = bytes.subarray(0, 12).equals(Buffer.from("00000000000000000000ffff", "hex"));
  if (v4mapped) return `${[...bytes.subarray(12)].join(".")}:${p}`;
  return `[${bytes.toString("hex").match(/.{4}/g)?.join(":")}]:${p}`;
}

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1] as string);
    } catch {
      // fd closed meanwhile
    }
  }
  return inodes;
}

/** The unix socket paths a process listens on (/proc/net/unix: flag 00010000 is __SO_ACCEPTCON). */
function unixListenersOf(pid: number): string[] {
  const inodes = socketInodes(pid);
  const lines = readFileSync(`/proc/${pid}/net/unix`, "utf8").trim().split("\n").slice(1);
  return lines
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => inodes.has(f[6] as string) && f[3] === "00010000" && f[7])
    .map((f) => f[7] as string);
}

function socketsOf(pid: number): Sock[] {
  const inodes = socketInodes(pid);
  const out: Sock[] = [];
  for (const table of ["tcp", "tcp6"]) {
    const lines = readFileSync(`/proc/${pid}/net/${table}`, "utf8").trim().split("\n").slice(1);
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      if (inodes.has(f[9] as string))
        out.push({ local: hexToAddr(f[1] as string), remote: hexToAddr(f[2] as string), state: f[3] as string });
    }
  }
  return out;
}

const loopback = (addr: string) => addr.startsWith("127.") || addr.startsWith("[0000:0000:0000:0000:0000:0000:0000:0001]");

describe("network safety", () => {
  it("has every world process listen on and connect to loopback only", () => {
    const pids = world().pids;
    // The CSI stack serves no TCP at all: the driver listens on a unix socket, the sidecars only dial it and the
    // API server.
    const tcpServers = ["etcd", "harness", "kube-apiserver", "kube-controller-manager", "versitygw"];
    const unixOnly = ["csi-driver", "csi-provisioner", "csi-snapshotter", "snapshot-controller"];
    expect(Object.keys(pids).sort()).toEqual([...tcpServers, ...unixOnly].sort());
    expect(unixListenersOf(pids["csi-driver"] as number)).toEqual([world().csi.socket]);
    for (const [name, pid] of Object.entries(pids)) {
      const socks = socketsOf(pid);
      const listening = socks.filter((s) => s.state === "0A");
      const connected = socks.filter((s) => s.state === "01");
      if (unixOnly.includes(name)) expect(listening, `${name} listens on TCP`).toEqual([]);
      else expect(listening.length, `${name} listens`).toBeGreaterThan(0);
      for (const s of listening) expect(loopback(s.local), `${name} listens on ${s.local}`).toBe(true);
      for (const s of connected) expect(loopback(s.remote), `${name} connected to ${s.remote}`).toBe(true);
    }
  });
});
