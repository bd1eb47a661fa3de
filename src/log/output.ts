import { daemonFacility, isJournalStream, journalPrefix, severity } from './journal.js';
import type { LogOutput } from './logger.js';
import { startSyslog, type SyslogFormat } from './syslog.js';
import { encodeJournalRecord } from './journal-native.js';
import { ExitCode, FatalError, describeSystemError } from '../model/errors.js';
import { statSync } from 'node:fs';

export const logTargets = ['stderr', 'syslog', 'journal'] as const;
export type LogTarget = (typeof logTargets)[number];

export interface LogTargetOptions {
  readonly target: LogTarget;
  /** `--syslog-socket` (/dev/log by default) and `--syslog-format`. */
  readonly syslog: { readonly socket: string; readonly format: SyslogFormat };
  /** JOURNAL_STREAM, as systemd sets it. */
  readonly journalStream: string | undefined;
  /** `--journal-socket` (journald's native socket by default) and the addon's datagram send. */
  readonly journal?: {
    readonly socket: string;
    readonly send: ((path: string, data: Buffer) => number) | null;
  };
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
  if (options.target === 'journal' && options.journal !== undefined)
    return openJournal(options.journal);
  const isJournal = isJournalStream(options.journalStream);
  return {
    output: { prefix: isJournal ? journalPrefix : () => '' },
    close: () => Promise.resolve(),
  };
}

/**
 * `--log-target journal`: each record one native-protocol datagram with its fields as journal
 * fields. The socket must be there at start (exit 111 if not); a datagram the journal cannot take
 * (EAGAIN: it is behind) is dropped and counted, and the count said on stderr at exit.
 */
function openJournal(journal: NonNullable<LogTargetOptions['journal']>): OpenLogOutput {
  const { socket, send } = journal;
  if (send === null)
    throw new FatalError('--log-target journal needs the native addon', ExitCode.permanent);
  try {
    if (!statSync(socket).isSocket()) throw new Error('not a socket');
  } catch (error) {
    const why =
      error instanceof Error && 'code' in error ? describeSystemError(error) : 'not a socket';
    throw new FatalError(`unable to log to the journal at ${socket}: ${why}`, ExitCode.temporary);
  }
  let dropped = 0;
  const write = (line: string): void => {
    const datagram = encodeJournalRecord(line.trimEnd());
    if (datagram === null) return;
    try {
      send(socket, datagram);
    } catch {
      dropped += 1;
    }
  };
  const close = (): Promise<void> => {
    if (dropped > 0)
      process.stderr.write(`socketeer: ${dropped} records could not be sent to the journal\n`);
    return Promise.resolve();
  };
  return { output: { prefix: () => '', write, needsJson: true }, close };
}
