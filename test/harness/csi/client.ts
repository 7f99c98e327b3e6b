// A small promise client of a CSI driver's unix socket, for the node runner (Node service) and tests.
import * as grpc from "@grpc/grpc-js";
import { type CsiServices, csiServices, socketTarget } from "./proto.ts";

export type CsiService = keyof CsiServices;
// Messages are plain objects with csi.proto's snake_case field names (see proto.ts).
export type CsiMessage = Record<string, any>;

/** A failed call, with the gRPC status code's name ("Unavailable", "NotFound", "DeadlineExceeded", ...). */
export class CsiError extends Error {
  readonly code: string;
  readonly details: string;
  constructor(code: string, details: string, method: string) {
    // The shape Go's status errors print, which is what users see in Kubernetes events from real drivers.
    super(`rpc error: code = ${code} desc = ${details}`);
    this.name = `CsiError(${method})`;
    this.code = code;
    this.details = details;
  }
}

const codeNames = new Map(Object.entries(grpc.status).map(([name, n]) => [n as number, name]));

/** grpc-js names codes in SCREAMING_CASE; Go (and so Kubernetes messages) in CamelCase. */
export function codeName(code: number): string {
  const name = codeNames.get(code) ?? `Code(${code})`;
  return name
    .toLowerCase()
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join("")
    .replace(/^Ok$/, "OK");
}

export class CsiClient {
  private readonly clients = new Map<CsiService, grpc.Client>();
  readonly socket: string;
  private readonly services: CsiServices;

  constructor(socket: string, services: CsiServices = csiServices()) {
    this.socket = socket;
    this.services = services;
  }

  /** Calls `service.method` with a deadline; rejects with a CsiError. */
  call(service: CsiService, method: string, request: CsiMessage, timeoutMs = 30_000): Promise<CsiMessage> {
    const client = this.client(service) as unknown as Record<
      string,
      (req: CsiMessage, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: CsiMessage) => void) => void
    >;
    const fn = client[method];
    if (typeof fn !== "function") return Promise.reject(new Error(`CSI ${service} has no method ${method}`));
    return new Promise((resolve, reject) => {
      fn.call(client, request, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(new CsiError(codeName(err.code), err.details || err.message, method));
        else resolve(res);
      });
    });
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private client(service: CsiService): grpc.Client {
    let c = this.clients.get(service);
    if (!c) {
      c = new this.services[service](socketTarget(this.socket), grpc.credentials.createInsecure());
      this.clients.set(service, c);
    }
    return c;
  }
}
