import { ExitCode, FatalError } from '../model/errors.js';
import { askDaemon, type ControlArgs, type Out } from './ask-daemon.js';

/** Reading the files, binding, and ending the handlers of removed services (kill grace). */
const reloadTimeoutMs = 300000;

/**
 * `reload`: the daemon reads and validates everything. Exit 0 when applied; 100 with every
 * problem when the configuration is invalid (nothing changed); 111 when an address could not
 * be bound (before the switch: nothing changed; after it: the service runs without it).
 */
export async function runReload(args: ControlArgs, out: Out): Promise<number> {
  const outcome = await askDaemon(args, { cmd: 'reload' }, reloadTimeoutMs);
  if (!outcome.applied) {
    const n = outcome.problems.length;
    const what =
      outcome.reason === 'config' ? `${n} problem${n === 1 ? '' : 's'}` : 'a bind failed';
    throw new FatalError(
      `reload refused: ${what}; the running configuration is unchanged`,
      outcome.reason === 'config' ? ExitCode.permanent : ExitCode.temporary,
      outcome.problems,
    );
  }
  const list = (names: readonly string[], word: string): string =>
    `${names.length} ${word}${names.length === 0 ? '' : ` (${names.join(', ')})`}`;
  out(
    `reloaded: ${outcome.unchanged.length} unchanged, ${list(outcome.changed, 'changed')}, ` +
      `${list(outcome.added, 'added')}, ${list(outcome.removed, 'removed')}\n`,
  );
  if (outcome.bindFailures.length === 0) return ExitCode.ok;
  throw new FatalError(
    `reload applied, but ${outcome.bindFailures.length} address(es) could not be bound`,
    ExitCode.temporary,
    outcome.bindFailures,
  );
}
