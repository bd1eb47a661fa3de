import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { handleFd } from '../listen/incoming.js';
import { loadPeerAddon } from '../listen/peer-state.js';
import type { CarriedWaiter } from './handover-channel.js';
import type { QueuedConnection } from '../connection/handler-queue.js';
import type { HandoverHost, HandoverService } from './host.js';

/** A queued connection taken out of its service's queue for a hand-over, still open. */
export interface Taken {
  readonly runner: HandoverService;
  readonly waiter: QueuedConnection;
}

/**
 * Takes every service's queued connections out of the queues (call it once no listener
 * accepts any more), in arrival order across services: the order the new process serves them.
 */
export function takeQueues(host: HandoverHost): Taken[] {
  return host
    .listServices()
    .flatMap((runner) => runner.takeQueue().map((waiter) => ({ runner, waiter })))
    .sort((a, b) => a.waiter.arrival - b.waiter.arrival);
}

/** What the `state` message says of them, per service; the fds go in the same order. */
export function describeTaken(taken: readonly Taken[]): Map<string, CarriedWaiter[]> {
  const now = performance.now();
  const byService = new Map<string, CarriedWaiter[]>();
  taken.forEach(({ runner, waiter }, order) => {
    const list = byService.get(runner.spec.name) ?? [];
    const { conn, peer } = waiter.accepted;
    list.push({ conn, peer, waitedMs: Math.max(0, Math.round(now - waiter.enqueuedAt)), order });
    byService.set(runner.spec.name, list);
  });
  return byService;
}

/**
 * Sends the fds of the queued connections, then those carried with `accept: false` processes,
 * on the queue socket (the new process receives them after `state`).
 */
export function sendPassed(
  socket: Socket | null,
  fds: readonly number[],
  timeoutMs: number,
): string | null {
  if (fds.length === 0) return null;
  const addon = loadPeerAddon();
  const fd = socket === null ? null : handleFd(socket);
  if (addon === null || fd === null) return 'the queue socket is not open';
  try {
    addon.sendFds(fd, fds, timeoutMs);
    return null;
  } catch (error) {
    return `unable to pass the queued connections and carried fds: ${(error as Error).message}`;
  }
}

/** After a failed hand-over: back at the head of their queues, served here again. */
export function giveBack(taken: readonly Taken[], start = true): void {
  const byRunner = new Map<HandoverService, QueuedConnection[]>();
  for (const { runner, waiter } of taken)
    byRunner.set(runner, [...(byRunner.get(runner) ?? []), waiter]);
  for (const [runner, waiters] of byRunner) runner.restoreQueue(waiters, start);
}

/** The new process holds them now: close our copies (the peers see nothing). */
export function closeTaken(taken: readonly Taken[]): void {
  for (const { waiter } of taken) waiter.accepted.incoming.close();
}

/** The new process cannot take them: closed unserved, as before (`queue-dropped`). */
export function dropTaken(taken: readonly Taken[]): void {
  giveBack(taken, false);
  for (const runner of new Set(taken.map((t) => t.runner))) runner.closeQueue();
}
