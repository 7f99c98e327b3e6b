// Library: checks what the library names (credentials Secrets and keys, the claim of a filesystem library). The
// probe of the storage itself runs in a MediaAgent pod (the data-path issue); until then Ready means "configured".
import { checkSecrets, type Problem, type SecretKeys, type SecretRefCheck } from "../policy/references.ts";
import { done } from "../runtime/result.ts";
import type { Manager } from "../runtime/manager.ts";
import { Secrets } from "../kube/resources.ts";
import { Libraries, type LibraryObj, PersistentVolumeClaims, type SecretObj } from "./resources.ts";
import { writeStatus } from "./status.ts";

export function librarySecretRefs(lib: LibraryObj): SecretRefCheck[] {
  const s = lib.spec;
  const refs: SecretRefCheck[] = [];
  if (s.s3) {
    const c = s.s3.credentialsSecret;
    refs.push({ field: "spec.s3.credentialsSecret", name: c.name, key: c.accessKeyIdKey ?? "AWS_ACCESS_KEY_ID" });
    refs.push({ field: "spec.s3.credentialsSecret", name: c.name, key: c.secretAccessKeyKey ?? "AWS_SECRET_ACCESS_KEY" });
    if (s.s3.caSecret) refs.push({ field: "spec.s3.caSecret", name: s.s3.caSecret.name, key: s.s3.caSecret.key ?? "ca.crt" });
  }
  if (s.rest?.credentialsSecret) {
    const c = s.rest.credentialsSecret;
    refs.push({ field: "spec.rest.credentialsSecret", name: c.name, key: c.usernameKey ?? "username" });
    refs.push({ field: "spec.rest.credentialsSecret", name: c.name, key: c.passwordKey ?? "password" });
  }
  if (s.rest?.caSecret) refs.push({ field: "spec.rest.caSecret", name: s.rest.caSecret.name, key: s.rest.caSecret.key ?? "ca.crt" });
  return refs;
}

export function secretKeys(secrets: SecretObj[]): SecretKeys {
  return new Map(secrets.map((s) => [s.metadata.name, new Set(Object.keys(s.data ?? {}))]));
}

export function registerLibraryController(mgr: Manager): void {
  const libraries = mgr.informer<LibraryObj>(Libraries);
  const secrets = mgr.informer<SecretObj & { metadata: { name: string } }>(Secrets);
  const claims = mgr.informer(PersistentVolumeClaims);
  libraries.addIndexer("secret", (l) => librarySecretRefs(l).map((r) => `${l.metadata.namespace}/${r.name}`));
  libraries.addIndexer("claim", (l) =>
    l.spec.filesystem?.persistentVolumeClaim ? [`${l.metadata.namespace}/${l.spec.filesystem.persistentVolumeClaim.claimName}`] : [],
  );
  const byIndex = (index: string) => (o: { metadata: { namespace?: string; name: string } }) =>
    libraries.byIndex(index, `${o.metadata.namespace}/${o.metadata.name}`).map((l) => `${l.metadata.namespace}/${l.metadata.name}`);
  mgr.addController({
    name: "library",
    forType: libraries as never,
    watches: [
      { informer: secrets as never, map: byIndex("secret") },
      { informer: claims, map: byIndex("claim") },
    ],
    reconcile: async (req) => {
      const lib = libraries.get(req.namespace, req.name);
      if (!lib) return done();
      const ns = req.namespace as string;
      const problems: Problem[] = checkSecrets(librarySecretRefs(lib), secretKeys(secrets.list(ns) as SecretObj[]));
      const claim = lib.spec.filesystem?.persistentVolumeClaim?.claimName;
      if (claim && !claims.get(ns, claim)) {
        problems.push({
          reason: "ClaimNotFound",
          message: `spec.filesystem.persistentVolumeClaim names claim "${claim}", which does not exist in this namespace`,
        });
      }
      await writeStatus(
        mgr,
        Libraries,
        lib,
        { problems, ok: { reason: "Configured", message: "every Secret and claim the library names exists" } },
        { phase: lib.status?.phase ?? "Pending" },
      );
      return done();
    },
  });
}
