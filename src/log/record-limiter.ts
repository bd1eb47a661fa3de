import { createMeter, isMeterFull, spendMeter, type Meter } from '../limits/meter.js';
import type { BucketRate } from '../limits/settings.js';
import type { LogEvent, LogFields, LogJson, LogLevel } from './events.js';

/**
 * Records that a peer (or a local user) can cause as often as it likes, each with the field
 * that names its reason. Each (service, event, reason) has a token bucket of its own: a flood
 * of `refuse access` from one client does not hide a `refuse rate` or another service's records.
 */
export const limitedRecords: Readonly<Partial<Record<LogEvent, string>>> = {
  refuse: 'reason',
  queue: 'reason',
  'spawn-failed': 'code',
  'accept-failed': 'code',
  'control-refused': 'code',
  'control-bad-request': 'code',
  // a cgroup that cannot be had (EMFILE) is one warning per connection
  'process-tracking': 'reason',
  // another local user can reach an abstract NOTIFY_SOCKET from any number of pids
  'notify-refused': 'reason',
  'fd-store-refused': 'reason',
  // what an accept: false process may send as often as it likes (no reason field: one bucket
  // per service)
  'process-status': 'reason',
  'process-mainpid': 'reason',
  'fd-stored': 'reason',
  'fd-store-removed': 'reason',
};

/** `--log-burst` and `--log-rate` when not given. */
export const defaultRecordRate: BucketRate = { perSecond: 10, burst: 20 };

/** A suppressed count is summed up once none of its records was suppressed for this long, */
export const summaryQuietMs = 1000;
/** or, while the flood goes on, this long after the first record it counts. */
export const summaryMaxMs = 10_000;

/** One (service, event, reason): its bucket and what it suppressed since its last summary. */
interface Tally {
  readonly meter: Meter;
  /** The level of the records it counts, which their summary gets too. */
  level: LogLevel;
  suppressed: number;
  firstAt: number;
  lastAt: number;
}

/** What one `log-suppressed` record says. */
export interface SuppressedSummary {
  readonly level: LogLevel;
  /** null: a daemon-wide record (the control socket's). */
  readonly service: string | null;
  readonly record: LogEvent;
  readonly reason: string;
  readonly suppressed: number;
  /** From the first suppressed record it counts to the last. */
  readonly intervalMs: number;
}

/** The buckets and counts of every limited record kind seen; times are monotonic ms. */
export interface RecordLimiter {
  readonly rate: BucketRate;
  /** service ('' for daemon-wide records) → event → reason. */
  readonly tallies: Map<string, Map<LogEvent, Map<string, Tally>>>;
  /** How many tallies hold a suppressed count now. */
  pending: number;
}

export function createRecordLimiter(rate: BucketRate): RecordLimiter {
  return { rate, tallies: new Map(), pending: 0 };
}

/**
 * Whether a record may be written at `now`. A limited record over its bucket is counted
 * instead; every other record passes. Allocates nothing once its kind has been seen (hence
 * the positional arguments: this runs for every record, a refused connection's included).
 */
export function admitRecord(
  limiter: RecordLimiter,
  level: LogLevel,
  service: LogJson | undefined,
  event: LogEvent,
  fields: LogFields,
  now: number,
): boolean {
  const field = limitedRecords[event];
  if (field === undefined) return true;
  const reason = fields[field];
  const tally = tallyOf(limiter, service, event, typeof reason === 'string' ? reason : '', now);
  tally.level = level;
  if (spendMeter(tally.meter, limiter.rate, 1, now)) return true;
  if (tally.suppressed === 0) {
    tally.firstAt = now;
    limiter.pending += 1;
  }
  tally.suppressed += 1;
  tally.lastAt = now;
  return false;
}

/**
 * The summaries due at `now` (every pending one with `all`), their counts reset. Tallies that
 * count nothing and whose bucket is full again are dropped: they equal fresh ones.
 */
export function takeSummaries(
  limiter: RecordLimiter,
  now: number,
  all = false,
): SuppressedSummary[] {
  const due: SuppressedSummary[] = [];
  for (const [service, events] of limiter.tallies) {
    for (const [event, reasons] of events) {
      for (const [reason, tally] of reasons) {
        if (tally.suppressed > 0 && (all || isDue(tally, now))) {
          due.push({
            level: tally.level,
            service: service === '' ? null : service,
            record: event,
            reason,
            suppressed: tally.suppressed,
            intervalMs: Math.round(tally.lastAt - tally.firstAt),
          });
          tally.suppressed = 0;
          limiter.pending -= 1;
        }
        if (tally.suppressed === 0 && isMeterFull(tally.meter, limiter.rate, now))
          reasons.delete(reason);
      }
      if (reasons.size === 0) events.delete(event);
    }
    if (events.size === 0) limiter.tallies.delete(service);
  }
  return due;
}

function isDue(tally: Tally, now: number): boolean {
  return now - tally.lastAt >= summaryQuietMs || now - tally.firstAt >= summaryMaxMs;
}

function tallyOf(
  limiter: RecordLimiter,
  bound: LogJson | undefined,
  event: LogEvent,
  reason: string,
  now: number,
): Tally {
  const service = typeof bound === 'string' ? bound : '';
  let events = limiter.tallies.get(service);
  if (events === undefined)
    limiter.tallies.set(service, (events = new Map<LogEvent, Map<string, Tally>>()));
  let reasons = events.get(event);
  if (reasons === undefined) events.set(event, (reasons = new Map<string, Tally>()));
  let tally = reasons.get(reason);
  if (tally === undefined) {
    const meter = createMeter(limiter.rate, now);
    tally = { meter, level: 'info', suppressed: 0, firstAt: now, lastAt: now };
    reasons.set(reason, tally);
  }
  return tally;
}
