import { defineCommand } from './define.js';
import { configSource } from './options.js';

/** `socketeer convert`: foreign files (xinetd, inetd.conf, systemd units) as service files. */
export const convertCommand = defineCommand({
  command: 'convert [files..]',
  describe:
    'print the service files (conf.d JSON) that the given xinetd, inetd.conf or systemd .socket files make; with no file, those of the config dir',
  builder: (y) =>
    y.positional('files', { type: 'string', array: true, default: [] }).options({
      ...configSource,
    }),
  run: async (args, { out, err }) => {
    const { runConvert } = await import('../convert.js');
    const { files, configDir: dir, xinetdConf: xinetd, inetdConf: inetd } = args;
    return runConvert({ files, configDir: dir, xinetdConf: xinetd, inetdConf: inetd }, out, err);
  },
});
