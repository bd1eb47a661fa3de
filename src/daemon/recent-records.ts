// The last few records of each service, for `status` (as `systemctl status` shows a unit's last
// journal lines): kept in memory, a few per service, whatever the log level or target.
import type { LogEvent, LogFields, LogJson } from '../log/events.js';
import type { RecordObserver } from '../log/logger.js';
import { HandlerStats } from './handler-stats.js';

/** One record as `status` shows it: when, what, and its fields (the service left out). */
export type RecentRecord = {
  readonly time: string;
  readonly event: string;
  readonly fields: { readonly [key: string]: LogJson };
};

/** How many records of each service are kept. */
export const recentPerService = 5;

/** A record as kept: what the logger was given; formatted only when `status` asks. */
type KeptRecord = {
  readonly at: number;
  readonly event: string;
  readonly fields: LogFields;
  readonly bound: LogFields;
};

/** A service's last records: a ring of `recentPerService`, `next` the slot written next. */
type Ring = { readonly records: KeptRecord[]; next: number };

export class RecentRecords {
  private readonly byService = new Map<string, Ring>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * A createLogger `observe`: every record that names a service is kept as given (it sits on
   * the per-connection path: nothing is copied or formatted here), over the oldest once full.
   */
  readonly observe = (event: LogEvent, fields: LogFields, bound: LogFields): void => {
    const service = fields.service ?? bound.service;
    if (typeof service !== 'string') return;
    let ring = this.byService.get(service);
    if (ring === undefined) {
      ring = { records: [], next: 0 };
      this.byService.set(service, ring);
    }
    ring.records[ring.next] = { at: this.now(), event, fields, bound };
    ring.next = (ring.next + 1) % recentPerService;
  };

  /** The service's last records, oldest first. */
  of(service: string): readonly RecentRecord[] {
    const ring = this.byService.get(service);
    if (ring === undefined) return [];
    const { records, next } = ring;
    const ordered = [...records.slice(next), ...records.slice(0, next)];
    return ordered.map(({ at, event, fields, bound }) => {
      const defined = Object.entries({ ...bound, ...fields }).filter(
        (e): e is [string, LogJson] => e[1] !== undefined && e[0] !== 'service',
      );
      return { time: new Date(at).toISOString(), event, fields: Object.fromEntries(defined) };
    });
  }
}

/** One createLogger `observe` that calls each of `observers` in turn. */
export function observeAll(...observers: readonly RecordObserver[]): RecordObserver {
  return (event, fields, bound) => {
    for (const observe of observers) observe(event, fields, bound);
  };
}

/**
 * What serve keeps from its own records, whatever the log level or target: handler exits and
 * durations (metrics), each service's last records (status), and the one `observe` feeding both.
 */
export function createRecordKeepers(): {
  stats: HandlerStats;
  recent: RecentRecords;
  observe: RecordObserver;
} {
  const stats = new HandlerStats();
  const recent = new RecentRecords();
  return { stats, recent, observe: observeAll(stats.observe, recent.observe) };
}
