import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const cli = join(root, 'dist/src/main.js');
export const fixtures = join(root, 'test/fixtures');
export const isRoot = process.getuid?.() === 0;

export type LogRecord = Record<string, unknown> & { event: string; level: string };

/** A temp dir with a conf.d inside, removed by `cleanup`. */
export function makeConfDir(services: Record<string, unknown>): {
  dir: string;
  confDir: string;
  cleanup: () => void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'socketeer-test-'));
  const confDir = join(dir, 'conf.d');
  writeServices(confDir, services);
  return { dir, confDir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeServices(confDir: string, services: Record<string, unknown>): void {
  mkdirSync(confDir, { recursive: true });
  for (const [name, body] of Object.entries(services)) {
    writeFileSync(
      join(confDir, name),
      typeof body === 'string' ? body : JSON.stringify(body, null, 2),
    );
  }
}

/** The running daemon under test: the built CLI, its ready line parsed, its log collected. */
export class DaemonUnderTest {
  readonly child: ChildProcess;
  readonly records: LogRecord[] = [];
  readonly addresses = new Map<string, string[]>();
  stdout = '';
  stderrText = '';
  private waiters: { test: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Every handler its records named, to check that none outlives the daemon. */
  private readonly handlers = new HandlerTracker();

  private constructor(child: ChildProcess) {
    this.child = child;
    this.handlers.startedAfter(child.pid ?? -1);
    let pending = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderrText += chunk;
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        this.onLine(line);
      }
    });
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => (this.stdout += chunk));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  static async start(
    confDir: string,
    extra: string[] = [],
    env: NodeJS.ProcessEnv = cleanEnv(),
    /** Runs the daemon through this command, e.g. `prlimit --nofile=64:64 --` (it must exec). */
    wrapper: string[] = [],
  ): Promise<DaemonUnderTest> {
    // A control socket of its own (the default, /run/socketeer/control.sock as root, is shared)
    const control = extra.includes('--control')
      ? []
      : ['--control', join(dirname(confDir), 'control.sock')];
    const child = spawnClean(
      [
        ...wrapper,
        process.execPath,
        cli,
        'serve',
        '--config-dir',
        confDir,
        '--log-level',
        'debug',
        ...control,
        ...extra,
      ],
      env,
    );
    const daemon = new DaemonUnderTest(child);
    await daemon.waitForReady();
    return daemon;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** The first bound address of a service, e.g. `{ host: '127.0.0.1', port: 40123 }` or a path. */
  tcp(service: string, index = 0): { host: string; port: number } {
    const address = this.addresses.get(service)?.[index];
    const m = /^tcp:(?:\[(.+)\]|([^:]+)):(\d+)$/.exec(address ?? '');
    if (m === null) throw new Error(`no tcp address for ${service}: ${String(address)}`);
    return { host: m[1] ?? m[2] ?? '', port: Number(m[3]) };
  }

  private async waitForReady(): Promise<void> {
    await withDeadline(
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          const line = this.stdout.split('\n').find((l) => l.startsWith('ready:'));
          if (line !== undefined) {
            for (const pair of line.slice('ready:'.length).trim().split(' ').filter(Boolean)) {
              const eq = pair.indexOf('=');
              const list = this.addresses.get(pair.slice(0, eq)) ?? [];
              list.push(pair.slice(eq + 1));
              this.addresses.set(pair.slice(0, eq), list);
            }
            resolve();
          }
        };
        this.child.stdout?.on('data', check);
        void this.exited.then(({ code }) =>
          reject(new Error(`daemon exited ${code}: ${this.stderrText}`)),
        );
      }),
      60000,
      'daemon readiness',
    );
  }

  private onLine(line: string): void {
    let record: LogRecord;
    try {
      record = JSON.parse(line) as LogRecord;
    } catch {
      return;
    }
    this.records.push(record);
    this.handlers.note(record);
    this.waiters = this.waiters.filter((w) => {
      if (!w.test(record)) return true;
      w.resolve(record);
      return false;
    });
  }

  /** Resolves with the first record (past or future) that passes `test`. */
  waitForLog(test: (r: LogRecord) => boolean, ms = 30000): Promise<LogRecord> {
    const seen = this.records.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return withDeadline(
      new Promise((resolve) => this.waiters.push({ test, resolve })),
      ms,
      'log record',
    );
  }

  /** Resolves once `count` records pass `test`. */
  waitForCount(test: (r: LogRecord) => boolean, count: number, ms = 60000): Promise<void> {
    return withDeadline(
      new Promise<void>((resolve) => {
        let seen = this.records.filter(test).length;
        if (seen >= count) return resolve();
        this.waiters.push({
          test: (r) => test(r) && ++seen >= count,
          resolve: () => resolve(),
        });
      }),
      ms,
      `${count} log records`,
    );
  }

  /**
   * Stops the daemon and fails (rejects) when a handler it started, or a process in a handler's
   * group or session or with a handler's SOCKETEER_INSTANCE, is still alive 10 s after it
   * exited; those are then killed. Stop a successor (after an upgrade) first.
   */
  async stop(
    signal: NodeJS.Signals = 'SIGTERM',
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const exit = await withDeadline(this.exited, 60000, 'daemon exit');
    await this.handlers.assertNoneLeft(10000);
    return exit;
  }
}

