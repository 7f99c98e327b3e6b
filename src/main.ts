// auxo: one binary (image) for the operator and its MediaAgent pods.
//   auxo operator [--kubeconfig FILE]   run the operator
//   auxo version                        print the version
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadClusterConfig, NoClusterConfigError, serverVersion } from "./kube/config.ts";
import { createLogger } from "./observability/log.ts";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };

const usage = `usage: auxo <command> [flags]

commands:
  operator [--kubeconfig FILE]   run the Auxo operator against a cluster
  version                        print the version
`;

async function operator(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { kubeconfig: { type: "string" } }, strict: true });
  const log = createLogger();
  let cluster: ReturnType<typeof loadClusterConfig>;
  try {
    cluster = loadClusterConfig(values.kubeconfig);
  } catch (err) {
    if (err instanceof NoClusterConfigError) {
      log.fatal(err.message);
      return 2;
    }
    throw err;
  }
  const version = await serverVersion(cluster.kubeConfig);
  log.info({ source: cluster.source, server: cluster.kubeConfig.getCurrentCluster()?.server, version }, "connected to the API server");
  // Controllers come with their issues; until then the operator holds its connection and waits for a signal.
  await new Promise<void>((resolve) => {
    const keepAlive = setInterval(() => undefined, 1 << 30); // nothing else holds the event loop open yet
    const stop = (signal: string) => {
      log.info({ signal }, "shutting down");
      clearInterval(keepAlive);
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "operator":
      return await operator(rest);
    case "version":
      process.stdout.write(`auxo ${pkg.version}\n`);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(usage);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`auxo: unknown command ${JSON.stringify(command)}\n\n${usage}`);
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
