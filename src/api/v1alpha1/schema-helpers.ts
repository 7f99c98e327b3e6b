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

const durationPattern = "^([0-9]+([.][0-9]+)?(ms|s|m|h))+$";

/**
 * A Go-style duration (30m, 6h, 1h30m, 90s) with the bounds that make sense for its field, checked by the API server
 * (CEL duration()). Every interval needs a floor (`every: 0s` started runs back to back) and a ceiling under 24 days:
 * Node.js timers fire at once past 2^31 ms.
 */
export const Duration = (description: string, bounds: { min: string; max: string }, extra: Record<string, unknown> = {}) =>
  Type.String({
    description: `${description} Between ${bounds.min} and ${bounds.max}.`,
    maxLength: 32,
    pattern: durationPattern,
    // Guarded by the pattern, so that a malformed value gets the pattern's message, not a CEL evaluation error.
    ...cel(
      {
        rule: `!self.matches('${durationPattern}') || duration(self) >= duration('${bounds.min}')`,
        message: `must be at least ${bounds.min}`,
      },
      {
        rule: `!self.matches('${durationPattern}') || duration(self) <= duration('${bounds.max}')`,
        message: `must be at most ${bounds.max}`,
      },
    ),
    ...extra,
  });

/** One path segment: starts with a letter, digit or underscore, so `.` and `..` cannot be one. */
const segment = "[A-Za-z0-9_][A-Za-z0-9._-]*";

/** No segment ends in `.auxo`: Auxo keeps a repository's job metadata in the sibling folder `<repository>.auxo`. */
const noAuxoSegment: Rule = {
  rule: "!self.matches('[.]auxo(/|$)')",
  message: "no path segment may end in .auxo (Auxo keeps job metadata in <repository>.auxo beside each repository)",
};

/**
 * A repository location inside a library: a relative path of segments separated by single slashes, none empty, `.`
 * or `..`, so that a repository can never escape its library (RE2 and JS regex alike).
 */
export const RepositoryPath = (description: string) =>
  Type.String({
    description: `${description} A relative path of 1 to 512 characters: segments of letters, digits, '.', '_' and '-' separated by single '/', none starting with '.' or '-'.`,
    minLength: 1,
    maxLength: 512,
    pattern: `^${segment}(/${segment})*$`,
    ...cel(
      {
        rule: `self.matches('^${segment}(/${segment})*$')`,
        message:
          "must be a relative path inside the library: no leading '/', no empty, '.' or '..' segment, segments of letters, digits, '.', '_' and '-'",
      },
      noAuxoSegment,
    ),
  });

/** A folder inside a library's volume or bucket: like RepositoryPath, but may be empty and may end in '/'. */
export const LibraryFolder = (description: string) =>
  Type.String({
    description: `${description} A relative path of at most 256 characters: no leading '/', no empty, '.' or '..' segment.`,
    maxLength: 256,
    pattern: `^(${segment}(/${segment})*/?)?$`,
    ...cel(
      {
        rule: `self.matches('^(${segment}(/${segment})*/?)?$')`,
        message: "must be a relative path inside the volume or bucket: no leading '/', no empty, '.' or '..' segment",
      },
      noAuxoSegment,
    ),
  });

/** An http(s) URL; see noCredentialsIn for user:password in it. */
export const HttpUrl = (description: string) =>
  Type.String({
    description: `${description} No user or password in the URL: they belong in credentialsSecret.`,
    minLength: 8,
    maxLength: 2048,
    pattern: "^https?://[^\\s/]+(/\\S*)?$",
  });

/**
 * Refuses user:password in the URL `field` of the object (credentials belong in a Secret). A rule on the object, not
 * on the string: the API server's error then names the field without echoing the value, password and all.
 */
export const noCredentialsIn = (field: string): Rule => ({
  rule: `!self.${field}.matches('^[a-z]+://[^/]*@')`,
  message: "must not hold a user or password (https://user:password@host): put credentials in credentialsSecret",
  fieldPath: `.${field}`,
});

/** A time of day, 24-hour HH:MM. */
export const TimeOfDay = (description: string, extra: Record<string, unknown> = {}) =>
  Type.String({ description, maxLength: 5, pattern: "^([01][0-9]|2[0-3]):[0-5][0-9]$", ...extra });

export const DateOnly = (description: string, extra: Record<string, unknown> = {}) =>
  Type.String({ description, format: "date", maxLength: 10, ...extra });
export const DateTime = (description: string, extra: Record<string, unknown> = {}) =>
  Type.String({ description, format: "date-time", maxLength: 64, ...extra });

