// Test processes may reach only 127.0.0.1 (and ::1): any other outgoing TCP connection fails the test that makes
// it, instead of quietly reaching out of the machine.
import net from "node:net";

const allowed = new Set(["127.0.0.1", "::1", "localhost"]);
const original = net.Socket.prototype.connect;

function hostOf(args: unknown[]): string | undefined {
  const first = args[0];
  if (Array.isArray(first)) return hostOf(first);
  if (typeof first === "object" && first !== null) {
    const o = first as { host?: string; path?: string };
    if (o.path) return undefined; // unix socket
    return o.host ?? "localhost";
  }
  if (typeof first === "number") return typeof args[1] === "string" ? args[1] : "localhost";
  return undefined; // a unix socket path
}

net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
  const host = hostOf(args);
  if (host !== undefined && !allowed.has(host)) {
    throw new Error(`test tried to connect to ${host}: tests may reach only 127.0.0.1`);
  }
  return (original as (...a: unknown[]) => net.Socket).apply(this, args);
} as typeof net.Socket.prototype.connect;
