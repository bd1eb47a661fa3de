import type { ConnectionCounts } from './connection-table.js';
import type { BucketRate, ResolvedLimits } from './settings.js';
import { createBucket, msUntilToken, takeToken, type TokenBucket } from './token-bucket.js';

/** `limits.maxLoad` against the 1-minute load average. */
export interface LoadCheck {
  readonly check: 'load';
  readonly isAllowed: boolean;
  readonly load: number;
  readonly max: number | null;
}

/** A token bucket: `limits.rate` (scope service) or `limits.perSourceRate` (scope source). */
export interface RateCheck {
  readonly check: 'rate';
  readonly scope: 'service' | 'source';
  readonly isAllowed: boolean;
  readonly rate: BucketRate | null;
  /** Tokens held at `now`, before taking one (null: no rate set). */
  readonly tokens: number | null;
  /** The bucket after taking the token, to store once the connection is admitted or queued. */
  readonly charged: TokenBucket | null;
  /** Milliseconds until a token is available (0 when allowed). */
  readonly waitMs: number;
}

/** A concurrency cap: `limits.instances`, `limits.perSource` or the daemon-wide cap. */
export interface SlotCheck {
  readonly check: 'slots';
  readonly scope: 'service' | 'source' | 'global';
  readonly isAllowed: boolean;
  readonly running: number;
  readonly max: number | null;
}

/** Refuses while the load average is strictly above `max`. */
export function checkLoad(max: number | null, load: number): LoadCheck {
  return { check: 'load', isAllowed: max === null || load <= max, load, max };
}

export interface RateInput {
  readonly scope: RateCheck['scope'];
  /** The configured rate (null: not set). */
  readonly rate: BucketRate | null;
  /** The stored bucket (undefined: full). */
  readonly bucket: TokenBucket | undefined;
  readonly now: number;
}

/** Whether the bucket holds a token at `now`; nothing is stored here. */
export function checkRate(input: RateInput): RateCheck {
  const { scope, rate, bucket, now } = input;
  if (rate === null) {
    return { check: 'rate', scope, isAllowed: true, rate, tokens: null, charged: null, waitMs: 0 };
  }
  const current = bucket ?? createBucket(rate, now);
  const taken = takeToken(current, rate, now);
  return {
    check: 'rate',
    scope,
    isAllowed: taken.ok,
    rate,
    tokens: taken.ok ? taken.bucket.tokens + 1 : taken.bucket.tokens,
    charged: taken.ok ? taken.bucket : null,
    waitMs: taken.ok ? 0 : msUntilToken(current, rate, now),
  };
}

export interface SlotsInput {
  readonly limits: ResolvedLimits;
  readonly service: string;
  readonly sourceKey: string;
  readonly connections: ConnectionCounts;
  /** The daemon-wide cap across services (null: none). */
  readonly globalMax: number | null;
}

/** The three concurrency caps in the order they are checked: service, source, global. */
export function checkSlots(input: SlotsInput): [SlotCheck, SlotCheck, SlotCheck] {
  const { limits, service, sourceKey, connections, globalMax } = input;
  return [
    slot('service', connections.countService(service), limits.instances),
    slot('source', connections.countSource(service, sourceKey), limits.perSource),
    slot('global', connections.countAll(), globalMax),
  ];
}

/** Whether every concurrency cap has a free slot (e.g. for a queued connection). */
export function hasFreeSlot(input: SlotsInput): boolean {
  return checkSlots(input).every((check) => check.isAllowed);
}

function slot(scope: SlotCheck['scope'], running: number, max: number | null): SlotCheck {
  return { check: 'slots', scope, isAllowed: max === null || running < max, running, max };
}

/** The config key a limit check reports under. */
export function labelOf(check: LoadCheck | RateCheck | SlotCheck): string {
  if (check.check === 'load') return 'limits.maxLoad';
  if (check.check === 'rate')
    return check.scope === 'service' ? 'limits.rate' : 'limits.perSourceRate';
  return { service: 'limits.instances', source: 'limits.perSource', global: 'global cap' }[
    check.scope
  ];
}

/** A limit check in words, e.g. `4 of 4 running (full)`. */
export function describeLimitCheck(check: LoadCheck | RateCheck | SlotCheck): string {
  switch (check.check) {
    case 'load':
      if (check.max === null) return 'not set';
      return `load ${check.load} ${check.isAllowed ? '<=' : '>'} ${check.max}`;
    case 'rate':
      if (check.rate === null || check.tokens === null) return 'not set';
      return (
        `${roundTokens(check.tokens)} of ${check.rate.burst} tokens` +
        (check.isAllowed ? '' : `, next in ${check.waitMs} ms`)
      );
    case 'slots':
      if (check.max === null) return `not set (${check.running} running)`;
      return `${check.running} of ${check.max} running${check.isAllowed ? '' : ' (full)'}`;
  }
}

function roundTokens(tokens: number): string {
  return String(Math.round(tokens * 1000) / 1000);
}
