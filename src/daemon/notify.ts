// What socketeer tells systemd (NOTIFY_SOCKET) besides MAINPID at a hand-over: READY=1 once it
// serves and after each reload, RELOADING=1 while a reload runs, STOPPING=1 at shutdown, and
// each time a STATUS= line with the counts that `systemctl status` then shows.
import { notifySystemd } from '../handover/sd-notify.js';
import { reloadDaemon, type ReloadOutcome } from './apply-reload.js';
import type { Daemon } from './daemon.js';
import type { DaemonStatus } from './state.js';

/** `STATUS=3 services, 4 listeners; 2 running, 120 accepted, 3 refused` (pure). */
export function statusText(status: DaemonStatus): string {
  let listeners = 0;
  let running = 0;
  let accepted = 0;
  let refused = 0;
  for (const s of status.services) {
    listeners += s.listeners.length;
    running += s.counters.active;
    accepted += s.counters.accepted;
    refused += Object.values(s.counters.refused).reduce((sum, n) => sum + n, 0);
  }
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  const serving = `${plural(status.services.length, 'service')}, ${plural(listeners, 'listener')}`;
  return `${serving}; ${running} running, ${accepted} accepted, ${refused} refused`;
}

/** `READY=1`, `MAINPID=` and the status, once every listener is bound. */
export function notifyReady(daemon: Daemon): Promise<void> {
  const status = `STATUS=${statusText(daemon.status())}`;
  return notifySystemd(['READY=1', `MAINPID=${process.pid}`, status], daemon.log);
}

/** `STOPPING=1` with the handlers still running, as shutdown starts. */
export function notifyStopping(daemon: Daemon): Promise<void> {
  const status = `STATUS=stopping; ${statusText(daemon.status())}`;
  return notifySystemd(['STOPPING=1', status], daemon.log);
}

/**
 * A reload (SIGHUP or `reload`) between `RELOADING=1` (with MONOTONIC_USEC, as
 * Type=notify-reload wants it) and `READY=1` with the new status, or the failure in STATUS.
 */
export async function reloadNotifying(daemon: Daemon): Promise<ReloadOutcome> {
  const now = `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`;
  await notifySystemd(['RELOADING=1', now, 'STATUS=reloading'], daemon.log);
  try {
    const outcome = await reloadDaemon(daemon);
    const failed = outcome.applied ? '' : `reload failed (${outcome.reason}); `;
    const status = `STATUS=${failed}${statusText(daemon.status())}`;
    await notifySystemd(['READY=1', status], daemon.log);
    return outcome;
  } catch (error) {
    await notifySystemd(['READY=1', 'STATUS=reload failed'], daemon.log);
    throw error;
  }
}
