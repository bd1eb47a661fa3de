import { defineCommand } from './define.js';
import { configSource, spawner } from './options.js';

/** `socketeer check`: the configuration as the daemon would load it, or one decision explained. */
export const checkCommand = defineCommand({
  command: 'check',
  describe:
    'validate the configuration and print it with defaults; with --peer or --uid/--gid, explain how the daemon would decide such a connection',
  builder: (y) =>
    y.options({
      ...configSource,
      spawner,
      service: { type: 'string', describe: 'the service a --peer/--uid/--gid check is for' },
      peer: {
        type: 'string',
        describe: 'a TCP peer, ADDR[:PORT], to explain the decision for',
      },
      uid: { type: 'number', describe: 'a Unix peer uid to explain the decision for' },
      gid: { type: 'number', describe: 'a Unix peer gid to explain the decision for' },
    }),
  run: async (args, io) => {
    const { service, peer, uid, gid, configDir, xinetdConf, inetdConf } = args;
    const source = { configDir, xinetdConf, inetdConf };
    if ([service, peer, uid, gid].some((value) => value !== undefined)) {
      const { runCheckPeer } = await import('../check-peer.js');
      return runCheckPeer({ ...source, service, peer, uid, gid }, io.out);
    }
    const { runCheck } = await import('../check.js');
    return runCheck({ ...source, spawner: args.spawner }, io.out);
  },
});
