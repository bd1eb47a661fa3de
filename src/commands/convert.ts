import { toServiceFileValue, type CompatResult } from '../compat/model.js';
import { assembleConfig, systemResolveContext } from '../config/load.js';
import { readForeignConfig, readForeignFiles } from '../config/read-compat.js';
import { ExitCode, FatalError } from '../model/errors.js';
import { formatProblem } from '../model/problem.js';
import { createSystemAccountLookup } from '../spawn/native-accounts.js';
import { formatNote } from './check.js';
import { configDirFrom } from './load-or-fail.js';

export interface ConvertArgs {
  readonly files: readonly string[];
  readonly configDir?: string | undefined;
  readonly xinetdConf?: string | undefined;
  readonly inetdConf?: string | undefined;
}

/**
 * Prints, as one JSON object `{"NAME.json": {...}}`, the service files the loader builds from
 * the given foreign files (or from the config dir's and the --xinetd-conf/--inetd-conf ones):
 * each checked as `check` would (validation and resolution), so that written into a conf.d they
 * define the same services. Notes and skipped services go to `err`; problems are exit 100.
 */
export function runConvert(
  args: ConvertArgs,
  out: (text: string) => void,
  err: (text: string) => void,
): number {
  const dir = configDirFrom(args.configDir);
  const foreign: CompatResult =
    args.files.length > 0
      ? readForeignFiles(args.files)
      : readForeignConfig(dir, { xinetdConf: args.xinetdConf, inetdConf: args.inetdConf });
  const ctx = systemResolveContext(createSystemAccountLookup());
  const loaded = assembleConfig(dir, { files: [], compat: foreign }, ctx);
  if (!loaded.ok) {
    const count = loaded.problems.length;
    throw new FatalError(
      `${count} problem${count === 1 ? '' : 's'}; nothing was converted`,
      ExitCode.permanent,
      loaded.problems.map(formatProblem),
    );
  }
  for (const note of loaded.notes) err(`${formatNote(note)}\n`);
  for (const skipped of loaded.skipped) err(`${formatProblem(skipped)}\n`);
  const files = Object.fromEntries(
    foreign.services.map((service) => [`${service.name}.json`, toServiceFileValue(service.json)]),
  );
  out(`${JSON.stringify(files, null, 2)}\n`);
  return ExitCode.ok;
}
