import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { rename, unlink } from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { ListenAddress } from '../config/types.js';
import { formatListenAddress } from '../listen/address.js';
import type { Daemon } from './daemon.js';
import type { ServiceRunner } from './service-runner.js';
import { HandoverChannel, handoverFdVariable, type CarriedService } from './handover-channel.js';
import { formatFdName, listenFdsStart } from './inherited-fds.js';
import { readStartTicks } from './inherited-handlers.js';
import { notifySystemd } from './sd-notify.js';

export interface HandOverOptions {
  /** The control socket: moved aside while the new process binds its own, back on a failure. */
  readonly controlPath: string | null;
  /** How long the new process may take to be prepared, and then to be ready. */
  readonly timeoutMs: number;
}

export type HandOverOutcome =
  | { readonly ok: true; readonly pid: number; readonly handlers: number }
  | { readonly ok: false; readonly message: string };

interface Passed {
  readonly fd: number;
  readonly name: string;
}

/**
 * `upgrade` and SIGUSR2: start a new socketeer process (same argv, the code on disk now) with
 * every listening socket (LISTEN_FDS), wait until it has loaded the configuration, stop
 * accepting here, send it the running handlers and counters, and wait until it serves. On
 * success this process must exit without ending its handlers; on a failure it serves again.
 */
export function handOver(daemon: Daemon, options: HandOverOptions): Promise<HandOverOutcome> {
  return daemon.exclusive(async () => {
    const control = await moveAside(options.controlPath);
    const successor = startSuccessor(collectListeners(daemon));
    const outcome = await converse(daemon, successor, options.timeoutMs);
    if (!outcome.ok) {
      await control.restore();
      daemon.log.log('error', 'upgrade-failed', { error: outcome.message });
      return outcome;
    }
    daemon.isClosing = true;
    daemon.hasHandedOver = true;
    await control.discard();
    await notifySystemd([`MAINPID=${outcome.pid}`], daemon.log);
    daemon.log.log('info', 'upgrade', { pid: outcome.pid, handlers: outcome.handlers });
    return outcome;
  });
}

interface Successor {
  readonly child: ChildProcess;
  readonly channel: HandoverChannel | null;
  /** Resolves with how it ended (or failed to start). */
  readonly exited: Promise<string>;
}

/** The conversation of a hand-over; on a failure the successor is killed and we serve again. */
async function converse(
  daemon: Daemon,
  successor: Successor,
  timeoutMs: number,
): Promise<HandOverOutcome> {
  const { channel, exited } = successor;
  if (channel === null) return abandon(daemon, successor, 'its channel was not created', []);
  channel.send({ kind: 'hello', version: 1, from: process.pid, stopped: unboundServices(daemon) });
  const prepared = await Promise.race([channel.receive('prepared', timeoutMs), exited]);
  if (typeof prepared === 'string' || prepared === null)
    return abandon(daemon, successor, prepared ?? `not prepared within ${timeoutMs} ms`, []);
  const closed = await stopAccepting(daemon);
  channel.send({ kind: 'state', services: carryServices(daemon) });
  const ready = await Promise.race([channel.receive('ready', timeoutMs), exited]);
  if (typeof ready === 'string' || ready === null)
    return abandon(daemon, successor, ready ?? `not ready within ${timeoutMs} ms`, closed);
  channel.destroy();
  successor.child.unref();
  return { ok: true, pid: ready.pid, handlers: daemon.activeHandlers };
}

/**
 * Kills the successor and waits for it to be gone (its copies of the sockets must be closed
 * before we bind them again). A closed channel usually means it is exiting: its own exit
 * status, if it comes within a second, says more than the channel did.
 */
async function abandon(
  daemon: Daemon,
  successor: Successor,
  reason: string,
  closed: readonly Closed[],
): Promise<HandOverOutcome> {
  const { child, channel, exited } = successor;
  let timer: NodeJS.Timeout | undefined;
  const soon = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), 1000)));
  const why = (await Promise.race([exited, soon])) ?? reason;
  clearTimeout(timer);
  child.kill('SIGKILL');
  channel?.destroy();
  await exited;
  await resumeServing(daemon, closed);
  return { ok: false, message: `hand-over to pid ${child.pid ?? '?'} failed: ${why}` };
}

