import type { LogEvent, LogFields } from '../log/events.js';

/** How a handler ended, as the metrics label it. */
export const handlerOutcomes = ['success', 'failure', 'signal', 'timeout'] as const;
export type HandlerOutcomeLabel = (typeof handlerOutcomes)[number];

/** Upper bounds (seconds) of the handler duration histogram's buckets; +Inf is implied. */
export const durationBuckets = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600,
] as const;

/** One service's handler exits: counts per outcome and the duration histogram. */
export interface ServiceHandlerStats {
  readonly exits: Record<HandlerOutcomeLabel, number>;
  /** Non-cumulative counts per bucket of durationBuckets, then one for +Inf. */
  readonly buckets: number[];
  sumSec: number;
  count: number;
}

/**
 * Counts the `end` records of every service since this process started (the log observer of
 * createLogger feeds it, so counts hold whatever the log level and record limiter let through).
 */
export class HandlerStats {
  private readonly services = new Map<string, ServiceHandlerStats>();

  /** A createLogger `observe`: only `end` records with a service count. */
  readonly observe = (event: LogEvent, fields: LogFields, bound: LogFields): void => {
    if (event !== 'end') return;
    const service = fields.service ?? bound.service;
    if (typeof service !== 'string') return;
    this.record(service, fields);
  };

  /** The service's counts, or null when no handler of it has ended. */
  of(service: string): Readonly<ServiceHandlerStats> | null {
    return this.services.get(service) ?? null;
  }

  private record(service: string, fields: LogFields): void {
    let stats = this.services.get(service);
    if (stats === undefined) {
      stats = emptyStats();
      this.services.set(service, stats);
    }
    stats.exits[outcomeOf(fields)] += 1;
    const ms = typeof fields.durationMs === 'number' ? Math.max(0, fields.durationMs) : 0;
    const sec = ms / 1000;
    const index = durationBuckets.findIndex((le) => sec <= le);
    const slot = index === -1 ? durationBuckets.length : index;
    stats.buckets[slot] = (stats.buckets[slot] ?? 0) + 1;
    stats.sumSec += sec;
    stats.count += 1;
  }
}

export function emptyStats(): ServiceHandlerStats {
  return {
    exits: { success: 0, failure: 0, signal: 0, timeout: 0 },
    buckets: new Array<number>(durationBuckets.length + 1).fill(0),
    sumSec: 0,
    count: 0,
  };
}

/** timeout (runtimeMaxSec ended it) before signal before the exit code. */
function outcomeOf(fields: LogFields): HandlerOutcomeLabel {
  if (fields.timedOut === true) return 'timeout';
  if (typeof fields.signal === 'string') return 'signal';
  return fields.exitCode === 0 ? 'success' : 'failure';
}
