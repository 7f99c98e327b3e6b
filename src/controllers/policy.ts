// StoragePolicy and PolicyCopy: check that what they name exists and that a policy's copies form a tree rooted at
// its primary copy; publish each policy's copies (by precedence) and each copy's role in status.
import { Pods, Secrets } from "../kube/resources.ts";
import {
  checkCopyPlacement,
  checkPolicy,
  checkSecrets,
  checkTimeZone,
  type CopyFacts,
  effectiveSource,
  precedences,
  type Problem,
} from "../policy/references.ts";
import type { Manager } from "../runtime/manager.ts";
import { watch } from "../runtime/controller.ts";
import { done, requeueAfter } from "../runtime/result.ts";
import type { PodObj } from "./agent/results.ts";
import type { ControllerSettings } from "./settings.ts";
import { type RepositoryStep, repositoryClaims, repositoryStep } from "./repository.ts";
import { librarySecretRefs, secretKeys } from "./library.ts";
import {
  AuxCopyJobs,
  type CopyObj,
  Libraries,
  type LibraryObj,
  PolicyCopies,
  policyFacts,
  type PolicyObj,
  StoragePolicies,
} from "./resources.ts";
import { writeStatus } from "./status.ts";
import { promotionStep } from "./promotion.ts";
import { isDeepStrictEqual } from "node:util";
import type { Informer } from "../kube/informer.ts";
import type { NamedSecrets } from "../kube/secrets.ts";
import { clientEnvironment, defaultRepositoryPath } from "../policy/repository.ts";
import { recopyInFuture } from "../policy/copyrules.ts";
import type { AcjObj } from "./resources.ts";
import { autoCopy, overHistory, slotName } from "../policy/schedule.ts";
import { blockingWindow, type Window } from "../policy/windows.ts";
import { largeSourceHold } from "../policy/selection.ts";
import { parseDuration } from "../policy/duration.ts";
import { controllerRef } from "../runtime/objects.ts";
import { type ApiError, isConflict, isNotFound, isRejected } from "../kube/errors.ts";
import { boundedName, labelValue } from "../policy/names.ts";
import { formatTime, parseTime } from "../kube/resources.ts";

const key = (ns: string | undefined, name: string) => `${ns}/${name}`;

function facts(c: CopyObj): CopyFacts {
  return {
    name: c.metadata.name,
    storagePolicy: c.spec.storagePolicy,
    copyType: c.spec.copyType ?? "Synchronous",
    sourceCopy: c.spec.sourceCopy,
    precedence: c.spec.precedence,
    active: c.spec.active ?? true,
    createdAt: c.metadata.creationTimestamp ?? "",
  };
}

