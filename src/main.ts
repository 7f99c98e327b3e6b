// auxo: one binary (image) for the operator and its MediaAgent pods.
//   auxo operator [flags]   run the operator (auxo operator --help)
//   auxo agent <task>       run a MediaAgent task (in a pod the operator builds)
//   auxo version            print the version
import { readFileSync } from "node:fs";
import { ConfigError, operatorUsage, parseOperatorConfig } from "./config.ts";
import { NoClusterConfigError } from "./kube/config.ts";
import { agentMain } from "./mediaagent/agent.ts";
import { runOperator } from "./operator.ts";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };

const usage = `usage: auxo <command> [flags]

commands:
  operator    run the Auxo operator against a cluster (auxo operator --help)
  agent TASK  run a MediaAgent task (probe, init, scan, copy, plan, age, verify, snapcopy, backupcopy, list, restore) described by AUXO_TASK
  version     print the version
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "operator": {
      if (rest.includes("--help") || rest.includes("-h")) {
        process.stdout.write(operatorUsage);
        return 0;
      }
      try {
        return await runOperator(parseOperatorConfig(rest), pkg.version);
      } catch (err) {
        if (err instanceof ConfigError || err instanceof NoClusterConfigError) {
          process.stderr.write(`auxo operator: ${err.message}\n`);
          return 2;
        }
        throw err;
      }
    }
    case "agent":
      return await agentMain(rest[0] ?? "");
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
