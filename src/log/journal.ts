import { fstatSync } from 'node:fs';
import type { LogLevel } from './events.js';

/** sd-daemon(3) and syslog(3) severities of the log levels. */
export const severity: Readonly<Record<LogLevel, number>> = {
  error: 3,
  warn: 4,
  info: 6,
  debug: 7,
};

/** syslog's `daemon` facility (3), shifted as a PRI value wants it. */
export const daemonFacility = 3 * 8;

/**
 * Whether `fd` (stderr) is the stream systemd connected to the journal: JOURNAL_STREAM holds
 * its `device:inode` in decimal (systemd.exec(5)); a service that redirected stderr elsewhere
 * keeps the variable but no longer matches it.
 */
export function isJournalStream(value: string | undefined, fd = 2): boolean {
  const m = /^(\d+):(\d+)$/.exec(value ?? '');
  if (m === null) return false;
  try {
    const stat = fstatSync(fd, { bigint: true });
    return stat.dev === BigInt(m[1] ?? '') && stat.ino === BigInt(m[2] ?? '');
  } catch {
    return false;
  }
}

/** `<N>`, the sd-daemon(3) prefix that journald reads as the record's priority. */
export function journalPrefix(level: LogLevel): string {
  return `<${severity[level]}>`;
}