export function registerPolicyControllers(mgr: Manager, settings: ControllerSettings): void {
  const policies = mgr.informer<PolicyObj>(StoragePolicies);
  const copies = mgr.informer<CopyObj>(PolicyCopies);
  const libraries = mgr.informer<LibraryObj>(Libraries);
  const secrets = mgr.secrets();
  const acjs = mgr.informer<AcjObj>(AuxCopyJobs);
  const agentPods = mgr.informer<PodObj>(Pods, { labelSelector: "app.kubernetes.io/managed-by=auxo,auxo.dev/task in (init,scan,plan)" });
  copies.addIndexer("policy", (c) => [key(c.metadata.namespace, c.spec.storagePolicy)]);
  copies.addIndexer("library", (c) => [key(c.metadata.namespace, c.spec.library)]);
  copies.addIndexer("secret", (c) => [key(c.metadata.namespace, c.spec.encryption.passwordSecret.name)]);
  copies.addIndexer("namespace", (c) => [c.metadata.namespace ?? ""]);
  copies.addIndexer("refused", (c) =>
    (c.status?.conditions ?? []).some((x) => x.type === "Ready" && x.status === "False" && x.reason === "RepositoryShared")
      ? ["refused"]
      : [],
  );
  const copiesOf = (index: string) => (o: { metadata: { namespace?: string; name: string } }) =>
    copies.byIndex(index, key(o.metadata.namespace, o.metadata.name)).map((c) => key(c.metadata.namespace, c.metadata.name));
  const copyMap = (ns: string) => new Map(copies.byIndex("namespace", ns).map((c) => [c.metadata.name, facts(c)]));

  mgr.addController({
    name: "storagepolicy",
    forType: policies,
    // Promotion check pods.
    owns: [agentPods],
    // A policy's status lists its copies; any copy change in the namespace may change it (a copy can also claim
    // a policy by naming it, or stop naming it).
    watches: [
      watch(copies, (c) => policies.list(c.metadata.namespace).map((p) => key(p.metadata.namespace, p.metadata.name))),
      // An automatic job that ends lets the next one start, and trims the history.
      watch(acjs, (j) => [key(j.metadata.namespace, (j as AcjObj).spec.storagePolicy)]),
      // The client Secret copies the primary's password and its library's credentials.
      watch(secrets.metadata, (o) => policies.list(o.metadata.namespace).map((p) => key(p.metadata.namespace, p.metadata.name))),
      watch(libraries, (o) => policies.list(o.metadata.namespace).map((p) => key(p.metadata.namespace, p.metadata.name))),
    ],
    reconcile: async (req) => {
      const policy = policies.get(req.namespace, req.name);
      if (!policy) return done();
      const all = copyMap(req.namespace as string);
      const promo = await promotionStep(mgr, settings, policy, {
        copies: copies.list(req.namespace),
        facts: all,
        libraries,
        jobs: acjs.list(req.namespace),
        pods: agentPods,
      });
      // The rest of the status follows the primary in force after this step.
      const pf = policyFacts({ ...policy, status: { ...policy.status, ...promo.fields } });
      const mine = [...all.values()].filter((c) => c.storagePolicy === pf.name);
      const prec = precedences(pf, mine);
      const ready = new Map(
        copies
          .byIndex("policy", key(req.namespace, pf.name))
          .map((c) => [c.metadata.name, (c.status?.conditions ?? []).some((x) => x.type === "Ready" && x.status === "True")]),
      );
      const runs = acjs.list(req.namespace).filter((j) => j.spec.storagePolicy === pf.name);
      const list = mine
        .map((c) => {
          const obj = copies.get(req.namespace, c.name);
          // The latest aux copy that reached this copy: when it ended, and what it left to copy.
          const parts = runs
            .flatMap((j) => (j.status?.copies ?? []).filter((p) => p.name === c.name))
            .sort((a, b) => (b.completionTime ?? b.startTime ?? "").localeCompare(a.completionTime ?? a.startTime ?? ""));
          const lastDone = parts.find((p) => p.phase === "Completed");
          const latest = parts[0];
          return {
            name: c.name,
            copyType: c.copyType,
            precedence: prec.get(c.name) ?? 0,
            active: c.active,
            primary: c.name === pf.primaryCopy,
            ready: ready.get(c.name) ?? false,
            jobs: obj?.status?.jobs?.available,
            backlog: latest ? Math.max(0, (latest.jobsSelected ?? 0) - (latest.jobsCopied ?? 0)) + (latest.jobsRemaining ?? 0) : undefined,
            lagSeconds: parts.find((p) => p.lagSeconds !== undefined)?.lagSeconds,
            jobStates: parts.find((p) => p.jobStates !== undefined)?.jobStates,
            lastCopyTime: lastDone?.completionTime,
          };
        })
        .sort((a, b) => a.precedence - b.precedence);
      // The newest job a scan found on a copy that fills an active secondary: continuous copying starts on it.
      const sources = new Set(mine.filter((c) => c.active && c.name !== pf.primaryCopy).map((c) => effectiveSource(c, pf)));
      const newest = [...sources]
        .map((n) => parseTime(n === undefined ? undefined : copies.get(req.namespace, n)?.status?.newestJob))
        .filter((t): t is number => t !== undefined);
      const auto = await automaticAuxCopy(
        mgr,
        settings,
        policy,
        newest.length ? Math.max(...newest) : undefined,
        list.some((c) => !c.primary && c.active),
        acjs.list(req.namespace),
        // No new automatic run while a promotion is pending: it waits for runs to end.
        promo.fields.promotion !== undefined,
      );
      const client = await writeClientSecret(mgr, policy, copies.get(req.namespace, pf.primaryCopy), libraries, secrets as never);
      await writeStatus(
        mgr,
        StoragePolicies,
        policy,
        {
          problems: [...checkPolicy(pf, all), ...checkTimeZone(policy.spec.timeZone), ...(client.problem ? [client.problem] : [])],
          ok: {
            reason: "CopiesResolved",
            message: `primary copy "${pf.primaryCopy}" and ${list.length - 1} secondary cop${list.length === 2 ? "y" : "ies"}`,
          },
          others: promo.condition ? [promo.condition] : [],
        },
        {
          copies: list.slice(0, 64),
          copyCount: list.length,
          lastAuxCopyTime: auto.lastAuxCopyTime,
          ...promo.fields,
          // The latest data aging run of any of its copies.
          lastDataAgingTime: mine
            .map((c) => copies.get(req.namespace, c.name)?.status?.dataAging?.lastRunTime)
            .filter((x): x is string => !!x)
            .sort()
            .at(-1),
          // Where new backups go: a promotion moves it.
          primaryRepository: copies.get(req.namespace, pf.primaryCopy)?.status?.repository,
          clientSecret: client.name,
        },
        (settings.now ?? Date.now)(),
      );
      const after = [auto.recheckMs, promo.requeueMs].filter((x): x is number => x !== undefined);
      return after.length ? requeueAfter(Math.max(Math.min(...after), 1000)) : done();
    },
  });

  mgr.addController({
    name: "policycopy",
    forType: copies,
    owns: [agentPods],
    watches: [
      watch(policies, copiesOf("policy")),
      watch(libraries, copiesOf("library")),
      watch(secrets.metadata, copiesOf("secret")),
      // Sources and cycles depend on the other copies of the namespace; a copy kept off a shared repository (in any
      // namespace) looks again when another copy changes or goes.
      watch(copies, (c) =>
        [...copies.byIndex("namespace", c.metadata.namespace ?? ""), ...copies.byIndex("refused", "refused")].map((o) =>
          key(o.metadata.namespace, o.metadata.name),
        ),
      ),
    ],
    reconcile: async (req) => {
      const copy = copies.get(req.namespace, req.name);
      if (!copy) return done();
      const ns = req.namespace as string;
      const policy = policies.get(ns, copy.spec.storagePolicy);
      const all = copyMap(ns);
      const problems: Problem[] = [];
      if (!libraries.get(ns, copy.spec.library)) {
        problems.push({ reason: "LibraryNotFound", message: `library "${copy.spec.library}" does not exist in this namespace` });
      }
      problems.push(...checkCopyPlacement(facts(copy), policy && policyFacts(policy), all));
      const pw = copy.spec.encryption.passwordSecret;
      problems.push(
        ...checkSecrets(
          [{ field: "spec.encryption.passwordSecret", name: pw.name, key: pw.key ?? "password" }],
          secretKeys(await secrets.getMany(ns, [pw.name])),
        ),
      );
      const primary = !!policy && policyFacts(policy).primaryCopy === copy.metadata.name;
      const prec = policy ? precedences(policyFacts(policy), [...all.values()]).get(copy.metadata.name) : undefined;
      let repo: RepositoryStep = { fields: {}, problems: [] };
      if (problems.length === 0 && policy) {
        const sourceName = effectiveSource(facts(copy), policyFacts(policy));
        repo = await repositoryStep(mgr, settings, copy, {
          policy: policy.metadata.name,
          source: sourceName ? copies.get(ns, sourceName) : undefined,
          libraries: libraries as never,
          pods: agentPods,
          claims: repositoryClaims(copies.list(), libraries as never),
        });
        problems.push(...repo.problems);
        const source = sourceName ? copies.get(ns, sourceName) : undefined;
        const hold = largeSourceHold(copy.spec.backups, source?.status, (settings.now ?? Date.now)(), copy.status?.jobs?.available);
        if (hold) problems.push({ reason: "BackupsRequired", message: `aux copy holds: ${hold}` });
        const future = (copy.spec.jobOverrides ?? []).filter((o) => recopyInFuture(o, (settings.now ?? Date.now)()));
        if (future.length)
          problems.push({
            reason: "RecopyInFuture",
            message: `jobOverrides: Recopy of ${future.map((o) => `"${o.jobId}"`).join(", ")} has an "at" in the future; it is ignored until "at" names the time of the request (now or earlier)`,
          });
      }
      await writeStatus(
        mgr,
        PolicyCopies,
        copy,
        {
          problems,
          ok: {
            reason: "ReferencesResolved",
            message: primary
              ? "primary copy; library, policy and password Secret resolve"
              : "library, policy, source copy and password Secret resolve",
          },
        },
        { primary, ...(prec !== undefined ? { precedence: prec } : {}), ...repo.fields },
        (settings.now ?? Date.now)(),
      );
      return repo.requeueMs !== undefined ? requeueAfter(Math.max(repo.requeueMs, 1000)) : done();
    },
  });
}

