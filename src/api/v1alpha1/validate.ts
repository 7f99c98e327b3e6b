// ajv validators from the same schemas: fast feedback on manifests (examples, Helm values) before the API server
// has its say. CEL rules (x-kubernetes-validations) are the API server's alone.
import { Ajv, type ErrorObject } from "ajv";
import addFormats from "ajv-formats";
import { kinds } from "./index.ts";

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: false });
(addFormats as unknown as (a: Ajv) => void)(ajv);
const validators = new Map(kinds.map((k) => [k.kind, ajv.compile(k.spec)]));

export interface ValidationProblem {
  path: string;
  message: string;
}

/** Problems with the spec of an Auxo object, or [] when it is valid (as far as the schema can tell). */
export function validateSpec(kind: string, spec: unknown): ValidationProblem[] {
  const v = validators.get(kind);
  if (!v) return [{ path: "kind", message: `unknown kind ${kind}` }];
  if (v(spec)) return [];
  return (v.errors ?? []).map((e: ErrorObject) => ({
    path: `spec${e.instancePath.replace(/\//g, ".")}`,
    message:
      e.keyword === "additionalProperties"
        ? `unknown field ${(e.params as { additionalProperty: string }).additionalProperty}`
        : (e.message ?? "invalid"),
  }));
}
