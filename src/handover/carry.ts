import type { CarriedFd, CarriedProcess, CarriedService } from './handover-channel.js';
import type { HandoverHost, HandoverService } from './host.js';
import { readStartTicks } from './inherited-handlers.js';
import { describeTaken, type Taken } from './upgrade-queue.js';

/** The `state` message's services, and the fds to send after it on the queue socket, in order. */
export interface CarriedState {
  readonly services: Record<string, CarriedService>;
  readonly fds: readonly number[];
}

/**
 * What a hand-over carries: per service its counters, running handlers, queued connections
 * (`taken`) and, for an `accept: false` service, its process, left running. The fds follow
 * `state`: the queued connections' in arrival order, then those carried with processes (only
 * when `canPass`: the new process has the queue socket).
 */
export function carryState(
  host: HandoverHost,
  taken: readonly Taken[],
  canPass: boolean,
): CarriedState {
  const queued = describeTaken(taken);
  const fds = taken.map((t) => t.waiter.accepted.fd);
  const services: Record<string, CarriedService> = {};
  for (const runner of host.listServices()) {
    const { name } = runner.spec;
    const process = carryProcess(runner, canPass ? fds : null);
    services[name] = {
      queued: queued.get(name) ?? [],
      counters: { accepted: runner.counters.accepted, spawnFailed: runner.counters.spawnFailed },
      // a proxied connection (pid null) lives in this process: it ends when this one exits
      handlers: [...runner.connectionHandlers.values()].flatMap((h) =>
        h.pid === null
          ? []
          : [
              {
                conn: h.conn,
                pid: h.pid,
                peer: h.peer,
                startedAt: h.startedAt,
                startTicks: readStartTicks(h.pid),
              },
            ],
      ),
      ...(process === null ? {} : { process }),
    };
  }
  return { services, fds };
}

/** An `accept: false` service's process; its fds appended to `fds` (null: none can go). */
function carryProcess(runner: HandoverService, fds: number[] | null): CarriedProcess | null {
  const handOver = runner.carryProcess();
  if (handOver === null) return null;
  const { state } = handOver;
  const pid = state.running?.pid ?? null;
  const carried: CarriedFd[] =
    fds === null ? [] : handOver.fds.map(({ name, fd }) => ({ name, order: fds.push(fd) - 1 }));
  const startTicks = pid === null ? null : readStartTicks(pid);
  return { ...state, startTicks, ...(carried.length === 0 ? {} : { fds: carried }) };
}
