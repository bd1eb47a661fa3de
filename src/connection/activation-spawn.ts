import { closeSync, openSync } from 'node:fs';
import type { ActivationSpec, ServiceSpec } from '../config/types.js';
import type { SpawnedHandler, Spawner } from '../model/spawn.js';
import { buildActivationEnv } from '../spawn/activation-env.js';
import { buildSpawnPlan } from '../spawn/plan.js';
import type { ActivationNotify } from './activation-notify.js';

/** One start of an `accept: false` service's process. */
export interface ProcessStart {
  readonly spec: ServiceSpec & { readonly activation: ActivationSpec };
  /** The held listening sockets, in `listen` order. */
  readonly fds: readonly number[];
  /** What each is bound to (port 0 resolved). */
  readonly bound: readonly string[];
  readonly notify: ActivationNotify;
  readonly spawner: Spawner;
}

/** What a start passes beyond the definition: bound addresses, stored fds, NOTIFY_SOCKET. */
export function describeRun(start: Pick<ProcessStart, 'bound' | 'notify'>): {
  addresses: readonly string[];
  stored: string[];
  notifySocket?: string;
} {
  const stored = start.notify.store.entries.map((e) => e.name);
  const address = start.notify.socket?.address;
  return {
    addresses: start.bound,
    stored,
    ...(address === undefined ? {} : { notifySocket: address }),
  };
}

/**
 * Starts the process: the sockets as fd 3… then the stored fds (fd 0 and 1 on /dev/null) with
 * LISTEN_PID set in the child, or the one socket as fd 0 and 1 (`listenerOn: stdin`); its
 * NOTIFY_SOCKET opened first. Never throws: a failure is a `spawn-failed` outcome.
 */
export function spawnProcess(start: ProcessStart): SpawnedHandler {
  const { spec, fds, notify } = start;
  const isStdin = spec.activation.listenerOn === 'stdin';
  let devNull: number | null = null;
  try {
    notify.open();
    const stored = isStdin ? [] : notify.store.entries.map((e) => e.fd);
    const run = { ...describeRun(start), ...(isStdin ? { stored: [] } : {}) };
    const plan = {
      ...buildSpawnPlan(spec, buildActivationEnv(spec, run)),
      passFds: isStdin ? [] : [...fds, ...stored],
      setListenPid: !isStdin,
    };
    if (!isStdin) devNull = openSync('/dev/null', 'r+');
    return start.spawner.spawn(plan, devNull ?? fds[0] ?? -1);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    const failure = {
      kind: 'spawn-failed' as const,
      error: { code: e.code ?? 'EUNKNOWN', message: e.message },
    };
    return { pid: null, stderr: null, outcome: Promise.resolve(failure) };
  } finally {
    if (devNull !== null) closeSync(devNull);
  }
}
