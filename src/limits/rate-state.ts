import type { BucketRate } from './settings.js';
import {
  createSourceBuckets,
  defaultMaxSourceBuckets,
  pruneSourceBuckets,
  putSourceBucket,
  type SourceBuckets,
} from './source-buckets.js';
import type { TokenBucket } from './token-bucket.js';

/** The token buckets of one service: `limits.rate` and one per source for `perSourceRate`. */
export interface RateState {
  /** undefined: a full bucket. */
  service: TokenBucket | undefined;
  readonly sources: SourceBuckets;
}

/** The buckets after an admitted or queued connection took its tokens (null: no such rate). */
export interface RateCharge {
  readonly service: TokenBucket | null;
  readonly source: TokenBucket | null;
}

export function createRateState(maxSources = defaultMaxSourceBuckets): RateState {
  return { service: undefined, sources: createSourceBuckets(maxSources) };
}

/** Stores the charged buckets. Returns the source key evicted from the bounded map, or null. */
export function commitRateCharge(
  state: RateState,
  sourceKey: string,
  charge: RateCharge,
): string | null {
  if (charge.service !== null) state.service = charge.service;
  return charge.source === null ? null : putSourceBucket(state.sources, sourceKey, charge.source);
}

/** Drops per-source buckets that are full again at `now`; returns how many. */
export function pruneRateState(
  state: RateState,
  perSourceRate: BucketRate | null,
  now: number,
): number {
  if (perSourceRate === null) {
    const count = state.sources.entries.size;
    state.sources.entries.clear();
    return count;
  }
  return pruneSourceBuckets(state.sources, perSourceRate, now);
}
