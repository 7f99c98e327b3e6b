// Library: checks what the library names (credentials Secrets and keys, the claim of a filesystem library). The
// probe of the storage itself runs in a MediaAgent pod (the data-path issue); until then Ready means "configured".
import { checkLibraryVolume, checkSecrets, type Problem, type SecretKeys, type SecretRefCheck } from "../policy/references.ts";
import { done, requeueAfter } from "../runtime/result.ts";
import { isNotFound } from "../kube/errors.ts";
import { formatTime, parseTime, Pods } from "../kube/resources.ts";
import { buildAgentPod, podName } from "../mediaagent/pod.ts";
import { nextProbeAt } from "../policy/probe.ts";
import { repositoryAccess } from "../policy/repository.ts";
import { controllerRef } from "../runtime/objects.ts";
import type { Manager } from "../runtime/manager.ts";
import { watch } from "../runtime/controller.ts";
import { Libraries, type LibraryObj, PersistentVolumeClaims, type SecretObj } from "./resources.ts";
import { writeStatus } from "./status.ts";
import { createAgentPod } from "./agent/pods.ts";
import type { ProbeRequests } from "./agent/probes.ts";
import { agentPodsOf } from "./agent/labels.ts";
import { type PodObj, probeResult } from "./agent/results.ts";
import type { ControllerSettings } from "./settings.ts";

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

