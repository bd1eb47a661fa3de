import { hasFreeSlot, type SlotsInput } from './checks.js';
import type { ResolvedLimits } from './settings.js';

/** What happens to a connection refused by a concurrency cap (instances, perSource, global). */
export type LimitAction = 'close' | 'banner' | 'queue' | 'queue-full';

/** `limits.onLimit` applied: `queue` while fewer than `queueSize` wait, else `queue-full`. */
export function decideLimitAction(limits: ResolvedLimits, queueLength: number): LimitAction {
  if (limits.onLimit !== 'queue') return limits.onLimit;
  return queueLength < limits.queueSize ? 'queue' : 'queue-full';
}

/** Whether a connection over a concurrency cap goes into the queue. */
export function shouldQueue(limits: ResolvedLimits, queueLength: number): boolean {
  return decideLimitAction(limits, queueLength) === 'queue';
}

/** A queued connection: accepted, nothing read. */
export interface Waiter {
  readonly sourceKey: string;
  /** When it was queued (ms, the daemon's clock). */
  readonly enqueuedAt: number;
}

/** When the waiter times out: `enqueuedAt + queueTimeoutSec` (ms). */
export function waiterDeadline(waiter: Waiter, limits: ResolvedLimits): number {
  return waiter.enqueuedAt + limits.queueTimeoutSec * 1000;
}

/**
 * Splits the queue at `now`: waiters whose deadline has come (`now >= deadline`; refuse them
 * with reason `queue-timeout`) and the rest, both in arrival order.
 */
export function splitExpiredWaiters<T extends Waiter>(
  waiters: readonly T[],
  limits: ResolvedLimits,
  now: number,
): { expired: T[]; waiting: T[] } {
  const expired: T[] = [];
  const waiting: T[] = [];
  for (const waiter of waiters) {
    (now >= waiterDeadline(waiter, limits) ? expired : waiting).push(waiter);
  }
  return { expired, waiting };
}

/**
 * The index of the first waiter, in arrival order, that every concurrency cap would admit now,
 * or -1. A waiter held back by its own source's cap does not block later waiters from other
 * sources. Call it whenever a handler exits (after `remove`), until it returns -1.
 */
export function findStartableWaiter(
  waiters: readonly Waiter[],
  input: Omit<SlotsInput, 'sourceKey'>,
): number {
  return waiters.findIndex((waiter) => hasFreeSlot({ ...input, sourceKey: waiter.sourceKey }));
}

/** The `refuse` detail of a queue timeout. */
export function describeQueueTimeout(waiter: Waiter, limits: ResolvedLimits, now: number): string {
  return `limits.queueTimeoutSec: waited ${now - waiter.enqueuedAt} ms of ${limits.queueTimeoutSec} s`;
}

/** The `refuse` detail of a waiter whose peer left before its handler started (`queue-gone`). */
export function describeQueueGone(waitedMs: number): string {
  return `the peer left while queued (waited ${Math.round(waitedMs)} ms)`;
}