interface ProcessStat {
  readonly pid: number;
  readonly comm: string;
  readonly state: string;
  readonly pgid: number;
  readonly sid: number;
  /** Clock ticks since boot: with the pid, it names one process (pids are reused). */
  readonly startTime: number;
}

function readStat(pid: number): ProcessStat | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    return {
      pid,
      comm: stat.slice(stat.indexOf('(') + 1, close),
      state: fields[0] ?? '?',
      pgid: Number(fields[2]),
      sid: Number(fields[3]),
      startTime: Number(fields[19]),
    };
  } catch {
    return null; // gone
  }
}

/** SOCKETEER_SERVICE and SOCKETEER_INSTANCE of a process, when it has them. */
function readMarker(pid: number): string | null {
  let environ: string;
  try {
    environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    return null;
  }
  const vars = environ.split('\0');
  const service = vars.find((v) => v.startsWith('SOCKETEER_SERVICE='));
  const instance = vars.find((v) => v.startsWith('SOCKETEER_INSTANCE='));
  return service === undefined || instance === undefined ? null : `${service} ${instance}`;
}

/**
 * The handlers a daemon under test started, learnt from the pid and conn of its records, each
 * with its start time (read when its first record arrives, so that a reused pid is not blamed).
 */
export class HandlerTracker {
  private readonly pids = new Map<number, ProcessStat>();
  private readonly markers = new Set<string>();
  private notBefore = 0;
  private daemonPid = -1;

  startedAfter(daemonPid: number): void {
    this.daemonPid = daemonPid;
    this.notBefore = readStat(daemonPid)?.startTime ?? 0;
  }

  note(record: LogRecord): void {
    const { pid, conn, service } = record;
    if (typeof conn !== 'string' || typeof service !== 'string') return;
    this.markers.add(`SOCKETEER_SERVICE=${service} SOCKETEER_INSTANCE=${conn}`);
    if (record.event !== 'accept' || typeof pid !== 'number' || pid === this.daemonPid) return;
    const stat = readStat(pid);
    if (stat !== null && stat.startTime >= this.notBefore) this.pids.set(pid, stat);
  }

  /** Live processes that are a handler, in a handler's group or session, or carry its marker. */
  leftovers(): ProcessStat[] {
    const live = new Map<number, ProcessStat>();
    for (const entry of readdirSync('/proc')) {
      const stat = /^\d+$/.test(entry) ? readStat(Number(entry)) : null;
      if (stat !== null && stat.state !== 'Z') live.set(stat.pid, stat);
    }
    return [...live.values()].filter(
      (stat) =>
        stat.startTime >= this.notBefore &&
        (this.isHandler(stat) ||
          this.isInHandlerGroup(stat.pgid, live) ||
          this.isInHandlerGroup(stat.sid, live) ||
          this.markers.has(readMarker(stat.pid) ?? '')),
    );
  }

