import { execFile } from 'node:child_process';
import type { EventLog } from '../log/events.js';

/**
 * Tells systemd something (`READY=1`, `MAINPID=N`) when it asked (`NOTIFY_SOCKET` is set). Node
 * cannot send a datagram on a Unix socket, so this runs `systemd-notify VAR=VALUE...`; systemd
 * takes it from that helper only with `NotifyAccess=all` in the unit. A failure is logged.
 */
export function notifySystemd(assignments: readonly string[], log: EventLog): Promise<void> {
  if (process.env.NOTIFY_SOCKET === undefined || process.env.NOTIFY_SOCKET === '') {
    return Promise.resolve();
  }
  const notification = assignments.join(' ');
  return new Promise((resolve) => {
    execFile('systemd-notify', [...assignments], { timeout: 5000 }, (error, _out, stderr) => {
      if (error !== null) {
        const code = (error as NodeJS.ErrnoException).code;
        const why = code === 'ENOENT' ? 'systemd-notify not found on PATH' : stderr.trim();
        log.log('warn', 'notify-failed', { notification, error: why || error.message });
      }
      resolve();
    });
  });
}
