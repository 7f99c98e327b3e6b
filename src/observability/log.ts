// Structured JSON logs (pino). Redaction is structural: every log object (and every child logger's bindings) is
// walked before it is written, so a credential is hidden wherever a careless `log.info({ pod, err })` puts it:
// - a value whose key names a credential (password, secret, token, accessKey, secretAccessKey, authorization...);
//   a key that names where a credential is (passwordSecret, accessKeyIdKey, passwordFile, secretName) stays;
// - the `value` of an env entry (`{ name, value }`) whose name names a credential;
// - every value of a Secret's `data` and `stringData` (its keys stay readable);
// - the user:password of a URL in any string.
// Errors are walked too (their own fields and cause), so an ApiError carrying a Secret prints no data.
import { type Logger, pino } from "pino";

export const REDACTED = "[redacted]";

const CREDENTIAL = /pass(word|wd|phrase)|secret|token|credential|authorization|apikey|accesskey|privatekey|sessionkey|cookie/;
// A field that names where a credential lives, not the credential itself.
const REFERENCE = /(keykey|idkey|passwordkey|usernamekey|tokenkey|ref|name|names|file|path|secret|secrets)$/;
const EXACT = new Set(["auth", "bearer", "apikey", "secretkey", "accesskey", "privatekey", "sessionkey"]);
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+:[^/\s@]+@/gi;
const MAX_DEPTH = 24;

/** Whether a field or variable of this name holds a credential (compared without case, `-` or `_`). */
export function namesCredential(key: string): boolean {
  const n = key.toLowerCase().replace(/[-_.]/g, "");
  if (EXACT.has(n)) return true;
  return CREDENTIAL.test(n) && !REFERENCE.test(n);
}

const isPlain = (v: object): boolean => {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
};

const isSecretObject = (o: Record<string, unknown>): boolean =>
  o.kind === "Secret" ||
  ("stringData" in o && typeof o.stringData === "object") ||
  (typeof o.type === "string" && /^(Opaque$|kubernetes\.io\/|bootstrap\.kubernetes\.io\/)/.test(o.type) && typeof o.data === "object");

function redactValues(v: unknown): unknown {
  if (v === null || typeof v !== "object") return REDACTED;
  return Object.fromEntries(Object.keys(v).map((k) => [k, REDACTED]));
}

/** A copy of `value` with every credential replaced by "[redacted]" (see the file's comment). */
export function redact(value: unknown): unknown {
  return walk(value, new WeakSet(), 0);
}

function walk(v: unknown, seen: WeakSet<object>, depth: number): unknown {
  if (typeof v === "string") return v.includes("@") ? v.replace(URL_USERINFO, `$1${REDACTED}@`) : v;
  if (v === null || typeof v !== "object") return v;
  if (depth > MAX_DEPTH) return "[too deep]";
  if (seen.has(v)) return "[circular]";
  if (v instanceof URL) return walk(v.href, seen, depth);
  if (v instanceof Date || ArrayBuffer.isView(v)) return v;
  seen.add(v);
  try {
    if (Array.isArray(v)) return v.map((x) => walk(x, seen, depth + 1));
    if (v instanceof Map) return walk(Object.fromEntries(v), seen, depth);
    if (v instanceof Set) return walk([...v], seen, depth);
    const src = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    if (v instanceof Error) {
      // What pino's err serializer would print, walked: the type, message and stack, own fields and the cause.
      out.type = v.constructor.name;
      out.message = walk(v.message, seen, depth + 1);
      out.stack = walk(v.stack, seen, depth + 1);
      if (v.cause !== undefined) out.cause = walk(v.cause, seen, depth + 1);
    } else if (!isPlain(v) && typeof (v as { toJSON?: unknown }).toJSON === "function") {
      return walk((v as { toJSON: () => unknown }).toJSON(), seen, depth);
    }
    const secret = isSecretObject(src);
    const envEntry = typeof src.name === "string" && "value" in src && namesCredential(src.name);
    for (const [k, x] of Object.entries(src)) {
      if (typeof x === "function" || x === undefined) continue;
      if (secret && (k === "data" || k === "stringData")) out[k] = redactValues(x);
      else if (k === "stringData") out[k] = redactValues(x);
      else if (envEntry && k === "value") out[k] = REDACTED;
      else if (namesCredential(k) && (x === null || typeof x !== "object" || Array.isArray(x) || ArrayBuffer.isView(x))) out[k] = REDACTED;
      else out[k] = walk(x, seen, depth + 1);
    }
    return out;
  } finally {
    seen.delete(v);
  }
}

export function createLogger(level = process.env.AUXO_LOG_LEVEL ?? "info", destination?: pino.DestinationStream): Logger {
  const root = pino(
    {
      level,
      base: { app: "auxo" },
      // The log formatter has already walked every error into a plain object; pino's own err serializer would
      // rename its type.
      serializers: { err: (e: unknown) => (e instanceof Error ? redact(e) : e) },
      formatters: {
        log: (obj) => redact(obj) as Record<string, unknown>,
      },
    },
    destination,
  );
  // pino applies no formatter to a child's bindings: walk them here (children inherit `child` from the root).
  const child = root.child;
  root.child = function (this: Logger, bindings, options) {
    return child.call(this, redact(bindings) as typeof bindings, options);
  } as Logger["child"];
  return root;
}