/** The control socket moves aside while the successor binds its own at the same path. */
async function moveAside(
  path: string | null,
): Promise<{ restore: () => Promise<void>; discard: () => Promise<void> }> {
  const aside = path === null ? null : `${path}.${process.pid}.old`;
  if (path === null || aside === null) return { restore: async () => {}, discard: async () => {} };
  await rename(path, aside).catch(() => undefined);
  return {
    restore: () => rename(aside, path).catch(() => undefined),
    discard: () => unlink(aside).catch(() => undefined),
  };
}

/** Every bound listener, named `SERVICE/INDEX` after its place in the service's `listen`. */
function collectListeners(daemon: Daemon): Passed[] {
  return [...daemon.runners.values()].flatMap((runner) =>
    runner.boundListeners.flatMap((listener) => {
      const index = runner.spec.listen.findIndex((a) => isSameAddress(a, listener.address));
      const { fd } = listener;
      return index === -1 || fd === null
        ? []
        : [{ fd, name: formatFdName(runner.spec.name, index) }];
    }),
  );
}

function isSameAddress(a: ListenAddress, b: ListenAddress): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function startSuccessor(passed: readonly Passed[]): Successor {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.LISTEN_PID;
  Object.assign(env, {
    LISTEN_FDS: String(passed.length),
    LISTEN_FDNAMES: passed.map((p) => p.name).join(':'),
    [handoverFdVariable]: String(listenFdsStart + passed.length),
  });
  const stdio: StdioOptions = ['ignore', 'inherit', 'inherit', ...passed.map((p) => p.fd), 'pipe'];
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio,
    env,
    detached: true,
  });
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(`unable to start it: ${error.message}`));
    child.once('exit', (code, signal) => resolve(`it exited (${signal ?? `code ${code}`})`));
  });
  const socket = child.stdio[listenFdsStart + passed.length] as Socket | null | undefined;
  return { child, exited, channel: socket ? new HandoverChannel(socket) : null };
}

function unboundServices(daemon: Daemon): string[] {
  return [...daemon.states].flatMap(([name, s]) =>
    s === 'stopped' || s === 'draining' ? [name] : [],
  );
}

/** A listener `stopAccepting` closed, as it is to be bound again if the hand-over fails. */
interface Closed {
  readonly runner: ServiceRunner;
  readonly address: ListenAddress;
  /** The port a TCP `port 0` address had resolved to. */
  readonly port: number | undefined;
}

/** Closes our copies of the listening sockets; the new process holds its own, nothing queued is lost. */
async function stopAccepting(daemon: Daemon): Promise<Closed[]> {
  const closed: Closed[] = [];
  for (const runner of daemon.runners.values()) {
    runner.closeQueue();
    for (const { address, port } of runner.boundListeners) {
      closed.push({ runner, address, port: port ?? undefined });
    }
  }
  await Promise.all([...daemon.runners.values()].map((r) => r.closeListeners({ keepPath: true })));
  return closed;
}

/** After a failed hand-over: bind again what `stopAccepting` closed (Unix paths replaced). */
async function resumeServing(daemon: Daemon, closed: readonly Closed[]): Promise<void> {
  for (const { runner, address, port } of closed) {
    const options = port === undefined ? { replace: true } : { replace: true, port };
    await runner.addListener(address, options).catch((error: unknown) => {
      daemon.log.log('error', 'bind-failed', {
        service: runner.spec.name,
        address: formatListenAddress(address),
        error: error instanceof Error ? error.message : String(error),
      });
    });
  }
}

function carryServices(daemon: Daemon): Record<string, CarriedService> {
  const services: Record<string, CarriedService> = {};
  for (const [name, runner] of daemon.runners) {
    services[name] = {
      counters: { accepted: runner.counters.accepted, spawnFailed: runner.counters.spawnFailed },
      handlers: [...runner.handlers.values()].map((h) => ({
        conn: h.conn,
        pid: h.pid,
        peer: h.peer,
        startedAt: h.startedAt,
        startTicks: readStartTicks(h.pid),
      })),
    };
  }
  return services;
}