export const Weekday = (description: string, extra: Record<string, unknown> = {}) =>
  Enum(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"] as const, description, extra);

// Kubernetes types that Auxo passes to MediaAgent pods, typed so that the API server refuses what pod creation would
// (a pod that cannot be created leaves its owner without progress). Patterns as in k8s.io/apimachinery validation.
const qualifiedName = "([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)";
const labelKeyPattern = `^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?${qualifiedName}$`;
const labelValuePattern = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";

/** A label key: an optional DNS-subdomain prefix and a name of at most 63 characters. */
export const LabelKey = (description: string) =>
  Type.String({
    description,
    maxLength: 317,
    pattern: labelKeyPattern,
    ...cel({
      rule: "self.split('/')[self.split('/').size() - 1].size() <= 63",
      message: "the name part of a label key is at most 63 characters",
    }),
  });

export const LabelValue = (description: string) => Type.String({ description, maxLength: 63, pattern: labelValuePattern });

/** A map of label keys to label values (a node selector, a selector's matchLabels). */
export const LabelMap = (description: string) =>
  Type.Unsafe<Record<string, string>>({
    type: "object",
    description: `${description} At most 32 entries; keys and values as Kubernetes labels.`,
    maxProperties: 32,
    additionalProperties: LabelValue("A label value, at most 63 characters."),
    ...cel({
      rule: `self.all(k, k.size() <= 317 && k.matches('${labelKeyPattern}') && k.split('/')[k.split('/').size() - 1].size() <= 63)`,
      message: "keys must be label keys: an optional DNS prefix and '/', then a name of at most 63 letters, digits, '-', '_' or '.'",
    }),
  });

/** A resource.Quantity that cannot be negative: 100m, 1, 1.5Gi, 512Mi, 2e3. */
export const Quantity = (description: string) =>
  Type.Unsafe<string | number>({
    description,
    "x-kubernetes-int-or-string": true,
    anyOf: [{ type: "integer" }, { type: "string" }],
    minimum: 0,
    maxLength: 64,
    pattern: "^(([0-9]+([.][0-9]*)?)|([.][0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+([.][0-9]*)?)|([.][0-9]+))))?$",
  });

const ResourceList = (description: string) =>
  Type.Unsafe<Record<string, string | number>>({
    type: "object",
    description: `${description} Resource names (cpu, memory, ephemeral-storage, ...) to quantities; at most 16.`,
    maxProperties: 16,
    additionalProperties: Quantity("A quantity: 100m, 1, 512Mi, 2Gi. Not negative."),
    ...cel({
      rule: `self.all(k, k.size() <= 317 && k.matches('${labelKeyPattern}'))`,
      message: "keys must be resource names such as cpu, memory or example.com/gpu",
    }),
  });

/** core/v1 ResourceRequirements, without claims (MediaAgent pods use no dynamic resources). */
export const Resources = (description: string) =>
  Obj(
    {
      requests: Type.Optional(ResourceList("Requested resources.")),
      limits: Type.Optional(ResourceList("Resource limits.")),
    },
    description,
  );

/** core/v1 Toleration. */
export const Toleration = Obj(
  {
    key: Type.Optional(LabelKey("Taint key the toleration matches; empty with operator Exists matches every taint.")),
    operator: Type.Optional(Enum(["Exists", "Equal"] as const, "Exists or Equal. Default: Equal.")),
    value: Type.Optional(LabelValue("Taint value the toleration matches (operator Equal).")),
    effect: Type.Optional(
      Enum(["NoSchedule", "PreferNoSchedule", "NoExecute"] as const, "Taint effect to match; absent matches every effect."),
    ),
    tolerationSeconds: Type.Optional(
      Int("For NoExecute: how long the pod stays bound after the taint appears; absent forever.", { minimum: 0, maximum: 31536000 }),
    ),
  },
  "A toleration (core/v1 Toleration).",
  cel(
    {
      rule: "has(self.key) && self.key != '' || has(self.operator) && self.operator == 'Exists'",
      message: "a toleration without key must have operator Exists",
    },
    {
      rule: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
      message: "a toleration with operator Exists has no value",
    },
    {
      rule: "!has(self.tolerationSeconds) || has(self.effect) && self.effect == 'NoExecute'",
      message: "tolerationSeconds is for effect NoExecute only",
    },
  ),
);

/** metav1.LabelSelector. */
export const LabelSelector = (description: string) =>
  Obj(
    {
      matchLabels: Type.Optional(LabelMap("Labels the objects must have.")),
      matchExpressions: Type.Optional(
        Type.Array(
          Obj(
            {
              key: LabelKey("The label key."),
              operator: Enum(["In", "NotIn", "Exists", "DoesNotExist"] as const, "How the key relates to the values."),
              values: Type.Optional(
                Type.Array(LabelValue("A label value."), {
                  description: "Values for In and NotIn; empty for Exists and DoesNotExist.",
                  maxItems: 64,
                }),
              ),
            },
            "A label selector requirement.",
            cel({
              rule: "(self.operator == 'In' || self.operator == 'NotIn') == (has(self.values) && size(self.values) > 0)",
              message: "values are required for In and NotIn, and not allowed for Exists and DoesNotExist",
            }),
          ),
          { description: "Requirements on labels, all of which must hold.", maxItems: 16 },
        ),
      ),
    },
    description,
  );

export function Obj<T extends Record<string, TSchema>>(properties: T, description: string, extra: Record<string, unknown> = {}) {
  return Type.Object(properties, { description, additionalProperties: false, ...extra });
}

/** A key of a Secret's data. */
export const SecretKey = (description: string, defaultKey: string) =>
  Str(`${description} Default: ${defaultKey}.`, { default: defaultKey, minLength: 1, maxLength: 253, pattern: "^[-._a-zA-Z0-9]+$" });

export const SecretKeyRef = (description: string, defaultKey: string) =>
  Obj(
    {
      name: Name("Name of the Secret, in the same namespace."),
      key: Type.Optional(SecretKey("Key in the Secret.", defaultKey)),
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