/** Name of a policy's generated client Secret (shortened with a hash where the policy's name is very long). */
export const clientSecretName = (policy: string): string => boundedName(policy, "-auxo-client");

/**
 * The policy's client Secret: a restic client's environment for the primary copy in force (DESIGN: producers mount
 * one stable handle, and a promotion redirects new backups without touching them). Written only when its content
 * changes; kept as it was while the primary's library or a Secret is missing (backups go on where they went).
 * Returns the Secret's name when it exists.
 */
async function writeClientSecret(
  mgr: Manager,
  policy: PolicyObj,
  primary: CopyObj | undefined,
  libraries: Informer<LibraryObj>,
  secrets: NamedSecrets,
): Promise<{ name?: string; problem?: Problem }> {
  const ns = policy.metadata.namespace as string;
  const name = clientSecretName(policy.metadata.name);
  const existing = await secrets.get(ns, name);
  // Never take over a Secret Auxo did not make for this policy: a user's Secret of the same name stays theirs.
  if (existing && !existing.metadata.ownerReferences?.some((o) => o.uid === policy.metadata.uid))
    return {
      problem: {
        reason: "ClientSecretConflict",
        message: `Secret "${name}" exists and was not made by Auxo for this policy; Auxo leaves it alone and publishes no client Secret until it is renamed or removed`,
      },
    };
  const lib = primary && libraries.get(ns, primary.spec.library);
  // Only a copy of this very policy is its primary (spec.primaryCopy may name another policy's copy: that is refused).
  if (!primary || !lib || primary.spec.storagePolicy !== policy.metadata.name) return existing ? { name } : {};
  const pw = primary.spec.encryption.passwordSecret;
  // Only the Secrets it copies from are read (and so cached).
  const named = new Map(
    (await secrets.getMany(ns, [pw.name, ...librarySecretRefs(lib).map((r) => r.name)])).map((s) => [s.metadata.name, s]),
  );
  const env = clientEnvironment(
    lib.spec,
    primary.spec.repositoryPath ?? defaultRepositoryPath(ns, policy.metadata.name, primary.metadata.name),
    { secret: pw.name, key: pw.key ?? "password" },
    (s, k) => {
      const v = named.get(s)?.data?.[k];
      return v === undefined ? undefined : Buffer.from(v, "base64"); // bytes, as the MediaAgents get them
    },
  );
  if ("missing" in env) return existing ? { name } : {};
  const data = Object.fromEntries(Object.entries(env.data).map(([k, v]) => [k, v.toString("base64")]));
  if (existing && isDeepStrictEqual(existing.data ?? {}, data)) return { name };
  try {
    await mgr.client.apply(
      Secrets,
      {
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
          name,
          namespace: ns,
          labels: { "app.kubernetes.io/managed-by": "auxo", "auxo.dev/storage-policy": labelValue(policy.metadata.name) },
          annotations: { "auxo.dev/primary-copy": primary.metadata.name },
          ownerReferences: [controllerRef(policy, StoragePolicies)],
        },
        type: "Opaque",
        data,
      } as never,
      "auxo-operator",
    );
  } catch (err) {
    // Refused as invalid or forbidden: report it on the policy; the same write again would fail again.
    if (!isRejected(err)) throw err;
    return {
      problem: { reason: "ClientSecretRejected", message: `the API server refused Secret "${name}": ${(err as ApiError).apiMessage}` },
    };
  }
  mgr.events.event(policy, "Normal", "ClientSecretUpdated", `Secret ${name} points at the primary copy "${primary.metadata.name}"`);
  return { name };
}

