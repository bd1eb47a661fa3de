// The commands that ask the running daemon to act on a service, or on itself.
import type { ControlArgs, Out } from '../ask-daemon.js';
import type { ServiceCommand } from '../control-verbs.js';
import { defineCommand, type CommandDefinition } from './define.js';
import { control, serviceArg } from './options.js';

const serviceVerbs: readonly (readonly [ServiceCommand, string])[] = [
  ['stop', "close a service's listeners and end its handlers; it stays stopped until start"],
  ['start', 'bind a stopped service again and serve'],
  ['quiesce', "end a service's running handlers and keep listening"],
];

/** `stop SERVICE`, `start SERVICE`, `quiesce SERVICE`, in this order. */
export const serviceCommands: readonly CommandDefinition[] = serviceVerbs.map(
  ([cmd, describe]): CommandDefinition =>
    defineCommand({
      command: `${cmd} <service>`,
      describe,
      builder: (y) => y.positional('service', serviceArg).options({ control }),
      run: async (args, io) => {
        const { runServiceCommand } = await import('../control-verbs.js');
        return runServiceCommand(cmd, { service: args.service, control: args.control }, io.out);
      },
    }),
);

/** `drain SERVICE [--timeout S]`. */
export const drainCommand = defineCommand({
  command: 'drain <service>',
  describe: 'stop accepting, let running handlers finish (end the rest at --timeout), then stopped',
  builder: (y) =>
    y.positional('service', serviceArg).options({
      control,
      timeout: { type: 'number', describe: 'seconds to wait before ending what is left' },
    }),
  run: async (args, io) => {
    const { runDrain } = await import('../control-verbs.js');
    const { service, timeout } = args;
    return runDrain({ service, timeout, control: args.control }, io.out);
  },
});

/** `kill SERVICE[@INSTANCE] [--signal SIG]`. */
export const killCommand = defineCommand({
  command: 'kill <target>',
  describe: 'signal one handler (SERVICE@INSTANCE) or every handler of a service (SERVICE)',
  builder: (y) =>
    y
      .positional('target', {
        type: 'string',
        demandOption: true,
        describe: 'SERVICE or SERVICE@INSTANCE',
      })
      .options({
        control,
        signal: { type: 'string', default: 'SIGTERM', describe: 'signal name or number' },
      }),
  run: async (args, io) => {
    const { runKill } = await import('../control-verbs.js');
    return runKill({ target: args.target, signal: args.signal, control: args.control }, io.out);
  },
});

type DaemonRun = (args: ControlArgs, out: Out) => Promise<number>;

/** A command on the whole daemon: `--control` is its one option. */
function defineDaemonCommand(
  command: string,
  describe: string,
  load: () => Promise<DaemonRun>,
): CommandDefinition {
  return defineCommand({
    command,
    describe,
    builder: (y) => y.options({ control }),
    run: async (args, io) => (await load())({ control: args.control }, io.out),
  });
}

/** `reload`. */
export const reloadCommand = defineDaemonCommand(
  'reload',
  're-read and validate the configuration, then apply the difference',
  async () => (await import('../reload.js')).runReload,
);

/** `upgrade`. */
export const upgradeCommand = defineDaemonCommand(
  'upgrade',
  'hand every listener over to a new socketeer process, then exit',
  async () => (await import('../upgrade.js')).runUpgrade,
);
