// Small builders over TypeBox that keep every schema structural (what the API server requires of CRDs): enums are
// `type: string` + `enum`, never unions; every field has a description, which `kubectl explain` shows.
import { type TSchema, Type, type TUnsafe } from "@sinclair/typebox";

export interface Rule {
  rule: string;
  message: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
  fieldPath?: string;
}

/** CEL rules evaluated by the API server (x-kubernetes-validations). */
export const cel = (...rules: Rule[]) => ({ "x-kubernetes-validations": rules });

export function Enum<const T extends readonly string[]>(
  values: T,
  description: string,
  extra: Record<string, unknown> = {},
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: "string", enum: [...values], description, ...extra });
}

export const Str = (description: string, extra: Record<string, unknown> = {}) => Type.String({ description, ...extra });
export const Int = (description: string, extra: Record<string, unknown> = {}) => Type.Integer({ description, ...extra });
export const Bool = (description: string, extra: Record<string, unknown> = {}) => Type.Boolean({ description, ...extra });

/** A Kubernetes object name (DNS-1123 subdomain). */
export const Name = (description: string, extra: Record<string, unknown> = {}) =>
  Type.String({ description, minLength: 1, maxLength: 253, pattern: "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", ...extra });

/** A Go-style duration: 30m, 6h, 1h30m, 90s. */
export const Duration = (description: string, extra: Record<string, unknown> = {}) =>
  Type.String({ description, pattern: "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$", ...extra });

/** A time of day, 24-hour HH:MM. */
export const TimeOfDay = (description: string, extra: Record<string, unknown> = {}) =>
  Type.String({ description, maxLength: 5, pattern: "^([01][0-9]|2[0-3]):[0-5][0-9]$", ...extra });

export const DateOnly = (description: string, extra: Record<string, unknown> = {}) =>
  Type.String({ description, format: "date", maxLength: 10, ...extra });
export const DateTime = (description: string, extra: Record<string, unknown> = {}) =>
  Type.String({ description, format: "date-time", ...extra });

export const Weekday = (description: string, extra: Record<string, unknown> = {}) =>
  Enum(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"] as const, description, extra);

/** A free-form object the API server keeps as given (Kubernetes types we pass through, such as tolerations). */
export const Opaque = (description: string) =>
  Type.Unsafe<Record<string, unknown>>({ type: "object", description, "x-kubernetes-preserve-unknown-fields": true });

export const StringMap = (description: string) =>
  Type.Unsafe<Record<string, string>>({ type: "object", description, additionalProperties: { type: "string" } });

export function Obj<T extends Record<string, TSchema>>(properties: T, description: string, extra: Record<string, unknown> = {}) {
  return Type.Object(properties, { description, additionalProperties: false, ...extra });
}

export const SecretKeyRef = (description: string, defaultKey: string) =>
  Obj(
    {
      name: Name("Name of the Secret, in the same namespace."),
      key: Type.Optional(Str(`Key in the Secret. Default: ${defaultKey}.`, { default: defaultKey, minLength: 1 })),
    },
    description,
  );

/** The standard Kubernetes condition (metav1.Condition), so that kstatus, Argo CD and Flux read health. */
export const Condition = Obj(
  {
    type: Str("Type of condition, in CamelCase: Ready, Reconciling, Stalled, ...", { maxLength: 316 }),
    status: Enum(["True", "False", "Unknown"] as const, "Status of the condition."),
    observedGeneration: Type.Optional(Int("The .metadata.generation the condition was set for.", { minimum: 0 })),
    lastTransitionTime: DateTime("Last time the condition changed status."),
    reason: Str("Machine-readable reason for the last transition, in CamelCase.", { maxLength: 1024, minLength: 1 }),
    message: Str("Human-readable message with details about the last transition.", { maxLength: 32768 }),
  },
  "A status condition.",
);

export const Conditions = Type.Array(Condition, {
  description: "Conditions of the resource. Ready is set on every kind.",
  maxItems: 16,
  "x-kubernetes-list-type": "map",
  "x-kubernetes-list-map-keys": ["type"],
});

export const ObservedGeneration = Int("The .metadata.generation the status was computed from.", { minimum: 0 });
