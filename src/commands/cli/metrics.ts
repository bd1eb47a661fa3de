import { defineCommand } from './define.js';
import { control } from './options.js';

/** `socketeer metrics`. */
export const metricsCommand = defineCommand({
  command: 'metrics',
  describe: "print every service's counters in the Prometheus text format",
  builder: (y) => y.options({ control }),
  run: async (args, io) => {
    const { runMetrics } = await import('../metrics.js');
    return runMetrics({ control: args.control }, io.out);
  },
});
