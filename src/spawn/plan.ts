import type { ServiceSpec } from '../config/types.js';
import type { SpawnPlan } from '../model/spawn.js';

/** How to start the service's handler with this environment (pure). */
export function buildSpawnPlan(service: ServiceSpec, env: readonly string[]): SpawnPlan {
  const { exec, process: setup } = service;
  if (exec === null) throw new Error(`bug: ${service.name} is a proxy service: nothing to spawn`);
  // Field by field: a spread in the middle of a literal is a slow runtime copy (per connection).
  return {
    file: exec.file,
    argv: exec.argv,
    env,
    cwd: service.cwd,
    uid: service.switchTo?.uid ?? null,
    gid: service.switchTo?.gid ?? null,
    groups: setup.groups,
    rlimits: setup.rlimits,
    umask: setup.umask,
    nice: setup.nice,
    chroot: setup.chroot,
    noNewPrivileges: setup.noNewPrivileges,
    stderr: service.stderr,
    passFds: [],
    setListenPid: false,
  };
}
