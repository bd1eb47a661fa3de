import type { BucketRate } from './settings.js';

/**
 * A token bucket's state at `updatedAt` (ms, from the caller's clock: use a monotonic one).
 * Immutable: every operation returns a new value.
 */
export interface TokenBucket {
  readonly tokens: number;
  readonly updatedAt: number;
}

/**
 * Tolerance for floating-point rounding of fractional rates: a level within 1e-9 of a whole
 * token counts as that token (0.1/s for 10 s is one token even if the sum comes out 0.99999...).
 */
const epsilon = 1e-9;

/** A bucket at full capacity, as every bucket starts (and as a missing bucket counts). */
export function createBucket(rate: BucketRate, now: number): TokenBucket {
  return { tokens: rate.burst, updatedAt: now };
}

/**
 * The bucket refilled up to `now`: `perSecond` tokens per 1000 ms elapsed, never above `burst`.
 * A clock that went backwards refills nothing (and the bucket restarts from `now`).
 */
export function refillBucket(bucket: TokenBucket, rate: BucketRate, now: number): TokenBucket {
  const elapsed = Math.max(0, now - bucket.updatedAt);
  const tokens = Math.min(rate.burst, bucket.tokens + (elapsed * rate.perSecond) / 1000);
  return { tokens, updatedAt: now };
}

/** Whether the bucket holds a whole token at `now`. */
export function hasToken(bucket: TokenBucket, rate: BucketRate, now: number): boolean {
  return refillBucket(bucket, rate, now).tokens >= 1 - epsilon;
}

/** Takes one token at `now` if there is one; the bucket is refilled either way. */
export function takeToken(
  bucket: TokenBucket,
  rate: BucketRate,
  now: number,
): { ok: boolean; bucket: TokenBucket } {
  const refilled = refillBucket(bucket, rate, now);
  if (refilled.tokens < 1 - epsilon) return { ok: false, bucket: refilled };
  return { ok: true, bucket: { tokens: Math.max(0, refilled.tokens - 1), updatedAt: now } };
}

/** Milliseconds from `now` until the bucket holds a whole token (0: it holds one now). */
export function msUntilToken(bucket: TokenBucket, rate: BucketRate, now: number): number {
  const missing = 1 - refillBucket(bucket, rate, now).tokens;
  return missing <= epsilon ? 0 : Math.ceil((missing * 1000) / rate.perSecond - 1e-6);
}

/** Whether the bucket is back at `burst` at `now`: it then equals a fresh bucket. */
export function isBucketFull(bucket: TokenBucket, rate: BucketRate, now: number): boolean {
  return refillBucket(bucket, rate, now).tokens >= rate.burst - epsilon;
}