export function registerLibraryController(mgr: Manager, settings: ControllerSettings, probesAsked?: ProbeRequests): void {
  const now = settings.now ?? Date.now;
  const libraries = mgr.informer<LibraryObj>(Libraries);
  const secrets = mgr.secrets();
  const claims = mgr.informer(PersistentVolumeClaims);
  const probes = mgr.informer<PodObj>(Pods, { labelSelector: agentPodsOf("probe") });
  libraries.addIndexer("secret", (l) => librarySecretRefs(l).map((r) => `${l.metadata.namespace}/${r.name}`));
  libraries.addIndexer("claim", (l) =>
    l.spec.filesystem?.persistentVolumeClaim ? [`${l.metadata.namespace}/${l.spec.filesystem.persistentVolumeClaim.claimName}`] : [],
  );
  const byIndex = (index: string) => (o: { metadata: { namespace?: string; name: string } }) =>
    libraries.byIndex(index, `${o.metadata.namespace}/${o.metadata.name}`).map((l) => `${l.metadata.namespace}/${l.metadata.name}`);
  const controller = mgr.addController({
    name: "library",
    forType: libraries,
    owns: [probes],
    watches: [watch(secrets.metadata, byIndex("secret")), watch(claims, byIndex("claim"))],
    reconcile: async (req) => {
      const lib = libraries.get(req.namespace, req.name);
      if (!lib) return done();
      const ns = req.namespace as string;
      const refs = librarySecretRefs(lib);
      const named = await secrets.getMany(ns, new Set(refs.map((r) => r.name)));
      const problems: Problem[] = checkSecrets(refs, secretKeys(named));
      // Tenancy: storage outside what the namespace owns only where the operator allows it (docs/tenancy.md).
      const refused = checkLibraryVolume(lib.spec, {
        hostPath: settings.allowHostPathLibraries === true,
        nfs: settings.allowNfsLibraries === true,
      });
      problems.push(...refused);
      const claim = lib.spec.filesystem?.persistentVolumeClaim?.claimName;
      if (claim && !claims.get(ns, claim)) {
        problems.push({
          reason: "ClaimNotFound",
          message: `spec.filesystem.persistentVolumeClaim names claim "${claim}", which does not exist in this namespace`,
        });
      }
      const st = lib.status ?? {};
      const fields: Record<string, unknown> = {
        phase: st.phase ?? "Pending",
        lastProbeTime: st.lastProbeTime,
        message: st.message,
        consecutiveFailures: st.consecutiveFailures ?? 0,
        nextProbeTime: st.nextProbeTime,
      };
      // A refused library is never Ready, even one probed before the operator stopped allowing it: nothing uses it.
      if (refused.length) Object.assign(fields, { phase: "Pending", message: refused[0]?.message });
      let requeue: number | undefined;
      if (problems.length === 0 && settings.probeLibraries !== false) {
        const pods = probes
          .list(ns)
          .filter((p) => p.metadata.ownerReferences?.some((r) => r.kind === "Library" && r.name === lib.metadata.name && r.controller));
        const finished = pods.map((p) => ({ p, r: probeResult(p) })).find((x) => x.r !== undefined);
        if (finished?.r) {
          const at = formatTime(parseTime(finished.r.at) ?? now());
          if (st.lastProbeTime === at) {
            // The verdict is in status (as this cache sees it): the pod can go, and the next round may start.
            await mgr.client.delete(Pods, ns, finished.p.metadata.name).catch((err) => {
              if (!isNotFound(err)) throw err;
            });
          } else {
            // Record the verdict first and remove the pod only once the status shows it: a reconcile that runs on
            // a cache without the new status must not find "no probe yet" and start another pod.
            const failures = finished.r.ok ? 0 : (st.consecutiveFailures ?? 0) + 1;
            fields.phase = finished.r.ok ? "Ready" : "Unreachable";
            fields.message = finished.r.message;
            fields.lastProbeTime = at;
            fields.consecutiveFailures = failures;
            fields.nextProbeTime = formatTime(
              nextProbeAt({ lastProbeTime: parseTime(at), consecutiveFailures: failures, probeInterval: lib.spec.probeInterval ?? "5m" }),
            );
          }
        } else if (pods.length === 0) {
          const scheduled = nextProbeAt({
            lastProbeTime: parseTime(st.lastProbeTime),
            consecutiveFailures: st.consecutiveFailures ?? 0,
            probeInterval: lib.spec.probeInterval ?? "5m",
          });
          // A MediaAgent that could not reach the library asked for a probe now (controllers/probes.ts).
          const asked = probesAsked?.latest(ns, lib.metadata.name);
          const due = asked && asked.at > (parseTime(st.lastProbeTime) ?? 0) + 999 ? Math.min(scheduled, asked.at) : scheduled;
          if (due <= now()) {
            const access = repositoryAccess(lib.spec, "", undefined, "target");
            const pod = buildAgentPod({
              task: "probe",
              namespace: ns,
              // One name per probe round: a repeated reconcile finds the pod instead of starting another.
              name: podName(lib.metadata.name, "probe", String(parseTime(st.lastProbeTime) ?? 0)),
              owner: controllerRef(lib, Libraries),
              image: settings.agentImage,
              target: access,
              deadlineSeconds: (settings.probeTimeoutSeconds ?? 60) + 30,
            });
            const out = await createAgentPod(mgr, pod);
            if (!out.created) {
              // Counted as a failed probe: the library is not Ready, and probes back off like any failure.
              const failures = (st.consecutiveFailures ?? 0) + 1;
              Object.assign(fields, {
                phase: "Unreachable",
                message: out.message,
                lastProbeTime: formatTime(now()),
                consecutiveFailures: failures,
                nextProbeTime: formatTime(
                  nextProbeAt({ lastProbeTime: now(), consecutiveFailures: failures, probeInterval: lib.spec.probeInterval ?? "5m" }),
                ),
              });
              problems.push({ reason: "PodRejected", message: out.message });
            }
          } else {
            requeue = due - now();
          }
        }
      }
      // An unreachable library is not Ready, and neither is one not probed yet (only a probe proves the storage works);
      // with probes switched off by the operator, a library is Ready as far as its configuration goes.
      const readyProblems =
        problems.length === 0 && fields.phase === "Unreachable"
          ? [{ reason: "Unreachable", message: String(fields.message ?? "probe failed") }]
          : problems;
      const ok =
        fields.phase === "Ready"
          ? { reason: "Reachable", message: String(fields.message ?? "the last probe succeeded") }
          : { reason: "Configured", message: "every Secret and claim the library names exists; library probes are off" };
      const unknown =
        fields.phase !== "Ready" && settings.probeLibraries !== false
          ? { reason: "ProbePending", message: "every Secret and claim the library names exists; waiting for the first probe" }
          : undefined;
      await writeStatus(mgr, Libraries, lib, { problems: readyProblems, ok, unknown }, fields, now());
      if (requeue !== undefined) return requeueAfter(Math.max(requeue, 1000));
      return done();
    },
  });
  probesAsked?.onRequest((key) => controller.queue.add(key));
}
