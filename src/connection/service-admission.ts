import {
  describeConnection,
  startHandler,
  type AcceptedConnection,
  type RunningHandler,
} from './accept-connection.js';
import { createAdmissionGate, toAccessPeer, type AdmissionGate } from './admission-gate.js';
import type { AdmitDecision } from './admit.js';
import { formatPeer, type PeerCredentials } from '../model/peer.js';
import { refuseConnection } from './refuse-connection.js';
import type { ListenAddress, ServiceSpec } from '../config/types.js';
import type { SlotsInput } from '../limits/checks.js';
import { describeQueueGone, describeQueueTimeout } from '../limits/queue.js';
import { createRefuseCounters, type RefuseReason } from '../limits/reasons.js';
import { sourceKeyOf } from '../limits/source-key.js';
import type { IncomingConnection } from '../listen/incoming.js';
import type { EventLog } from '../log/events.js';
import type { Spawner } from '../model/spawn.js';
import { HandlerQueue, type QueuedConnection } from './handler-queue.js';
import { toQueuedConnection, type PassedWaiter } from './carried-waiter.js';
import { PeerCounts } from './peer-counts.js';
import { armRuntimeTimer } from './runtime-timer.js';
import type { QueueSource, SharedLimits } from './shared-limits.js';

export interface AdmissionDeps {
  /** The service's definition now (a reload may replace it; new connections get the new one). */
  readonly spec: () => ServiceSpec;
  readonly spawner: Spawner;
  /** Bound to `{service}`. */
  readonly log: EventLog;
  /** Wall-clock ms (records, `access.times`). */
  readonly now: () => number;
  /** Monotonic ms (buckets, queue deadlines, runtime limits). */
  readonly clock: () => number;
  readonly peerCredentials: (fd: number) => PeerCredentials | null;
  readonly shared: SharedLimits;
  /** The runner's live handlers and counters, kept up to date here. */
  readonly handlers: Map<string, RunningHandler>;
  readonly counters: { accepted: number; spawnFailed: number };
}

/** How often at most a full queue is swept for waiters whose peer has gone (ms). */
const sweepIntervalMs = 1000;

/**
 * One service's connection path after accept(2): describe the peer, decide (access, time, load,
 * rate, caps) before any fork, then start the handler, queue the unread connection, or refuse
 * it with one `refuse` record and a counter per reason; runtime limits on started handlers.
 */
export class ServiceAdmission {
  private readonly refused = createRefuseCounters();
  private readonly deps: AdmissionDeps;
  private readonly gate: AdmissionGate;
  private readonly queue: HandlerQueue;
  private readonly queueSource: QueueSource;
  /** When a full queue was last swept for gone peers (clock ms). */
  private lastSweep = Number.NEGATIVE_INFINITY;
  private readonly peerCounts = new PeerCounts();

  constructor(deps: AdmissionDeps) {
    this.deps = deps;
    this.gate = createAdmissionGate({
      service: deps.spec().name,
      policy: () => deps.spec().admitPolicy,
      connections: deps.shared.table,
      globalMax: deps.shared.globalMax,
      loadAverage1: () => deps.shared.loadAverage1(),
      clock: deps.clock,
      wallNow: deps.now,
      queueLength: () => this.queue.length,
    });
    this.queueSource = {
      firstStartable: () => this.queue.findStartable(this.slots())?.arrival ?? null,
      startFirst: () => this.startFirstWaiter(),
    };
    this.queue = new HandlerQueue({
      limits: () => deps.spec().limits,
      clock: deps.clock,
      onExpired: (waiter, now) =>
        this.refuse(waiter.accepted, {
          reason: 'queue-timeout',
          detail: describeQueueTimeout(
            { ...waiter, enqueuedAt: Math.round(waiter.enqueuedAt) },
            deps.spec().limits,
            Math.round(now),
          ),
          banner: null,
        }),
      onOccupied: (isOccupied) =>
        isOccupied
          ? deps.shared.watchQueue(this.queueSource)
          : deps.shared.unwatchQueue(this.queueSource),
    });
  }

  get queueLength(): number {
    return this.queue.length;
  }

  /** Connections refused since the runner started, per reason. */
  refusedCounts(): Record<RefuseReason, number> {
    return { ...this.refused };
  }

  /** The path of one accepted connection (`n` numbers it). Never throws. */
  accept(incoming: IncomingConnection, listener: ListenAddress, n: number): void {
    const accepted = describeConnection(this.deps, incoming, listener, n);
    if (accepted === null) {
      this.deps.counters.spawnFailed += 1;
      return;
    }
    this.sweepGoneIfFull();
    const decision = this.gate.decide(accepted.peer);
    if (decision.kind === 'admit') this.start(accepted, decision.sourceKey, null);
    else if (decision.kind === 'queue') this.enqueue(accepted, decision);
    else this.refuse(accepted, decision);
  }

  /**
   * Counts a running handler started elsewhere (a hand-over) against this service's caps until
   * its outcome resolves; its exit frees the slot like any other.
   */
  adopt(handler: RunningHandler): void {
    const { shared } = this.deps;
    const spec = this.deps.spec();
    const sourceKey = sourceKeyOf(toAccessPeer(handler.peer), spec.limits.perSourcePrefix6);
    this.track(handler);
    shared.table.add(spec.name, sourceKey);
    void handler.outcome.then(() => {
      this.untrack(handler);
      shared.release(spec.name, sourceKey);
    });
  }

