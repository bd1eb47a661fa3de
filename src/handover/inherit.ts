import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import type { RunningHandler } from '../connection/handler-table.js';
import type { EventLog } from '../log/events.js';
import {
  processPeer,
  storedFdPrefix,
  type AdoptedProcess,
} from '../connection/activation-carry.js';
import type { NotifySocket } from '../connection/activation-notify.js';
import type { StoredFd } from '../connection/fd-store.js';
import { processInstance } from '../connection/activation-server.js';
import type { CarriedProcess, CarriedService } from './handover-channel.js';
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

/** What the daemon learns while a hand-over's state is restored. */
export interface RestoreHooks {
  /** A handler taken over, counted by its service's runner until it ends. */
  onAdopted(service: string, handler: RunningHandler): void;
  /**
   * The running process of an `accept: false` service that the configuration no longer has
   * (watched in /proc): to be ended, as a reload ends a removed service's.
   */
  onOrphan(service: string, process: RunningHandler): void;
}

/**
 * Restores what a hand-over carried: counters; running handlers, which the runners count until
 * they end; `accept: false` processes; then queued connections, ahead of any queued here and in
 * their old order, which start as soon as the caps let them.
 */
export function restoreCarried(
  services: readonly HandoverService[],
  carried: Readonly<Record<string, CarriedService>>,
  hooks: RestoreHooks,
): void {
  const runners = new Map(services.map((s) => [s.spec.name, s]));
  for (const [name, service] of Object.entries(carried)) {
    const runner = runners.get(name);
    const process = isCarriedProcess(service.process) ? watchProcess(service.process) : null;
    if (runner === undefined) {
      process?.stderr?.destroy();
      if (process?.handler) hooks.onOrphan(name, process.handler);
      continue;
    }
    const { accepted, spawnFailed } = service.counters;
    if (typeof accepted === 'number') runner.restoreCounters({ accepted });
    if (typeof spawnFailed === 'number') runner.restoreCounters({ spawnFailed });
    const handlers = Array.isArray(service.handlers) ? service.handlers : [];
    for (const handler of watchCarriedHandlers(handlers, inheritedPollMs)) {
      hooks.onAdopted(name, handler);
      runner.adoptHandler(handler);
    }
    if (process !== null) runner.adoptProcess(process);
  }
  restoreQueued(runners, carried);
}

/**
 * An `accept: false` service's process, left running by the previous process: not our child,
 * so watched in /proc as a carried handler is (its end is seen, its exit status is unknown);
 * its stderr pipe read from the fd that came with it.
 */
function watchProcess(carried: CarriedProcess): AdoptedProcess {
  const { running, startTicks, starts, lastExit, delayMs } = carried;
  let stderr: Socket | null = null;
  let notify: NotifySocket | null = null;
  const stored: StoredFd[] = [];
  const address = carried.notifyAddress ?? null;
  for (const { name, fd } of carried.fds ?? []) {
    if (fd === undefined) continue;
    if (name === 'stderr' && stderr === null && running !== null)
      stderr = new Socket({ fd, readable: true, writable: false });
    else if (name === 'notify' && notify === null && address !== null) notify = { fd, address };
    else if (name.startsWith(storedFdPrefix))
      stored.push({ name: name.slice(storedFdPrefix.length), fd });
    else closeQuietly(fd); // nothing here takes it
  }
  const watched =
    running === null
      ? []
      : watchCarriedHandlers(
          [{ ...running, conn: processInstance, peer: processPeer, startTicks }],
          inheritedPollMs,
        );
  const handler = watched[0] ?? null;
  const uptimeMs = running?.uptimeMs ?? 0;
  return { starts, lastExit, delayMs, handler, uptimeMs, stderr, notify, stored };
}

function isCarriedProcess(value: unknown): value is CarriedProcess {
  if (typeof value !== 'object' || value === null) return false;
  const { running, starts } = value as Partial<CarriedProcess>;
  return (
    typeof starts === 'number' &&
    (running === null ||
      (typeof running === 'object' && Number.isSafeInteger(running.pid) && running.pid > 0))
  );
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
