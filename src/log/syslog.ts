import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { ExitCode, FatalError, describeSystemError } from '../model/errors.js';

export const syslogFormats = ['rfc3164', 'rfc5424'] as const;
export type SyslogFormat = (typeof syslogFormats)[number];

export interface SyslogOptions {
  /** The syslog daemon's datagram socket, /dev/log by default. */
  readonly socket: string;
  readonly format: SyslogFormat;
  /** The PID in each message's header. */
  readonly pid: number;
}

/** Where records go: one line each, `<PRI>` first; `close` ends the sender once it has sent. */
export interface SyslogSender {
  write(line: string): void;
  close(): Promise<void>;
}

/** Bytes of records waiting for the sender before more are dropped (and counted). */
const maxPendingBytes = 1 << 20;
/** The longest message, in bytes: a record longer than this is cut by logger(1). */
const maxMessageBytes = 16384;

/**
 * Node cannot send on a Unix datagram socket, so util-linux logger(1) does: one long-lived
 * `logger --prio-prefix` reading a line per record on its stdin and sending each as one
 * datagram, in RFC 3164 or RFC 5424 form, tagged `socketeer` with the daemon's pid. A socket
 * that is missing (or not a socket) is fatal at start (111). If logger ends, the records go to
 * stderr from then on, after one line saying why; records that would pile up beyond 1 MiB
 * while the syslog daemon is slow are dropped and counted.
 */
export async function startSyslog(options: SyslogOptions): Promise<SyslogSender> {
  checkSocket(options.socket);
  const child = spawn(
    'logger',
    [
      '--socket',
      options.socket,
      '--socket-errors=on',
      '--prio-prefix',
      `--${options.format === 'rfc5424' ? 'rfc5424=notq' : 'rfc3164'}`,
      '--tag',
      'socketeer',
      `--id=${options.pid}`,
      '--size',
      String(maxMessageBytes),
    ],
    { stdio: ['pipe', 'ignore', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error) => {
      const why = describeSystemError(error);
      reject(
        new FatalError(`--log-target syslog: cannot run logger(1): ${why}`, ExitCode.temporary),
      );
    });
  });
  return new LoggerSender(child);
}

function checkSocket(path: string): void {
  let isSocket: boolean;
  try {
    isSocket = statSync(path).isSocket();
  } catch (error) {
    const why = describeSystemError(error);
    throw new FatalError(`--syslog-socket ${path}: ${why}`, ExitCode.temporary);
  }
  if (!isSocket) throw new FatalError(`--syslog-socket ${path}: not a socket`, ExitCode.temporary);
}

class LoggerSender implements SyslogSender {
  private dropped = 0;
  /** Why logger(1) can take no more records; null while it can. */
  private ended: string | null = null;
  private hasAnnounced = false;
  private readonly exited: Promise<void>;

  constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', (code, signal) => {
      this.ended ??= `logger(1) exited (${signal ?? `code ${code}`})`;
    });
    child.stdin?.on('error', (error) => {
      this.ended ??= `logger(1): ${describeSystemError(error)}`;
    });
    child.stdin?.on('drain', () => this.reportDropped());
  }

  write(line: string): void {
    const stdin = this.child.stdin;
    if (this.ended !== null || stdin === null || !stdin.writable) return this.toStderr(line);
    if (stdin.writableLength > maxPendingBytes) {
      this.dropped += 1;
      return;
    }
    stdin.write(line);
  }

  async close(): Promise<void> {
    this.reportDropped();
    this.child.stdin?.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  private reportDropped(): void {
    if (this.dropped === 0) return;
    const count = this.dropped;
    this.dropped = 0;
    this.child.stdin?.write(
      `<${3 * 8 + 4}>socketeer: ${count} log records dropped: syslog too slow\n`,
    );
  }

  /** After logger(1) ended: stderr, with one line first saying so. */
  private toStderr(line: string): void {
    if (!this.hasAnnounced) {
      const why = this.ended ?? 'logger(1) closed its input';
      process.stderr.write(`socketeer: syslog: ${why}; log records go to stderr\n`);
      this.hasAnnounced = true;
    }
    process.stderr.write(line.replace(/^<\d+>/, ''));
  }
}
