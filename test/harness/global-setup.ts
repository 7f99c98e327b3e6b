// Vitest global setup for the integration project: one local world for the whole run (a control plane per file
// would cost minutes on 2 cores); every test file works in its own namespace.
import type { TestProject } from "vitest/node";
import { World, type WorldInfo } from "./world.ts";

declare module "vitest" {
  export interface ProvidedContext {
    world: WorldInfo;
  }
}

let world: World | undefined;

export async function setup(project: TestProject): Promise<void> {
  world = new World({ audit: true });
  const info = await world.start();
  project.provide("world", info);
}

export async function teardown(): Promise<void> {
  const errors = world?.runner?.errors ?? [];
  if (errors.length > 0) console.error(`local node runner reported errors:\n  ${errors.join("\n  ")}`);
  await world?.stop();
}
