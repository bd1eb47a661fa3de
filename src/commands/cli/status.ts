import { defineCommand } from './define.js';
import { control } from './options.js';

/** `socketeer status [SERVICE] [--json]`. */
export const statusCommand = defineCommand({
  command: 'status [service]',
  describe: 'show every service (or one): state, listeners, counters and live connections',
  builder: (y) =>
    y.positional('service', { type: 'string', describe: 'one service only' }).options({
      control,
      json: { type: 'boolean', default: false, describe: 'print the state as JSON' },
    }),
  run: async (args, io) => {
    const { runStatus } = await import('../status.js');
    return runStatus({ service: args.service, json: args.json, control: args.control }, io.out);
  },
});
