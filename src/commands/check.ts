import { formatProblem, type ConfigProblem } from '../model/problem.js';
import { ExitCode } from '../model/errors.js';
import type { ServiceSpec } from '../config/types.js';
import { describePassedFds, listenFdsStart, type PassedFds } from '../spawn/activation-env.js';
import { selectSpawner, type SpawnerChoice } from '../spawn/select-spawner.js';
import { configDirFrom, loadWithNotesOrFail } from './load-or-fail.js';

export interface CheckArgs {
  readonly configDir?: string | undefined;
  readonly xinetdConf?: string | undefined;
  readonly inetdConf?: string | undefined;
  readonly spawner: SpawnerChoice;
}

/**
 * Validates the configuration and prints it as JSON: each service's effective definition
 * (templates, instances and drop-ins merged, specifiers expanded, defaults filled in), with
 * `runAs` (the user and group its handlers run as, `from` the file or the default), for an `accept: false` service `passes` (the fds its process gets, LISTEN_FDS/LISTEN_FDNAMES/NOTIFY_SOCKET, and `fdStore` with `fdStoreMax`), `files` (every file that contributed, in the order applied) and `sources` (JSON pointer → the
 * file that supplied the value there). Notes go to `err` as `FILE: /POINTER: note: MESSAGE`.
 * Exit 0, or 100 with every problem (through FatalError).
 */
export function runCheck(
  args: CheckArgs,
  out: (text: string) => void,
  err: (text: string) => void = (text) => void process.stderr.write(text),
): number {
  const dir = configDirFrom(args.configDir);
  const selected = selectSpawner(args.spawner);
  const foreign = { xinetdConf: args.xinetdConf, inetdConf: args.inetdConf };
  const result = loadWithNotesOrFail({ dir, foreign }, selected.spawner);
  for (const note of result.notes) err(`${formatNote(note)}\n`);
  const skipped = result.skipped.map(formatProblem);
  for (const line of skipped) err(`${line}\n`);
  const services = Object.fromEntries(
    result.config.services.map((s) => [
      s.name,
      {
        file: s.file,
        ...(s.exec === null ? {} : { program: s.exec.file }),
        runAs: s.runAs,
        ...s.effective,
        ...(s.activation === null ? {} : { passes: describePasses(s) }),
        files: s.files,
        sources: s.sources,
      },
    ]),
  );
  const shown = {
    dir,
    spawner: selected.spawner.name,
    services,
    ...(skipped.length > 0 ? { skipped } : {}),
  };
  out(`${JSON.stringify(shown, null, 2)}\n`);
  return ExitCode.ok;
}

/**
 * What an `accept: false` service's process gets: its fds and env, and with `fdStoreMax` the fd
 * store (up to `max` fds from `firstFd`, after the listening sockets).
 */
function describePasses(
  s: ServiceSpec,
): PassedFds & { fdStore?: { max: number; firstFd: number } } {
  const passes = describePassedFds(s);
  const max = s.activation?.fdStoreMax ?? 0;
  if (max === 0) return passes;
  return { ...passes, fdStore: { max, firstFd: listenFdsStart + s.listen.length } };
}

/** A note, in the grammar of problems: `FILE: /POINTER: note: MESSAGE`. */
export function formatNote(note: ConfigProblem): string {
  return formatProblem({ ...note, message: `note: ${note.message}` });
}
