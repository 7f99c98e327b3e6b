// The Library phase gauge that the chart's AuxoLibraryUnreachable alert reads: one series per phase, 1 for the
// phase status shows and 0 for the others, and no series left behind for a deleted Library.
import { describe, expect, it } from "vitest";
import { Metrics } from "../../src/observability/metrics.ts";

const samples = async (m: Metrics): Promise<string[]> =>
  (await m.registry.metrics()).split("\n").filter((l) => l.startsWith("auxo_library_phase{"));

describe("auxo_library_phase", () => {
  it("is 1 for the library's phase and 0 for the others, following its changes", async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.setLibraryPhase("team-a", "disk", "Ready");
    m.setLibraryPhase("team-b", "s3", "Pending");
    m.setLibraryPhase("team-b", "s3", "Unreachable");
    expect((await samples(m)).sort()).toEqual(
      [
        'auxo_library_phase{namespace="team-a",library="disk",phase="Pending"} 0',
        'auxo_library_phase{namespace="team-a",library="disk",phase="Ready"} 1',
        'auxo_library_phase{namespace="team-a",library="disk",phase="Unreachable"} 0',
        'auxo_library_phase{namespace="team-b",library="s3",phase="Pending"} 0',
        'auxo_library_phase{namespace="team-b",library="s3",phase="Ready"} 0',
        'auxo_library_phase{namespace="team-b",library="s3",phase="Unreachable"} 1',
      ].sort(),
    );
  });

  it("drops a deleted library's series, and only its own", async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.setLibraryPhase("team-a", "disk", "Unreachable");
    m.setLibraryPhase("team-a", "other", "Ready");
    m.setLibraryPhase("team-a", "disk", undefined);
    const left = await samples(m);
    expect(left.filter((l) => l.includes('library="disk"'))).toEqual([]);
    expect(left).toContain('auxo_library_phase{namespace="team-a",library="other",phase="Ready"} 1');
    expect(left).toHaveLength(3);
  });
});
