import { ExitCode } from '../model/errors.js';
import { askDaemon, type ControlArgs, type Out } from './ask-daemon.js';

/** The daemon waits up to 30 s for the new process to be prepared, and 30 s more to be ready. */
const upgradeTimeoutMs = 90000;

/**
 * `upgrade`: the daemon starts a new socketeer process (the code on disk now, same arguments),
 * hands it every listening socket and its running handlers' accounting, and exits once the new
 * one serves. Exit 0; 111 when the hand-over failed (the old process goes on serving).
 */
export async function runUpgrade(args: ControlArgs, out: Out): Promise<number> {
  const r = await askDaemon(args, { cmd: 'upgrade' }, upgradeTimeoutMs);
  const n = r.handlers;
  out(`handed over to pid ${r.pid}; ${n} running handler${n === 1 ? '' : 's'} left running\n`);
  return ExitCode.ok;
}
