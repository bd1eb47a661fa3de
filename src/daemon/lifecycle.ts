import type { RunningHandler } from '../connection/handler-table.js';
import { ControlError } from '../control/protocol.js';
import type { Daemon } from './daemon.js';
import type { ServiceState } from './state.js';
import { signalTree, terminateHandlers } from '../connection/terminate.js';

export type StopResult = {
  readonly service: string;
  readonly state: ServiceState;
  /** Handlers that were ended; `forced` of them needed SIGKILL. */
  readonly ended: number;
  readonly forced: number;
};

/**
 * `stop`: close the service's listeners (new clients get connection refused), drop its queue,
 * end its handlers (SIGTERM to each process group, SIGKILL after the grace). It stays stopped,
 * across reloads, until `start`.
 */
export async function stopService(daemon: Daemon, name: string): Promise<StopResult> {
  const handlers = await closeService(daemon, name, 'stop');
  daemon.log.log('info', 'stop', { service: name, by: 'stop', handlers: handlers.length });
  const counts = await endHandlers(daemon, handlers);
  return { service: name, state: daemon.services.stateOf(name), ...counts };
}

export type StartResult = {
  readonly service: string;
  readonly state: ServiceState;
  readonly wasRunning: boolean;
  readonly listeners: readonly string[];
};

/** `start`: bind the service's addresses again and serve (a no-op when it is listening). */
export async function startService(daemon: Daemon, name: string): Promise<StartResult> {
  const runner = daemon.runnerOf(name);
  return daemon.exclusive(async () => {
    const wasRunning = daemon.services.next(name, 'start') === null;
    if (!wasRunning) {
      runner.closeQueue();
      await runner.closeListeners(); // a drain in progress has closed them already
      try {
        for (const address of runner.spec.listen) await runner.addListener(address);
      } catch (error) {
        await runner.closeListeners();
        throw new ControlError('failed', error instanceof Error ? error.message : String(error));
      }
      daemon.services.apply(name, 'start');
      daemon.log.log('info', 'start', { service: name, addresses: runner.boundAddresses });
    }
    return {
      service: name,
      state: daemon.services.stateOf(name),
      wasRunning,
      listeners: runner.boundAddresses,
    };
  });
}

/**
 * `quiesce`: end the handlers running now (SIGTERM, SIGKILL after the grace) and keep
 * listening, so the next connection starts a fresh handler.
 */
export async function quiesceService(daemon: Daemon, name: string): Promise<StopResult> {
  const runner = daemon.runnerOf(name);
  const handlers = [...runner.handlers.values()];
  daemon.services.beginQuiesce(name);
  daemon.log.log('info', 'quiesce', { service: name, handlers: handlers.length });
  const counts = await endHandlers(daemon, handlers);
  daemon.services.endQuiesce(name);
  return { service: name, state: daemon.services.stateOf(name), ...counts };
}

/**
 * `stop` and `drain` begin alike: the state moves on by `event`, the queue and the listeners
 * close (after every earlier bind or close). The handlers running then.
 */
async function closeService(
  daemon: Daemon,
  name: string,
  event: 'stop' | 'drain',
): Promise<RunningHandler[]> {
  const runner = daemon.runnerOf(name);
  await daemon.exclusive(async () => {
    daemon.services.apply(name, event);
    runner.closeQueue();
    await runner.closeListeners();
  });
  return [...runner.handlers.values()];
}

/** Ends `handlers` (SIGTERM, SIGKILL after the grace): how many, and how many needed SIGKILL. */
async function endHandlers(
  daemon: Daemon,
  handlers: readonly RunningHandler[],
): Promise<{ ended: number; forced: number }> {
  const forced = await terminateHandlers(handlers, daemon.options.killGraceMs);
  return { ended: handlers.length, forced: forced.length };
}

export type DrainResult = {
  readonly service: string;
  readonly state: ServiceState;
  /** Handlers that ended by themselves, and those ended at the deadline. */
  readonly finished: number;
  readonly ended: number;
};

/**
 * `drain`: stop accepting, let the running handlers finish, end what is left at `timeoutSec`
 * (never, when absent), then the service is stopped (as by `stop`).
 */
export async function drainService(
  daemon: Daemon,
  name: string,
  timeoutSec: number | undefined,
): Promise<DrainResult> {
  const handlers = await closeService(daemon, name, 'drain');
  daemon.log.log('info', 'drain', {
    service: name,
    handlers: handlers.length,
    timeoutSec: timeoutSec ?? null,
  });
  const left = await waitForEnd(handlers, timeoutSec);
  await terminateHandlers(left, daemon.options.killGraceMs);
  if (daemon.services.apply(name, 'drain-done') !== null)
    daemon.log.log('info', 'stop', { service: name, by: 'drain', handlers: left.length });
  return {
    service: name,
    state: daemon.services.stateOf(name),
    finished: handlers.length - left.length,
    ended: left.length,
  };
}

/** The handlers still running when every one has ended or `timeoutSec` has passed. */
async function waitForEnd(
  handlers: readonly RunningHandler[],
  timeoutSec: number | undefined,
): Promise<RunningHandler[]> {
  const ended = new Set<RunningHandler>();
  const all = Promise.all(handlers.map((h) => h.outcome.then(() => ended.add(h))));
  let timer: NodeJS.Timeout | undefined;
  const deadline =
    timeoutSec === undefined
      ? new Promise<never>(() => undefined)
      : new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutSec * 1000)));
  await Promise.race([all, deadline]);
  clearTimeout(timer);
  return handlers.filter((h) => !ended.has(h));
}

export type KillResult = {
  readonly service: string;
  readonly signal: NodeJS.Signals;
  /** pid null: a proxied connection, closed whatever the signal. */
  readonly signalled: readonly { readonly instance: string; readonly pid: number | null }[];
};

/** Which handlers `kill` signals, and with what. */
export interface KillTarget {
  readonly service: string;
  /** A connection instance id; absent: every running instance of the service. */
  readonly instance?: string | undefined;
  readonly signal: NodeJS.Signals;
}

/**
 * `kill`: send `signal` to one handler's tree (its process group, and its cgroup or descendants),
 * or to every handler's of the service.
 */
export function killHandlers(daemon: Daemon, target: KillTarget): KillResult {
  const { service: name, instance, signal } = target;
  const runner = daemon.runnerOf(name);
  const handler = instance === undefined ? undefined : runner.handlers.get(instance);
  if (instance !== undefined && handler === undefined)
    throw new ControlError('unknown-instance', `${name} has no running instance ${instance}`);
  const targets = handler === undefined ? [...runner.handlers.values()] : [handler];
  const signalled = targets
    .filter((h) => signalOrClose(h, signal))
    .map((h) => ({ instance: h.conn, pid: h.pid }));
  daemon.log.log('info', 'kill', {
    service: name,
    signal,
    conns: signalled.map((s) => s.instance),
    pids: signalled.map((s) => s.pid),
  });
  return { service: name, signal, signalled };
}

/** Signals a handler's tree; a proxied connection (no process) is closed instead. */
function signalOrClose(handler: RunningHandler, signal: NodeJS.Signals): boolean {
  if (handler.pid !== null) return signalTree(handler.pid, signal);
  handler.close?.();
  return true;
}