  /**
   * Takes every queued connection out of the queue, in arrival order, still open (a hand-over
   * passes them on, or gives them back with `restoreQueue`).
   */
  takeQueue(): QueuedConnection[] {
    return this.queue.takeAll();
  }

  /**
   * Puts connections that waited elsewhere (a hand-over) or were taken out (`takeQueue`) back at
   * the head of the queue, in the order given; nothing starts until `shared.drain()`.
   */
  restoreQueue(waiters: readonly QueuedConnection[]): void {
    this.queue.restore(waiters);
  }

  /**
   * A connection that waited in the previous process's queue: `fd` received from it, `waitedMs`
   * already waited there (counted against `queueTimeoutSec`), `arrival` its place in the FIFO.
   */
  carriedWaiter(carried: PassedWaiter): QueuedConnection {
    const { log, spec, clock } = this.deps;
    return toQueuedConnection(carried, {
      log,
      perSourcePrefix6: spec().limits.perSourcePrefix6,
      now: clock(),
    });
  }

  /** Starts waiters while slots are free, in arrival order across services (after a hand-over). */
  startWaiting(): void {
    this.deps.shared.drain();
  }

  /** Closes every queued connection unserved (the service stops); returns how many. */
  closeQueue(): number {
    const dropped = this.queue.takeAll();
    const now = this.deps.clock();
    for (const { accepted, enqueuedAt } of dropped) {
      accepted.log.log('info', 'queue-dropped', {
        peer: formatPeer(accepted.peer),
        waitedMs: Math.round(now - enqueuedAt),
      });
      accepted.incoming.close();
    }
    return dropped.length;
  }

  private start(accepted: AcceptedConnection, sourceKey: string, waitedMs: number | null): void {
    const { shared, counters, clock } = this.deps;
    const spec = this.deps.spec();
    shared.table.add(spec.name, sourceKey);
    let cancelTimer: (() => void) | null = null;
    startHandler(
      {
        service: spec,
        spawner: this.deps.spawner,
        now: this.deps.now,
        countFromSource: (peer) => this.peerCounts.countOf(peer),
        onStart: (handler, ending) => {
          this.track(handler);
          const { pid } = handler;
          const timer = { pid, ending, limits: spec.limits, startedAt: clock(), clock };
          cancelTimer = armRuntimeTimer({ ...timer, log: accepted.log });
        },
        onEnd: (handler) => {
          this.untrack(handler);
          cancelTimer?.();
        },
        onSpawnFailed: () => (counters.spawnFailed += 1),
        onGone: () => shared.release(spec.name, sourceKey),
      },
      accepted,
      waitedMs,
    );
  }

  private enqueue(accepted: AcceptedConnection, decision: AdmitDecision & { kind: 'queue' }): void {
    const { sourceKey, reason, detail } = decision;
    const arrival = this.deps.shared.nextArrival();
    this.queue.push({ accepted, sourceKey, enqueuedAt: this.deps.clock(), arrival });
    accepted.log.log('info', 'queue', {
      peer: formatPeer(accepted.peer),
      reason,
      detail,
      queueLength: this.queue.length,
    });
  }

  private refuse(
    accepted: AcceptedConnection,
    refusal: { reason: RefuseReason; detail: string; banner: string | null },
  ): void {
    this.refused[refusal.reason] += 1;
    refuseConnection(accepted, refusal);
  }

  /**
   * Starts the first startable waiter, or closes it (`queue-gone`) if its peer has left while it
   * waited: the drain then calls again for the slot that is still free.
   */
  private startFirstWaiter(): void {
    const waiter: QueuedConnection | null = this.queue.findStartable(this.slots());
    if (waiter === null) return;
    this.queue.remove(waiter);
    const waitedMs = Math.round(this.deps.clock() - waiter.enqueuedAt);
    if (waiter.accepted.incoming.isPeerGone()) {
      const detail = describeQueueGone(waitedMs);
      this.refuse(waiter.accepted, { reason: 'queue-gone', detail, banner: null });
      return;
    }
    this.start(waiter.accepted, waiter.sourceKey, waitedMs);
  }

  /**
   * A full queue first closes the waiters whose peer has gone (`queue-gone`), so that clients
   * that left cannot keep it full against live ones. At most once a second (one poll per
   * waiter), so that a queue kept full by live clients costs little per connection.
   */
  private sweepGoneIfFull(): void {
    const { limits } = this.deps.spec();
    if (limits.onLimit !== 'queue' || this.queue.length < limits.queueSize) return;
    const now = this.deps.clock();
    if (now - this.lastSweep < sweepIntervalMs) return;
    this.lastSweep = now;
    for (const waiter of this.queue.removeWhere((w) => w.accepted.incoming.isPeerGone())) {
      const detail = describeQueueGone(now - waiter.enqueuedAt);
      this.refuse(waiter.accepted, { reason: 'queue-gone', detail, banner: null });
    }
  }

  private slots(): Omit<SlotsInput, 'sourceKey'> {
    const { shared } = this.deps;
    const spec = this.deps.spec();
    return {
      limits: spec.limits,
      service: spec.name,
      connections: shared.table,
      globalMax: shared.globalMax,
    };
  }

  /** A running handler: in the runner's table, and counted for its peer (`TCPCONNNUM`). */
  private track(handler: RunningHandler): void {
    this.deps.handlers.set(handler.conn, handler);
    this.peerCounts.add(handler.peer);
  }

  private untrack(handler: RunningHandler): void {
    if (!this.deps.handlers.delete(handler.conn)) return;
    this.peerCounts.remove(handler.peer);
  }
}
