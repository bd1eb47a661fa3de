import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fixtures, withDeadline } from './daemon.js';

/**
 * A real Unix datagram socket bound at `path` (by python3: Node cannot bind one), standing in
 * for /dev/log or NOTIFY_SOCKET; every datagram it receives is kept, in order.
 */
export class DatagramSink {
  readonly messages: string[] = [];
  private waiters: { test: (m: string) => boolean; resolve: (m: string) => void }[] = [];

  private constructor(private readonly child: ChildProcess) {}

  static async bind(path: string): Promise<DatagramSink> {
    const child = spawn('python3', [join(fixtures, 'dgram-sink.py'), path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const sink = new DatagramSink(child);
    let pending = '';
    child.stdout?.setEncoding('utf8');
    await withDeadline(
      new Promise<void>((resolve, reject) => {
        child.once('exit', (code) => reject(new Error(`dgram-sink exited ${code}`)));
        child.stdout?.on('data', (chunk: string) => {
          pending += chunk;
          let nl: number;
          while ((nl = pending.indexOf('\n')) !== -1) {
            const line = pending.slice(0, nl);
            pending = pending.slice(nl + 1);
            if (line === 'bound') resolve();
            else sink.take(JSON.parse(line) as string);
          }
        });
      }),
      30000,
      'the datagram socket to be bound',
    );
    return sink;
  }

  /** Resolves with the first datagram (past or future) that passes `test`. */
  waitFor(test: (message: string) => boolean, ms = 30000): Promise<string> {
    const seen = this.messages.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return withDeadline(
      new Promise((resolve) => this.waiters.push({ test, resolve })),
      ms,
      'a datagram',
    );
  }

  close(): void {
    this.child.kill();
  }

  private take(message: string): void {
    this.messages.push(message);
    this.waiters = this.waiters.filter((w) => {
      if (!w.test(message)) return true;
      w.resolve(message);
      return false;
    });
  }
}