/**
 * The policy's automatic aux copy: creates the AuxCopyJob of each due slot (owned by the policy, labelled
 * auxo.dev/trigger=schedule) and deletes finished automatic jobs beyond the history limits.
 */
async function automaticAuxCopy(
  mgr: Manager,
  settings: ControllerSettings,
  policy: PolicyObj,
  newestSourceJob: number | undefined,
  hasTargets: boolean,
  jobs: AcjObj[],
  promotionPending: boolean,
): Promise<{ lastAuxCopyTime?: string; recheckMs?: number }> {
  const sched = policy.spec.auxCopySchedule ?? {};
  const ns = policy.metadata.namespace as string;
  const now = (settings.now ?? Date.now)();
  const mine = jobs.filter(
    (j) => j.metadata.labels?.["auxo.dev/trigger"] === "schedule" && j.metadata.ownerReferences?.some((o) => o.uid === policy.metadata.uid),
  );
  for (const name of overHistory(
    mine.map((j) => ({ name: j.metadata.name, createdAt: j.metadata.creationTimestamp ?? "", phase: j.status?.phase })),
    sched.successfulJobsHistoryLimit ?? 3,
    sched.failedJobsHistoryLimit ?? 1,
  ))
    await mgr.client.delete(AuxCopyJobs, ns, name).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
  const last = policy.status?.lastAuxCopyTime;
  const d = autoCopy({
    // An unknown time zone: its windows cannot be read, so no automatic run (the policy's Ready says why).
    enabled: sched.enabled !== false && settings.autoAuxCopy !== false && checkTimeZone(policy.spec.timeZone).length === 0,
    everyMs: parseDuration("auxCopySchedule.every", sched.every ?? "30m"),
    createdAt: parseTime(policy.metadata.creationTimestamp) ?? now,
    lastRun: parseTime(last),
    now,
    running:
      promotionPending || mine.some((j) => !["Completed", "CompletedWithErrors", "Failed", "Killed"].includes(j.status?.phase ?? "")),
    hasTargets,
    newestSourceJob: sched.continuous === false ? undefined : newestSourceJob,
  });
  if (!d.create) return { lastAuxCopyTime: last, recheckMs: d.recheckMs };
  // A window with doNotSubmitJob skips the slot; other windows let the job queue until they end (reference §5.1).
  const blocked = blockingWindow(policy.spec.operationWindows as Window[] | undefined, "AuxCopy", now, policy.spec.timeZone ?? "UTC");
  if (blocked?.window.doNotSubmitJob) {
    mgr.events.event(policy, "Normal", "AuxCopySkipped", `automatic aux copy skipped: operation window "${blocked.window.name}"`);
    return { lastAuxCopyTime: formatTime(now), recheckMs: d.recheckMs };
  }
  const name = slotName(policy.metadata.name, d.slot);
  const created = await mgr.client
    .create(AuxCopyJobs, {
      apiVersion: "auxo.dev/v1alpha1",
      kind: "AuxCopyJob",
      metadata: {
        name,
        namespace: ns,
        labels: { "auxo.dev/storage-policy": labelValue(policy.metadata.name), "auxo.dev/trigger": "schedule" },
        ownerReferences: [controllerRef(policy, StoragePolicies)],
      },
      spec: { storagePolicy: policy.metadata.name },
    } as never)
    .then(
      () => true,
      (err: unknown) => {
        if (isConflict(err)) return true;
        if (!isRejected(err)) throw err;
        // Refused as such: say so, and let this slot pass (the next one tries again) instead of a create loop.
        mgr.events.event(policy, "Warning", "AuxCopyRejected", `automatic aux copy ${name}: ${(err as ApiError).apiMessage}`);
        return false;
      },
    );
  if (created) mgr.events.event(policy, "Normal", "AuxCopyScheduled", `automatic aux copy ${name}`);
  return { lastAuxCopyTime: formatTime(now), recheckMs: d.recheckMs };
}
