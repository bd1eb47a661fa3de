import type { BucketRate } from './settings.js';

/**
 * A token bucket updated in place, for paths that run once per log record or per chunk of a
 * handler's stderr and must not allocate there (token-bucket.ts is the immutable one that
 * admission decides over). Tokens may stand for records or bytes; `updatedAt` is ms from the
 * caller's monotonic clock.
 */
export interface Meter {
  tokens: number;
  updatedAt: number;
}

/** Tolerance for rounding of fractional rates (as in token-bucket.ts). */
const epsilon = 1e-9;

/** A meter at full capacity. */
export function createMeter(rate: BucketRate, now: number): Meter {
  return { tokens: rate.burst, updatedAt: now };
}

/**
 * Refills the meter up to `now` (`perSecond` tokens per 1000 ms, never above `burst`) and
 * returns its level. A clock that went backwards refills nothing.
 */
export function refillMeter(meter: Meter, rate: BucketRate, now: number): number {
  const elapsed = now - meter.updatedAt;
  if (elapsed > 0)
    meter.tokens = Math.min(rate.burst, meter.tokens + (elapsed * rate.perSecond) / 1000);
  meter.updatedAt = now;
  return meter.tokens;
}

/** Refills up to `now`, then takes `amount` tokens if the meter holds them all. */
export function spendMeter(meter: Meter, rate: BucketRate, amount: number, now: number): boolean {
  if (refillMeter(meter, rate, now) < amount - epsilon) return false;
  meter.tokens = Math.max(0, meter.tokens - amount);
  return true;
}

/** Whether the meter is back at `burst` at `now` (it then equals a fresh one). */
export function isMeterFull(meter: Meter, rate: BucketRate, now: number): boolean {
  return refillMeter(meter, rate, now) >= rate.burst - epsilon;
}
