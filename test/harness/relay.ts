// A TCP relay from a port of its own to a server on 127.0.0.1 (the world's S3 server): a test aims a library at it
// to cut the storage off for every MediaAgent and probe at once (cut), bring it back on the same port (open), or make
// it flaky (dropShare: that share of new connections is closed at once). It never touches the shared server.
import net, { type AddressInfo } from "node:net";

export class Relay {
  port = 0;
  /** Share of new connections (0..1) closed as soon as they are accepted. */
  dropShare = 0;
  dropped = 0;
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly targetPort: number;

  constructor(targetPort: number) {
    this.targetPort = targetPort;
  }

  async open(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => {
      if (this.dropShare > 0 && Math.random() < this.dropShare) {
        this.dropped++;
        client.destroy();
        return;
      }
      const upstream = net.connect(this.targetPort, "127.0.0.1");
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.sockets.add(a);
        a.on("error", () => b.destroy());
        a.on("close", () => {
          this.sockets.delete(a);
          b.destroy();
        });
        a.pipe(b);
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Closes the port and drops every open connection: the storage is gone. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }
}
