import { defineCommand } from './define.js';

/** `socketeer escape`: systemd-escape for unit and service names. */
export const escapeCommand = defineCommand({
  command: 'escape [strings..]',
  describe:
    'escape strings for unit names as systemd-escape does (or unescape them); after --, strings may start with -',
  builder: (y) =>
    y.positional('strings', { type: 'string', array: true, default: [] }).options({
      path: { type: 'boolean', default: false, describe: 'treat each string as a path' },
      unescape: { type: 'boolean', default: false, describe: 'undo the escaping' },
      template: {
        type: 'string',
        describe: 'insert into a template name, e.g. user-echo@.json',
      },
      mangle: { type: 'boolean', default: false, describe: 'turn a string into a valid name' },
    }),
  run: async (args, { argv, out, err }) => {
    const { runEscape } = await import('../escape.js');
    const { path, unescape, template, mangle } = args;
    // what follows `--` is strings as written (yargs would turn `1e3` into 1000)
    const after = argv.includes('--') ? argv.slice(argv.indexOf('--') + 1) : [];
    const strings = [...args.strings, ...after];
    const line = (write: (text: string) => void) => (text: string) => write(`${text}\n`);
    return runEscape({ strings, path, unescape, template, mangle }, line(out), line(err));
  },
});
