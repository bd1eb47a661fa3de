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
  const runner = daemon.runnerOf(name);
  await daemon.exclusive(async () => {
    daemon.states.set(name, 'stopped');
    runner.closeQueue();
    await runner.closeListeners();
  });
  const handlers = [...runner.handlers.values()];
  daemon.log.log('info', 'stop', { service: name, by: 'stop', handlers: handlers.length });
  const forced = await terminateHandlers(handlers, daemon.options.killGraceMs);
  return {
    service: name,
    state: stateOf(daemon, name),
    ended: handlers.length,
    forced: forced.length,
  };
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
    const wasRunning = isListening(stateOf(daemon, name));
    if (!wasRunning) {
      runner.closeQueue();
      await runner.closeListeners(); // a drain in progress has closed them already
      try {
        for (const address of runner.spec.listen) await runner.addListener(address);
      } catch (error) {
        await runner.closeListeners();
        throw new ControlError('failed', error instanceof Error ? error.message : String(error));
      }
      daemon.states.set(name, 'running');
      daemon.log.log('info', 'start', { service: name, addresses: runner.boundAddresses });
    }
    return {
      service: name,
      state: stateOf(daemon, name),
      wasRunning,
      listeners: runner.boundAddresses,
    };
  });
}

/** Quiesces in flight per service: the state goes back to running when the last one is done. */
const quiescing = new WeakMap<Daemon, Map<string, number>>();

/**
 * `quiesce`: end the handlers running now (SIGTERM, SIGKILL after the grace) and keep
 * listening, so the next connection starts a fresh handler.
 */
export async function quiesceService(daemon: Daemon, name: string): Promise<StopResult> {
  const runner = daemon.runnerOf(name);
  const handlers = [...runner.handlers.values()];
  const counts = quiescing.get(daemon) ?? new Map<string, number>();
  quiescing.set(daemon, counts);
  counts.set(name, (counts.get(name) ?? 0) + 1);
  if (stateOf(daemon, name) === 'running') daemon.states.set(name, 'quiesced');
  daemon.log.log('info', 'quiesce', { service: name, handlers: handlers.length });
  const forced = await terminateHandlers(handlers, daemon.options.killGraceMs);
  const left = (counts.get(name) ?? 1) - 1;
  counts.set(name, left);
  if (left === 0 && stateOf(daemon, name) === 'quiesced') daemon.states.set(name, 'running');
  return {
    service: name,
    state: stateOf(daemon, name),
    ended: handlers.length,
    forced: forced.length,
  };
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
  const runner = daemon.runnerOf(name);
  await daemon.exclusive(async () => {
    if (stateOf(daemon, name) !== 'stopped') daemon.states.set(name, 'draining');
    runner.closeQueue();
    await runner.closeListeners();
  });
  const handlers = [...runner.handlers.values()];
  daemon.log.log('info', 'drain', {
    service: name,
    handlers: handlers.length,
    timeoutSec: timeoutSec ?? null,
  });
  const left = await waitForEnd(handlers, timeoutSec);
  await terminateHandlers(left, daemon.options.killGraceMs);
  if (stateOf(daemon, name) === 'draining') {
    daemon.states.set(name, 'stopped');
    daemon.log.log('info', 'stop', { service: name, by: 'drain', handlers: left.length });
  }
  return {
    service: name,
    state: stateOf(daemon, name),
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
  readonly signalled: readonly { readonly instance: string; readonly pid: number }[];
};

/**
 * `kill`: send `signal` to one handler's tree (its process group, and its cgroup or descendants),
 * or to every handler's of the service.
 */
export function killHandlers(
  daemon: Daemon,
  name: string,
  instance: string | undefined,
  signal: NodeJS.Signals,
): KillResult {
  const runner = daemon.runnerOf(name);
  const handler = instance === undefined ? undefined : runner.handlers.get(instance);
  if (instance !== undefined && handler === undefined)
    throw new ControlError('unknown-instance', `${name} has no running instance ${instance}`);
  const targets = handler === undefined ? [...runner.handlers.values()] : [handler];
  const signalled = targets
    .filter((h) => signalTree(h.pid, signal))
    .map((h) => ({ instance: h.conn, pid: h.pid }));
  daemon.log.log('info', 'kill', {
    service: name,
    signal,
    conns: signalled.map((s) => s.instance),
    pids: signalled.map((s) => s.pid),
  });
  return { service: name, signal, signalled };
}

function stateOf(daemon: Daemon, name: string): ServiceState {
  return daemon.states.get(name) ?? 'stopped';
}

function isListening(state: ServiceState): boolean {
  return state === 'running' || state === 'quiesced';
}
