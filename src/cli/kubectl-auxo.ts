// The kubectl-auxo executable's entry (bin/kubectl-auxo): kubectl runs it as `kubectl auxo ...`.
import { kubectlAuxo } from "./main.ts";

process.exitCode = await kubectlAuxo(process.argv.slice(2));
