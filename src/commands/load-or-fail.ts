import { homedir } from 'node:os';
import { defaultConfigDir } from '../config/paths.js';
import { loadConfig, systemResolveContext, type ConfigSource } from '../config/load.js';
import { featureCheckFor } from '../spawn/feature-check.js';
import { createSystemAccountLookup } from '../spawn/native-accounts.js';
import type { Spawner } from '../model/spawn.js';
import { type Config } from '../config/types.js';
import { formatProblem, type ConfigProblem } from '../model/problem.js';
import { ExitCode, FatalError } from '../model/errors.js';

/** The config dir a command uses: the flag, else the default for this user. */
export function configDirFrom(flag: string | undefined): string {
  return (
    flag ??
    defaultConfigDir({ isRoot: process.getuid?.() === 0, env: process.env, home: homedir() })
  );
}

/** Loads the configuration or ends the command with exit 100 and every problem listed. */
export function loadOrFail(source: string | ConfigSource, spawner?: Spawner): Config {
  return loadWithNotesOrFail(source, spawner).config;
}

/** As loadOrFail, with the notes (unused templates, orphan drop-ins) that are not errors. */
export function loadWithNotesOrFail(
  source: string | ConfigSource,
  spawner?: Spawner,
): {
  config: Config;
  notes: readonly ConfigProblem[];
  skipped: readonly ConfigProblem[];
} {
  const dir = typeof source === 'string' ? source : source.dir;
  const ctx = systemResolveContext(
    createSystemAccountLookup(),
    spawner === undefined ? undefined : featureCheckFor(spawner),
  );
  const result = loadConfig(source, ctx);
  if (result.ok) return { config: result.config, notes: result.notes, skipped: result.skipped };
  const count = result.problems.length;
  throw new FatalError(
    `${count} problem${count === 1 ? '' : 's'} in ${dir}; nothing was started`,
    ExitCode.permanent,
    result.problems.map(formatProblem),
  );
}
