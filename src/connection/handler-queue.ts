import type { AcceptedConnection } from './describe-connection.js';
import type { SlotsInput } from '../limits/checks.js';
import {
  findStartableWaiter,
  splitExpiredWaiters,
  waiterDeadline,
  type Waiter,
} from '../limits/queue.js';
import type { ResolvedLimits } from '../limits/settings.js';

/** A connection waiting for a slot: accepted, not one byte read. */
export interface QueuedConnection extends Waiter {
  readonly accepted: AcceptedConnection;
  /** Daemon-wide arrival number (FIFO across services). */
  readonly arrival: number;
}

export interface HandlerQueueOptions {
  /** The service's limits now (a reload may change them). */
  readonly limits: () => ResolvedLimits;
  /** Monotonic ms, the clock of `enqueuedAt`. */
  readonly clock: () => number;
  /** A waiter reached `limits.queueTimeoutSec`; it is already out of the queue. */
  readonly onExpired: (waiter: QueuedConnection, now: number) => void;
  /** The queue went from empty to not empty (true) or back (false). */
  readonly onOccupied: (isOccupied: boolean) => void;
}

/** A waiter taken out because its peer left, and how long it had waited (ms). */
export interface GoneWaiter {
  readonly waiter: QueuedConnection;
  readonly waitedMs: number;
}

/** How often at most a full queue is swept for waiters whose peer has gone (ms). */
const sweepIntervalMs = 1000;

/**
 * One service's bounded FIFO of waiting connections (`limits.onLimit: queue`; the bound is
 * applied by the admission decision). One timer, for the oldest waiter's deadline.
 */
export class HandlerQueue {
  private waiters: QueuedConnection[] = [];
  private timer: NodeJS.Timeout | undefined;
  private wasOccupied = false;
  /** When the full queue was last swept for gone peers (clock ms). */
  private lastSweep = Number.NEGATIVE_INFINITY;
  private readonly options: HandlerQueueOptions;

  constructor(options: HandlerQueueOptions) {
    this.options = options;
  }

  get length(): number {
    return this.waiters.length;
  }

  push(waiter: QueuedConnection): void {
    this.waiters.push(waiter);
    if (this.waiters.length === 1) this.changed(true);
  }

  /** The first waiter, in arrival order, that every concurrency cap would admit now. */
  findStartable(slots: Omit<SlotsInput, 'sourceKey'>): QueuedConnection | null {
    return this.waiters[findStartableWaiter(this.waiters, slots)] ?? null;
  }

  remove(waiter: QueuedConnection): void {
    const index = this.waiters.indexOf(waiter);
    if (index === -1) return;
    this.waiters.splice(index, 1);
    if (index === 0) this.changed(this.waiters.length > 0);
  }

  /**
   * Puts `waiters` (in arrival order) before those waiting now: they arrived first (a failed
   * hand-over gives them back; a hand-over brings them from the previous process).
   */
  restore(waiters: readonly QueuedConnection[]): void {
    if (waiters.length === 0) return;
    this.waiters = [...waiters, ...this.waiters];
    this.changed(true);
  }

  /** Removes and returns, in arrival order, the waiters that pass `test`. */
  removeWhere(test: (waiter: QueuedConnection) => boolean): QueuedConnection[] {
    const head = this.waiters[0];
    const removed = this.waiters.filter(test);
    if (removed.length === 0) return removed;
    this.waiters = this.waiters.filter((w) => !removed.includes(w));
    if (this.waiters[0] !== head) this.changed(this.waiters.length > 0);
    return removed;
  }

  /**
   * A full queue gives up first the waiters whose peer has gone (to be refused `queue-gone`), so
   * that clients that left cannot keep it full against live ones. At most once a second (one
   * poll per waiter), so that a queue kept full by live clients costs little per connection.
   */
  removeGoneIfFull(): GoneWaiter[] {
    const limits = this.options.limits();
    if (limits.onLimit !== 'queue' || this.waiters.length < limits.queueSize) return [];
    const now = this.options.clock();
    if (now - this.lastSweep < sweepIntervalMs) return [];
    this.lastSweep = now;
    const gone = this.removeWhere((w) => w.accepted.incoming.isPeerGone());
    return gone.map((waiter) => ({ waiter, waitedMs: now - waiter.enqueuedAt }));
  }

  /** Empties the queue and returns what waited, in arrival order. */
  takeAll(): QueuedConnection[] {
    const all = this.waiters;
    this.waiters = [];
    if (all.length > 0) this.changed(false);
    return all;
  }

  /** The head changed: re-arm the timer for the new head; report occupancy edges. */
  private changed(isOccupied: boolean): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const head = this.waiters[0];
    if (head !== undefined) {
      const delay = waiterDeadline(head, this.options.limits()) - this.options.clock();
      this.timer = setTimeout(() => this.expire(), Math.max(1, Math.ceil(delay)));
    }
    if (isOccupied !== this.wasOccupied) {
      this.wasOccupied = isOccupied;
      this.options.onOccupied(isOccupied);
    }
  }

  private expire(): void {
    const now = this.options.clock();
    const { expired, waiting } = splitExpiredWaiters(this.waiters, this.options.limits(), now);
    this.waiters = waiting;
    this.changed(waiting.length > 0);
    for (const waiter of expired) this.options.onExpired(waiter, now);
  }
}
