import { daemonFacility, isJournalStream, journalPrefix, severity } from './journal.js';
import type { LogOutput } from './logger.js';
import { startSyslog, type SyslogFormat } from './syslog.js';

export const logTargets = ['stderr', 'syslog'] as const;
export type LogTarget = (typeof logTargets)[number];

export interface LogTargetOptions {
  readonly target: LogTarget;
  /** `--syslog-socket` (/dev/log by default) and `--syslog-format`. */
  readonly syslog: { readonly socket: string; readonly format: SyslogFormat };
  /** JOURNAL_STREAM, as systemd sets it. */
  readonly journalStream: string | undefined;
}

export interface OpenLogOutput {
  readonly output: LogOutput;
  /** Sends what is still queued (syslog) and ends the sender. */
  close(): Promise<void>;
}

/**
 * serve's records: to syslog (`--log-target syslog`: datagrams with `<PRI>`, facility daemon),
 * or to stderr, with journald's `<N>` priority prefix when stderr is the journal stream.
 */
export async function openLogOutput(options: LogTargetOptions): Promise<OpenLogOutput> {
  if (options.target === 'syslog') {
    const sender = await startSyslog({ ...options.syslog, pid: process.pid });
    return {
      output: {
        prefix: (level) => `<${daemonFacility + severity[level]}>`,
        write: (line) => sender.write(line),
      },
      close: () => sender.close(),
    };
  }
  const isJournal = isJournalStream(options.journalStream);
  return {
    output: { prefix: isJournal ? journalPrefix : () => '' },
    close: () => Promise.resolve(),
  };
}
