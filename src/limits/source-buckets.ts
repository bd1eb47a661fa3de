import type { BucketRate } from './settings.js';
import { isBucketFull, type TokenBucket } from './token-bucket.js';

/**
 * The per-source token buckets of one service, bounded: at most `maxEntries` sources are
 * remembered. A source without an entry has a full bucket, so dropping a full bucket loses
 * nothing; when the store is at its bound, storing a new source evicts the least recently
 * charged one (which then starts again from a full bucket). Memory: about 220 bytes per entry
 * with an IPv6 /64 key (measured on Node 20), some 3.6 MB per service at the default bound; it
 * is only reached when that many distinct sources were charged since the last prune.
 */
export interface SourceBuckets {
  readonly maxEntries: number;
  /** Insertion order is recency order: the first entry is the least recently charged. */
  readonly entries: Map<string, TokenBucket>;
}

/** Default bound on remembered sources per service. */
export const defaultMaxSourceBuckets = 16384;

export function createSourceBuckets(maxEntries = defaultMaxSourceBuckets): SourceBuckets {
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new RangeError(`maxEntries must be a positive integer, not ${maxEntries}`);
  }
  return { maxEntries, entries: new Map() };
}

/** The source's bucket, or undefined (a full bucket). Does not change recency. */
export function findSourceBucket(store: SourceBuckets, key: string): TokenBucket | undefined {
  return store.entries.get(key);
}

/**
 * Stores the source's bucket as the most recently charged. Returns the key evicted to stay
 * within the bound, or null.
 */
export function putSourceBucket(
  store: SourceBuckets,
  key: string,
  bucket: TokenBucket,
): string | null {
  const isNew = !store.entries.delete(key);
  let evicted: string | null = null;
  if (isNew && store.entries.size >= store.maxEntries) {
    const oldest = store.entries.keys().next();
    if (oldest.done !== true) {
      store.entries.delete(oldest.value);
      evicted = oldest.value;
    }
  }
  store.entries.set(key, bucket);
  return evicted;
}

/**
 * Drops every bucket that has refilled to `burst` by `now` (the daemon calls this now and then,
 * e.g. once a minute). Returns how many were dropped.
 */
export function pruneSourceBuckets(store: SourceBuckets, rate: BucketRate, now: number): number {
  let dropped = 0;
  for (const [key, bucket] of store.entries) {
    if (isBucketFull(bucket, rate, now)) {
      store.entries.delete(key);
      dropped += 1;
    }
  }
  return dropped;
}
