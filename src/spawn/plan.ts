import type { ServiceSpec } from '../config/types.js';
import type { SpawnPlan } from '../model/spawn.js';

/** How to start the service's handler with this environment (pure). */
export function buildSpawnPlan(service: ServiceSpec, env: readonly string[]): SpawnPlan {
  const { exec } = service;
  if (exec === null) throw new Error(`bug: ${service.name} is a proxy service: nothing to spawn`);
  return {
    file: exec.file,
    argv: exec.argv,
    env,
    cwd: service.cwd,
    uid: service.switchTo?.uid ?? null,
    gid: service.switchTo?.gid ?? null,
    ...service.process,
    stderr: service.stderr,
    passFds: [],
    setListenPid: false,
  };
}
