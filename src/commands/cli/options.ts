// The yargs options that several commands share.
import { spawnerChoices, type SpawnerChoice } from '../../spawn/select-spawner.js';

export const configDir = {
  type: 'string',
  describe:
    'directory of service files (default: /etc/socketeer/conf.d as root, else $XDG_CONFIG_HOME/socketeer/conf.d)',
} as const;
export const spawner = {
  choices: spawnerChoices,
  default: 'auto' as SpawnerChoice,
  describe: 'how handlers are started',
} as const;
export const control = {
  type: 'string',
  describe:
    'control socket (default: /run/socketeer/control.sock as root, else $XDG_RUNTIME_DIR/socketeer/control.sock)',
} as const;
export const serviceArg = {
  type: 'string',
  demandOption: true,
  describe: 'service name',
} as const;
export const xinetdConf = {
  type: 'string',
  describe: 'also read this xinetd.conf (defaults {}, include, includedir and its service blocks)',
} as const;
export const inetdConf = {
  type: 'string',
  describe: 'also read this inetd.conf',
} as const;
/** --config-dir and the foreign files read beside it. */
export const configSource = {
  'config-dir': configDir,
  'xinetd-conf': xinetdConf,
  'inetd-conf': inetdConf,
} as const;
