import { performance } from 'node:perf_hooks';
import { createConnectionTable, type ConnectionTable } from '../limits/connection-table.js';
import { createLoadSampler } from './load-average.js';

/** A service's queue as the daemon-wide drain sees it. */
export interface QueueSource {
  /** Arrival number of the first waiter every concurrency cap would admit now, or null. */
  firstStartable(): number | null;
  /** Starts that waiter's handler (and counts it in the table) synchronously. */
  startFirst(): void;
}

/**
 * What every ServiceRunner of one daemon shares: the live handler counts behind `instances`,
 * `perSource` and the global cap (`--max-connections`), the load average, and the queues, so a
 * slot freed by one service's handler can start a waiter of another held by the global cap.
 */
export interface SharedLimits {
  readonly table: ConnectionTable;
  /** The daemon-wide cap on handlers across services (null: none). */
  readonly globalMax: number | null;
  /** The 1-minute load average, read at most once per second. */
  loadAverage1(): number;
  /** The next arrival number for a queued connection (daemon-wide FIFO order). */
  nextArrival(): number;
  /** A queue with waiters takes part in draining; an empty one leaves. */
  watchQueue(source: QueueSource): void;
  unwatchQueue(source: QueueSource): void;
  /**
   * A handler is gone: uncount it, then start startable waiters in arrival order across every
   * service, in the same synchronous step (no new connection can take the freed slot first).
   */
  release(service: string, sourceKey: string): void;
  /** Starts startable waiters in arrival order across every service (after a hand-over). */
  drain(): void;
}

export interface SharedLimitsOptions {
  readonly globalMax?: number | null;
  /** Monotonic ms (default performance.now). */
  readonly clock?: () => number;
  readonly readLoadAverage?: () => string;
}

export function createSharedLimits(options: SharedLimitsOptions = {}): SharedLimits {
  const clock = options.clock ?? (() => performance.now());
  const table = createConnectionTable();
  const sources = new Set<QueueSource>();
  const loadAverage1 = createLoadSampler({
    clock,
    ...(options.readLoadAverage === undefined ? {} : { read: options.readLoadAverage }),
  });
  let arrivals = 0;
  let isDraining = false;
  const drain = (): void => {
    if (isDraining) return;
    isDraining = true;
    try {
      for (let next = pickFirst(sources); next !== null; next = pickFirst(sources)) {
        next.startFirst();
      }
    } finally {
      isDraining = false;
    }
  };
  return {
    table,
    globalMax: options.globalMax ?? null,
    loadAverage1,
    nextArrival: () => (arrivals += 1),
    watchQueue: (source) => void sources.add(source),
    unwatchQueue: (source) => void sources.delete(source),
    release(service, sourceKey) {
      table.remove(service, sourceKey);
      drain();
    },
    drain,
  };
}

function pickFirst(sources: ReadonlySet<QueueSource>): QueueSource | null {
  let best: QueueSource | null = null;
  let bestArrival = Number.POSITIVE_INFINITY;
  for (const source of sources) {
    const arrival = source.firstStartable();
    if (arrival !== null && arrival < bestArrival) {
      best = source;
      bestArrival = arrival;
    }
  }
  return best;
}
