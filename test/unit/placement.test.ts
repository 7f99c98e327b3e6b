// Where a backup copy pod runs (policy/placement.ts), read from the Pod the builder makes: access nodes required,
// the copy's MediaAgent preferred inside them or required without them, else real requests and no hard placement.
import { describe, expect, it } from "vitest";
import { buildAgentPod } from "../../src/mediaagent/pod.ts";
import { accessNodeNames, BACKUP_COPY_RESOURCES, backupCopyPlacement, type PlacementInput } from "../../src/policy/placement.ts";
import { repositoryAccess } from "../../src/policy/repository.ts";

const nodes: { name: string; labels: Record<string, string> }[] = [
  { name: "n1", labels: { "auxo.dev/access-node": "true", zone: "a" } },
  { name: "n2", labels: { zone: "b", "auxo.dev/mediaagent": "true" } },
];

function podSpec(i: PlacementInput) {
  const d = backupCopyPlacement(i);
  const pod = buildAgentPod({
    task: "backupcopy",
    namespace: "team",
    name: "p",
    owner: { apiVersion: "auxo.dev/v1alpha1", kind: "SnapVault", name: "db", uid: "u", controller: true },
    image: "auxo:dev",
    target: repositoryAccess({ filesystem: { volume: { persistentVolumeClaim: { claimName: "lib" } } } } as never, "r", {
      secret: "pw",
      key: "password",
    }),
    placement: d.placement,
    deadlineSeconds: 600,
  });
  const spec = pod.spec as Record<string, any>;
  return { d, spec, resources: spec.containers[0].resources };
}

describe("backup copy placement", () => {
  it("access nodes are required; the copy's MediaAgent nodes are preferred inside them", () => {
    const { d, spec } = podSpec({
      access: { selector: { matchLabels: { "auxo.dev/access-node": "true" } } },
      copy: { nodeSelector: { "auxo.dev/mediaagent": "true" }, tolerations: [{ key: "backup", operator: "Exists" }] },
      nodes,
    });
    expect(d.rule).toBe("AccessNodes");
    expect(spec.nodeSelector).toBeUndefined();
    expect(spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: "auxo.dev/access-node", operator: "In", values: ["true"] }] },
    ]);
    expect(spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution).toEqual([
      { weight: 100, preference: { matchExpressions: [{ key: "auxo.dev/mediaagent", operator: "In", values: ["true"] }] } },
    ]);
    expect(spec.tolerations).toEqual([{ key: "backup", operator: "Exists" }]);
    expect(d.unmatched).toBeUndefined();
  });

  it("a PVC's access nodes by name win over the SnapVault's selector, as a metadata.name term", () => {
    const { spec } = podSpec({
      access: { names: accessNodeNames("n2, n1") },
      nodes,
    });
    expect(spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms).toEqual([
      { matchFields: [{ key: "metadata.name", operator: "In", values: ["n1", "n2"] }] },
    ]);
    expect(spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution).toBeUndefined();
  });

  it("without access nodes the copy's MediaAgent placement is required", () => {
    const { d, spec } = podSpec({ copy: { nodeSelector: { "auxo.dev/mediaagent": "true" } }, nodes });
    expect(d.rule).toBe("MediaAgent");
    expect(spec.nodeSelector).toEqual({ "auxo.dev/mediaagent": "true" });
    expect(spec.affinity).toBeUndefined();
  });

  it("with neither: no hard placement and real requests, so the scheduler picks the node with the most room", () => {
    const { d, spec, resources } = podSpec({ nodes });
    expect(d.rule).toBe("MostResources");
    expect(spec.nodeSelector).toBeUndefined();
    expect(spec.affinity).toBeUndefined();
    expect(resources).toEqual(BACKUP_COPY_RESOURCES);
    expect(podSpec({ copy: { resources: { requests: { cpu: "2" } } } }).resources).toEqual({ requests: { cpu: "2" } });
  });

  it("says when the access nodes match no node, naming them; unknown nodes are not judged", () => {
    expect(backupCopyPlacement({ access: { selector: { matchLabels: { role: "backup" } } }, nodes }).unmatched).toBe(
      'access node selector {"matchLabels":{"role":"backup"}} match no node',
    );
    expect(backupCopyPlacement({ access: { names: ["n9"] }, nodes }).unmatched).toBe("access nodes n9 match no node");
    expect(backupCopyPlacement({ access: { names: ["n9"] } }).unmatched).toBeUndefined();
  });

  it("reads the annotation's node names, comma or space separated", () => {
    expect(accessNodeNames(" a,b  c,,a ")).toEqual(["a", "b", "c"]);
    expect(accessNodeNames("")).toBeUndefined();
    expect(accessNodeNames(undefined)).toBeUndefined();
  });
});
