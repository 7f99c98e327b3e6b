// /metrics, /healthz and /readyz on one small HTTP server (controller-runtime serves them on two ports; the
// operator takes both addresses and serves the probes and metrics wherever it is told).
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Metrics } from "./metrics.ts";

export type Check = () => string | undefined; // undefined = healthy, else the reason

export class HealthServer {
  private readonly server: http.Server;
  private readonly checks = { healthz: new Map<string, Check>(), readyz: new Map<string, Check>() };

  private readonly metrics: Metrics | undefined;

  constructor(metrics: Metrics | undefined) {
    this.metrics = metrics;
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  addHealthCheck(name: string, check: Check): void {
    this.checks.healthz.set(name, check);
  }

  addReadyCheck(name: string, check: Check): void {
    this.checks.readyz.set(name, check);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://local");
    if (url.pathname === "/metrics" && this.metrics) {
      res.writeHead(200, { "Content-Type": this.metrics.registry.contentType });
      res.end(await this.metrics.registry.metrics());
      return;
    }
    const kind = url.pathname.slice(1);
    if (kind === "healthz" || kind === "readyz") {
      const failures: string[] = [];
      const lines: string[] = [];
      for (const [name, check] of this.checks[kind]) {
        const problem = check();
        lines.push(problem ? `[-]${name} failed: ${problem}` : `[+]${name} ok`);
        if (problem) failures.push(name);
      }
      res.writeHead(failures.length ? 503 : 200, { "Content-Type": "text/plain" });
      res.end(
        url.searchParams.has("verbose") || failures.length ? `${lines.join("\n")}\n${kind} ${failures.length ? "failed" : "ok"}\n` : "ok",
      );
      return;
    }
    res.writeHead(404).end("not found\n");
  }

  /** Listens on host:port ("127.0.0.1:0" picks a free port); returns the bound port. */
  async listen(address: string): Promise<number> {
    const i = address.lastIndexOf(":");
    const host = address.slice(0, i) || "0.0.0.0";
    const port = Number(address.slice(i + 1));
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
