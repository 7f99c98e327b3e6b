// csi.proto (container-storage-interface/spec, pinned in hack/tools.sh), loaded for grpc-js. Shared by the world's
// CSI driver and its clients (the node runner, tests). Fields keep the proto's snake_case names.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { tools } from "../tools.ts";

/** The CSI services' constructors (clients) and definitions (servers). */
export interface CsiServices {
  Identity: grpc.ServiceClientConstructor;
  Controller: grpc.ServiceClientConstructor;
  Node: grpc.ServiceClientConstructor;
}

let loaded: CsiServices | undefined;

export function csiServices(protoFile: string = tools().csiProto): CsiServices {
  if (loaded) return loaded;
  const def = protoLoader.loadSync(protoFile, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { csi: { v1: CsiServices } };
  loaded = pkg.csi.v1;
  return loaded;
}

/** gRPC target of a unix socket path (grpc-js wants the `unix:` scheme and an absolute path). */
export function socketTarget(socket: string): string {
  return `unix:${socket}`;
}
