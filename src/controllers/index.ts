// Every controller of the operator, registered on a manager.
import type { Manager } from "../runtime/manager.ts";
import { registerLibraryController } from "./library.ts";
import { registerPolicyControllers } from "./policy.ts";
import { registerSnapVaultController } from "./snapvault.ts";

export function registerControllers(mgr: Manager): void {
  registerLibraryController(mgr);
  registerPolicyControllers(mgr);
  registerSnapVaultController(mgr);
}
