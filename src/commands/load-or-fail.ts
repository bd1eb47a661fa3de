import { homedir } from 'node:os';
import { defaultConfigDir } from '../config/paths.js';
import { loadConfig } from '../config/load.js';
import { formatProblem, type Config } from '../config/types.js';
import { ExitCode, FatalError } from '../errors.js';

/** The config dir a command uses: the flag, else the default for this user. */
export function configDirFrom(flag: string | undefined): string {
  return (
    flag ??
    defaultConfigDir({ isRoot: process.getuid?.() === 0, env: process.env, home: homedir() })
  );
}

/** Loads the configuration or ends the command with exit 100 and every problem listed. */
export function loadOrFail(dir: string): Config {
  const result = loadConfig(dir);
  if (result.ok) return result.config;
  const count = result.problems.length;
  throw new FatalError(
    `${count} problem${count === 1 ? '' : 's'} in ${dir}; nothing was started`,
    ExitCode.permanent,
    result.problems.map(formatProblem),
  );
}
