// The world's CSI driver as a process: `node test/harness/csi/main.ts --socket <path> --dir <dir> --node-id <id>`.
// Listens on the unix socket only; SIGTERM (or SIGINT) stops accepting calls and exits.
import { parseArgs } from "node:util";
import { LocalCsiDriver } from "./driver.ts";

const usage = "usage: node test/harness/csi/main.ts --socket <path> --dir <state folder> --node-id <node name> [--name <driver name>]";

let values;
try {
  ({ values } = parseArgs({
    options: { socket: { type: "string" }, dir: { type: "string" }, "node-id": { type: "string" }, name: { type: "string" } },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n${usage}\n`);
  process.exit(2);
}
if (!values.socket || !values.dir || !values["node-id"]) {
  process.stderr.write(`${usage}\n`);
  process.exit(2);
}

const driver = new LocalCsiDriver({ socket: values.socket, dir: values.dir, nodeId: values["node-id"], name: values.name });
let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`${new Date().toISOString()} csi ${signal}: stopping\n`);
  driver.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${new Date().toISOString()} csi stop failed: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
};
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

try {
  await driver.start();
} catch (err) {
  process.stderr.write(`${new Date().toISOString()} csi failed to start: ${(err as Error).message}\n`);
  process.exit(1);
}
