// Every controller of the operator, registered on a manager.
import type { Manager } from "../runtime/manager.ts";
import { registerAuxCopyController } from "./auxcopyjob.ts";
import { registerDataAgingController } from "./dataaging.ts";
import { type ControllerSettings, registerLibraryController } from "./library.ts";
import { registerPolicyControllers } from "./policy.ts";
import { registerSnapVaultController } from "./snapvault.ts";
import { ProbeRequests } from "./probes.ts";

export type { ControllerSettings } from "./library.ts";

export function registerControllers(mgr: Manager, settings: ControllerSettings): void {
  // MediaAgents that cannot reach a library ask for its probe now.
  const probes = new ProbeRequests();
  registerLibraryController(mgr, settings, probes);
  registerPolicyControllers(mgr, settings);
  registerSnapVaultController(mgr);
  registerAuxCopyController(mgr, settings, probes);
  registerDataAgingController(mgr, settings, probes);
}
