// Every controller of the operator, registered on a manager.
import type { Manager } from "../runtime/manager.ts";
import { registerAuxCopyController } from "./auxcopyjob/index.ts";
import { registerDataAgingController } from "./dataaging/index.ts";
import { registerDataVerificationController } from "./dataverification/index.ts";
import { registerLibraryController } from "./library/index.ts";
import { type ControllerSettings } from "./settings.ts";
import { registerPolicyCopyController } from "./policycopy/index.ts";
import { registerStoragePolicyController } from "./storagepolicy/index.ts";
import { registerSnapVaultController } from "./snapvault/index.ts";
import { ProbeRequests } from "./agent/probes.ts";

export type { ControllerSettings } from "./settings.ts";

export function registerControllers(mgr: Manager, settings: ControllerSettings): void {
  // MediaAgents that cannot reach a library ask for its probe now.
  const probes = new ProbeRequests();
  registerLibraryController(mgr, settings, probes);
  registerStoragePolicyController(mgr, settings);
  registerPolicyCopyController(mgr, settings);
  registerSnapVaultController(mgr, settings, probes);
  registerAuxCopyController(mgr, settings, probes);
  registerDataAgingController(mgr, settings, probes);
  registerDataVerificationController(mgr, settings, probes);
}
