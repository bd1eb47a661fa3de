import type { ProcessFeatureCheck } from '../config/process-setup.js';
import type { Spawner } from '../model/spawn.js';

/**
 * The config check for a spawner: every process-setup feature it cannot honour becomes a
 * config error naming the field, never a silently ignored setting.
 */
export function featureCheckFor(
  spawner: Pick<Spawner, 'name' | 'unsupported'>,
): ProcessFeatureCheck {
  return (setup) =>
    spawner
      .unsupported({
        file: '',
        argv: [],
        env: [],
        cwd: null,
        uid: null,
        gid: null,
        stderr: 'null',
        passFds: [],
        setListenPid: false,
        ...setup,
      })
      .map((feature) => ({
        feature,
        message:
          feature === 'chroot'
            ? `the ${spawner.name} spawner cannot set chroot (use the native spawner)`
            : `the ${spawner.name} spawner cannot set ${feature}: ${toolFor[feature]} was not found (install util-linux, or use the native spawner)`,
      }));
}

const toolFor: Record<string, string> = {
  groups: 'setpriv',
  noNewPrivileges: 'setpriv',
  rlimits: 'prlimit',
  nice: 'nice',
  umask: '/bin/sh',
};
