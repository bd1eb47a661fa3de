import { defineCommand } from './define.js';

/** `socketeer install-units [--user] [--dir DIR]`. */
export const installUnitsCommand = defineCommand({
  command: 'install-units',
  describe: "write socketeer's systemd unit with this installation's paths",
  builder: (y) =>
    y.options({
      user: {
        type: 'boolean',
        default: false,
        describe: 'the unit for your user manager (systemctl --user)',
      },
      dir: {
        type: 'string',
        describe:
          'where to write (default: /etc/systemd/system, or ~/.config/systemd/user with --user)',
      },
    }),
  run: async (args, io) => {
    const { runInstallUnits } = await import('../install-units.js');
    return runInstallUnits({ user: args.user, dir: args.dir }, io.out);
  },
});
