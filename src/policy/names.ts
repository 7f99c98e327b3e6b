// Names and label values Auxo generates from user-chosen names. Kubernetes allows object names of up to 253
// characters but label values of at most 63, so a long name is shortened with a hash of the whole (stable, so that a
// selector built from the same name finds the same objects) and every generated name stays within its limit. Pure.
import { createHash } from "node:crypto";

const hash8 = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 8);

/** A label value for a name: the name itself when it fits in 63 characters, else its first 54 and a hash. */
export function labelValue(name: string): string {
  if (name.length <= 63) return name;
  return `${name.slice(0, 54).replace(/[-_.]+$/, "")}-${hash8(name)}`;
}

/** An object name (DNS subdomain, at most `max` characters) from a base name and a suffix, shortened with a hash when long. */
export function boundedName(base: string, suffix: string, max = 253): string {
  const whole = `${base}${suffix}`;
  if (whole.length <= max) return whole;
  const keep = max - suffix.length - 9;
  return `${base.slice(0, keep).replace(/[-.]+$/, "")}-${hash8(base)}${suffix}`;
}

/** A pod name from parts: DNS-safe, at most 63 characters, with a hash when shortened. */
export function podName(...parts: string[]): string {
  const raw = parts
    .join("-")
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-|-$/g, "");
  if (raw.length <= 63) return raw;
  return `${raw.slice(0, 54).replace(/-$/, "")}-${hash8(raw)}`;
}
