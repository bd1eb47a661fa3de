import type { SpawnPlan } from '../../src/model/spawn.js';

/** A plan that sets nothing up: /bin/cat with PATH only, stderr to /dev/null, no passFds. */
export const basePlan: SpawnPlan = {
  file: '/bin/cat',
  argv: ['cat'],
  env: ['PATH=/usr/bin:/bin'],
  cwd: null,
  uid: null,
  gid: null,
  groups: null,
  umask: null,
  nice: null,
  rlimits: [],
  chroot: null,
  noNewPrivileges: false,
  stderr: 'null',
  passFds: [],
  setListenPid: false,
};
