import { closeSync } from 'node:fs';
import type { RunningHandler } from '../connection/handler-table.js';
import type { EventLog } from '../log/events.js';
import type { CarriedService } from './handover-channel.js';
import { watchCarriedHandlers } from './inherited-handlers.js';
import type { PassedWaiter } from '../connection/carried-waiter.js';
import type { HandoverService } from './host.js';

/** How often handlers inherited from a previous process are looked for in /proc. */
const inheritedPollMs = 250;

/** An inherited fd not used: the fd, the name it came with, and why. */
export interface UnusedFd {
  readonly fd: number;
  readonly name: string | null;
  readonly reason: string;
}

/** Logs why an inherited fd is not used, and closes it. */
export function dropInheritedFd(log: EventLog, { fd, name, reason }: UnusedFd): void {
  log.log('warn', 'inherit-unused', { fd, name, reason });
  try {
    closeSync(fd);
  } catch {
    // already closed (a failed adoption closed it with its server)
  }
}

/**
 * Serves each inherited fd for its address (index in the service's `listen`); an fd that does
 * not fit is dropped and the address bound afresh (which throws if that fails).
 */
export async function serveInheritedFds(
  runner: HandoverService,
  fds: ReadonlyMap<number, number>,
  log: EventLog,
): Promise<void> {
  for (const [index, fd] of fds) {
    const address = runner.spec.listen[index];
    if (address === undefined) continue;
    try {
      await runner.addListener(address, { fd });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      dropInheritedFd(log, { fd, name: runner.spec.name, reason });
      await runner.addListener(address);
    }
  }
}

/**
 * Restores what a hand-over carried: counters; running handlers, which the runners count until
 * they end; then queued connections, ahead of any queued here and in their old order, which
 * start as soon as the caps let them. `onAdopted` learns of each handler taken over.
 */
export function restoreCarried(
  services: readonly HandoverService[],
  carried: Readonly<Record<string, CarriedService>>,
  onAdopted: (service: string, handler: RunningHandler) => void,
): void {
  const runners = new Map(services.map((s) => [s.spec.name, s]));
  for (const [name, service] of Object.entries(carried)) {
    const runner = runners.get(name);
    if (runner === undefined) continue;
    const { accepted, spawnFailed } = service.counters;
    if (typeof accepted === 'number') runner.restoreCounters({ accepted });
    if (typeof spawnFailed === 'number') runner.restoreCounters({ spawnFailed });
    const handlers = Array.isArray(service.handlers) ? service.handlers : [];
    for (const handler of watchCarriedHandlers(handlers, inheritedPollMs)) {
      onAdopted(name, handler);
      runner.adoptHandler(handler);
    }
  }
  restoreQueued(runners, carried);
}

/** Queues what waited in the previous process: FIFO across services, before anything here. */
function restoreQueued(
  runners: ReadonlyMap<string, HandoverService>,
  carried: Readonly<Record<string, CarriedService>>,
): void {
  const total = Object.values(carried).reduce((n, s) => n + (s.queued?.length ?? 0), 0);
  for (const [name, service] of Object.entries(carried)) {
    const runner = runners.get(name);
    const waiting: PassedWaiter[] = [];
    for (const { fd, conn, peer, waitedMs, order } of service.queued ?? []) {
      if (fd === undefined) continue;
      // a service gone from the configuration: closed unserved, as a reload closes its queue
      if (runner === undefined) closeQuietly(fd);
      else waiting.push({ fd, conn, peer, waitedMs, arrival: order - total });
    }
    if (runner !== undefined) runner.adoptWaiting(waiting);
  }
  // one drain for every service, so that the FIFO holds across them (the global cap)
  [...runners.values()][0]?.startWaiting();
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