  private isHandler(stat: ProcessStat | undefined): boolean {
    return stat !== undefined && this.pids.get(stat.pid)?.startTime === stat.startTime;
  }

  /**
   * A group (or session) led by one of our handlers: the leader is that very process, or gone
   * (Linux reuses no pid while a group or session of that id has a member).
   */
  private isInHandlerGroup(id: number, live: Map<number, ProcessStat>): boolean {
    return this.pids.has(id) && (!live.has(id) || this.isHandler(live.get(id)));
  }

  async assertNoneLeft(ms: number): Promise<void> {
    let left = this.leftovers();
    const deadline = Date.now() + ms;
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50)); // poll /proc: no event for it
      left = this.leftovers();
    }
    if (left.length === 0) return;
    for (const { pid } of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // it ended meanwhile
      }
    }
    const names = left.map((p) => `${p.pid} (${p.comm})`).join(', ');
    throw new Error(`handler processes left alive after the daemon stopped: ${names}`);
  }
}

/**
 * Spawns through `env -i` so that the command gets exactly `env`: tap instruments this test
 * process's child_process and would otherwise add its own variables to every child.
 */
export function spawnClean(argv: string[], env: NodeJS.ProcessEnv = cleanEnv()): ChildProcess {
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${v ?? ''}`);
  return spawn('/usr/bin/env', ['-i', ...assignments, ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** This process's environment without what tap adds to instrument child processes. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key !== 'NODE_OPTIONS' && !key.startsWith('_TAPJS') && !key.startsWith('TAP'))
      env[key] = value;
  }
  return { ...env, ...extra };
}

export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Connects, optionally writes and half-closes, and collects everything until EOF. */
export function exchange(
  target: { host: string; port: number } | { path: string },
  input: Buffer | string | null,
  options: { halfClose?: boolean; ms?: number } = {},
): Promise<Buffer> {
  return withDeadline(
    new Promise<Buffer>((resolve, reject) => {
      const socket: Socket =
        'path' in target ? connect(target.path) : connect(target.port, target.host);
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => {
        socket.end();
        resolve(Buffer.concat(chunks));
      });
      socket.on('error', reject);
      socket.on('connect', () => {
        if (input !== null) socket.write(input);
        if (options.halfClose !== false) socket.end();
      });
    }),
    options.ms ?? 30000,
    'exchange',
  );
}

/** Children of `pid` and their states, from /proc. */
export function childrenOf(pid: number): { pid: number; state: string; comm: string }[] {
  const out: { pid: number; state: string; comm: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      if (Number(fields[1]) === pid)
        out.push({
          pid: Number(entry),
          state: fields[0] ?? '?',
          comm: stat.slice(stat.indexOf('(') + 1, close),
        });
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * The daemon's fd count once it is `expected`, or what it is after `ms`: for a count that an
 * asynchronous close (no event to wait for) brings back. A leak still fails, at the deadline.
 */
export async function settledFdCount(pid: number, expected: number, ms = 10000): Promise<number> {
  const deadline = Date.now() + ms;
  let count = fdCount(pid);
  while (count !== expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    count = fdCount(pid);
  }
  return count;
}

export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

/** A record filter: this event, of this service when one is named. */
export const isEvent =
  (event: string, service?: string) =>
  (r: LogRecord): boolean =>
    r.event === event && (service === undefined || r.service === service);

/** Whether a process exists and is not a zombie waiting for its reaper. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the built CLI to its end without blocking this process (a client loop may be running),
 * optionally behind a wrapper such as setpriv.
 */
export async function runCli(
  args: string[],
  wrapper: string[] = [],
  ms = 60000,
): Promise<CliResult> {
  const child = spawnClean([...wrapper, process.execPath, cli, ...args], cleanEnv());
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const code = await withDeadline(
    new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c))),
    ms,
    `socketeer ${args.join(' ')}`,
  );
  return { code, stdout, stderr };
}
