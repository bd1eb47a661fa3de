import type { ListenAddress, ServiceSpec } from '../config/types.js';
import type { SlotsInput } from '../limits/checks.js';
import { describeQueueGone, describeQueueTimeout } from '../limits/queue.js';
import { createRefuseCounters, type RefuseReason } from '../limits/reasons.js';
import { sourceKeyOf } from '../limits/source-key.js';
import type { IncomingConnection } from '../listen/incoming.js';
import { formatPeer, type Peer } from '../model/peer.js';
import { createAdmissionGate, type AdmissionGate } from './admission-gate.js';
import type { AdmitDecision, Refusal } from './admit.js';
import { toQueuedConnection, type PassedWaiter } from './carried-waiter.js';
import type { ConnectionServer } from './connection-server.js';
import { describeConnection, type AcceptedConnection } from './describe-connection.js';
import { HandlerQueue, type GoneWaiter, type QueuedConnection } from './handler-queue.js';
import { HandlerTable, type RunningHandler } from './handler-table.js';
import { dropConnection, refuseConnection } from './refuse-connection.js';
import { armRuntimeTimer } from './runtime-timer.js';
import type { QueueSource } from './shared-limits.js';
import { HeaderWaits } from './proxy-admission.js';
import { createProxyServer } from './proxy-server.js';
import { createBuiltinServer } from './builtin-server.js';
import { createSpawnServer } from './spawn-server.js';
import type { ServiceConnectionsOptions, ServiceCounters } from './service-connections-options.js';

/**
 * One service's connections, from accept(2) to the handler's exit: describe the peer, decide
 * (access, time, load, rate, caps) before any fork, then start a handler, queue the unread
 * connection, or refuse it. It owns what that path keeps: the running handlers, the counters,
 * the queue and the runtime timers; the runner and the status read them here.
 */
export class ServiceConnections {
  private readonly options: ServiceConnectionsOptions;
  private readonly count = { accepted: 0, spawnFailed: 0 };
  private readonly refused = createRefuseCounters();
  private readonly table = new HandlerTable();
  /** The siblings that serve connections: a spawned handler, a proxy, a builtin. */
  private readonly servers: Readonly<Record<'spawn' | 'proxy' | 'builtin', ConnectionServer>>;
  private readonly gate: AdmissionGate;
  private readonly queue: HandlerQueue;
  private readonly queueSource: QueueSource;
  /** Connections whose PROXY header is being read. */
  private readonly headerWaits = new HeaderWaits({
    admit: (accepted) => this.admit(accepted),
    refuse: (accepted, refusal) => this.refuse(accepted, refusal),
  });

  constructor(options: ServiceConnectionsOptions) {
    this.options = options;
    const { spec, shared, clock } = options;
    this.servers = {
      spawn: createSpawnServer(options),
      proxy: createProxyServer({ addon: options.proxyAddon ?? null, now: options.now }),
      builtin: createBuiltinServer(options.now),
    };
    this.gate = createAdmissionGate({
      service: spec().name,
      policy: () => spec().admitPolicy,
      connections: shared.table,
      globalMax: shared.globalMax,
      loadAverage1: () => shared.loadAverage1(),
      clock,
      wallNow: options.now,
      queueLength: () => this.queue.length,
    });
    this.queueSource = {
      firstStartable: () => this.queue.findStartable(this.slots())?.arrival ?? null,
      startFirst: () => this.startFirstWaiter(),
    };
    this.queue = new HandlerQueue({
      limits: () => spec().limits,
      clock,
      onExpired: (waiter, now) => this.expire(waiter, now),
      onOccupied: (isOccupied) =>
        isOccupied ? shared.watchQueue(this.queueSource) : shared.unwatchQueue(this.queueSource),
    });
  }

  /** The running handlers by connection id. */
  get handlers(): ReadonlyMap<string, RunningHandler> {
    return this.table.running;
  }

  get counters(): ServiceCounters {
    return { ...this.count };
  }

  /** Connections refused since the service started, per reason. */
  refusedCounts(): Record<RefuseReason, number> {
    return { ...this.refused };
  }

  get queueLength(): number {
    return this.queue.length;
  }

  /** Counters carried over from the process this one took over from (a hand-over). */
  restoreCounters(counters: Partial<ServiceCounters>): void {
    Object.assign(this.count, counters);
  }

  /** The path of one accepted connection, on `listener`. Never throws. */
  accept(incoming: IncomingConnection, listener: ListenAddress): void {
    this.count.accepted += 1;
    const { log, peerCredentials } = this.options;
    const context = { log, peerCredentials, listener, n: this.count.accepted };
    const accepted = describeConnection(incoming, context);
    if (accepted === null) {
      this.count.spawnFailed += 1;
      return;
    }
    const header = this.options.spec().socket.proxyHeader;
    if (header === null || accepted.peer.kind !== 'tcp') this.admit(accepted);
    else this.headerWaits.start(accepted, { header, log, n: context.n });
  }

  /** Decides on a described connection (its PROXY header read, if any): start, queue or refuse. */
  private admit(accepted: AcceptedConnection): void {
    for (const gone of this.queue.removeGoneIfFull()) this.refuseGone(gone);
    const decision = this.gate.decide(accepted.peer);
    if (decision.kind === 'admit') this.start(accepted, decision.sourceKey, null);
    else if (decision.kind === 'queue') this.enqueue(accepted, decision);
    else this.refuse(accepted, decision);
  }

  /** A `builtin` UDP datagram decided as a connection (never queued): null, or the refusal. */
  admitDatagram(peer: Peer): Refusal | null {
    const decision = this.gate.decide(peer);
    if (decision.kind === 'admit') return null;
    const refusal: Refusal = decision.kind === 'refuse' ? decision : { ...decision, banner: null };
    this.refused[refusal.reason] += 1;
    return refusal;
  }

  /** Counts a datagram refused outside admission (builtin-datagrams.ts). */
  countRefused(reason: RefuseReason): void {
    this.refused[reason] += 1;
  }

  /**
   * Counts a running handler started elsewhere (a hand-over) against this service's caps until
   * its outcome resolves; its exit frees the slot like any other.
   */
  adopt(handler: RunningHandler): void {
    const { shared } = this.options;
    const spec = this.options.spec();
    const sourceKey = sourceKeyOf(handler.peer, spec.limits.perSourcePrefix6);
    this.table.add(handler);
    shared.table.add(spec.name, sourceKey);
    void handler.outcome.then(() => {
      this.table.remove(handler);
      shared.release(spec.name, sourceKey);
    });
  }

  /**
   * Takes every queued connection out of the queue, in arrival order, still open (a hand-over
   * passes them on, or gives them back with `restoreQueue`). Connections whose PROXY header is
   * still being read are refused (`proxy-header`): no handler may start here after a hand-over.
   */
  takeQueue(): QueuedConnection[] {
    this.headerWaits.stopAll('the daemon handed over before the PROXY header was read');
    return this.queue.takeAll();
  }

  /**
   * Puts connections taken out by `takeQueue` back at the head of the queue, in the order given;
   * nothing starts until `startWaiting`.
   */
  restoreQueue(waiters: readonly QueuedConnection[]): void {
    this.queue.restore(waiters);
  }

  /**
   * Queues connections that waited in the previous process's queue (a hand-over), ahead of any
   * queued here, in the order given: `fd` received from it, `waitedMs` already waited there
   * (counted against `queueTimeoutSec`), `arrival` its place in the FIFO.
   */
  adoptWaiting(carried: readonly PassedWaiter[]): void {
    const { log, spec, clock } = this.options;
    const { perSourcePrefix6 } = spec().limits;
    this.queue.restore(
      carried.map((c) => toQueuedConnection(c, { log, perSourcePrefix6, now: clock() })),
    );
  }

  /** Starts waiters while slots are free, in arrival order across services (after a hand-over). */
  startWaiting(): void {
    this.options.shared.drain();
  }

  /** Closes every queued connection unserved (the service stops); returns how many. */
  closeQueue(): number {
    this.headerWaits.stopAll('the service stopped before the PROXY header was read');
    const dropped = this.queue.takeAll();
    const now = this.options.clock();
    for (const { accepted, enqueuedAt } of dropped) {
      dropConnection(accepted, Math.round(now - enqueuedAt));
    }
    return dropped.length;
  }

  /**
   * Serves an admitted connection (counted in the daemon-wide table under `sourceKey`) and
   * keeps what was started: in the handler table and under `limits.runtimeMaxSec` while it runs;
   * once it has ended (or never started), counted and uncounted, and its slot freed.
   */
  private start(accepted: AcceptedConnection, sourceKey: string, waitedMs: number | null): void {
    const { shared, clock } = this.options;
    const spec = this.options.spec();
    shared.table.add(spec.name, sourceKey);
    const peerHandlers = this.table.countFromPeer(accepted.peer);
    const server = this.serverFor(spec);
    const served = server.serve({ service: spec, accepted, peerHandlers, waitedMs });
    let stopTimer: (() => void) | null = null;
    if (served.kind === 'running') {
      const { handler, ending } = served;
      this.table.add(handler);
      const { limits } = spec;
      if (limits.runtimeMaxSec !== null) {
        const { pid, close } = handler;
        const timer = { pid, close, ending, limits, startedAt: clock(), clock };
        stopTimer = armRuntimeTimer({ ...timer, log: accepted.log });
      }
    }
    void served.ended.then((outcome) => {
      if (outcome.kind === 'spawn-failed') this.count.spawnFailed += 1;
      if (served.kind === 'running') this.table.remove(served.handler);
      stopTimer?.();
      shared.release(spec.name, sourceKey);
    });
  }

  /** The sibling that serves `spec`'s connections: proxy, builtin or a spawned handler. */
  private serverFor(spec: ServiceSpec): ConnectionServer {
    return this.servers[
      spec.proxy !== null ? 'proxy' : spec.builtin !== null ? 'builtin' : 'spawn'
    ];
  }

  private enqueue(accepted: AcceptedConnection, decision: AdmitDecision & { kind: 'queue' }): void {
    const { sourceKey, reason, detail } = decision;
    const arrival = this.options.shared.nextArrival();
    this.queue.push({ accepted, sourceKey, enqueuedAt: this.options.clock(), arrival });
    accepted.log.log('info', 'queue', {
      peer: formatPeer(accepted.peer),
      reason,
      detail,
      queueLength: this.queue.length,
    });
  }

  private refuse(accepted: AcceptedConnection, refusal: Refusal): void {
    this.refused[refusal.reason] += 1;
    refuseConnection(accepted, refusal);
  }

  /** A waiter reached `limits.queueTimeoutSec` (it is out of the queue already). */
  private expire(waiter: QueuedConnection, now: number): void {
    const { limits } = this.options.spec();
    const queued = { ...waiter, enqueuedAt: Math.round(waiter.enqueuedAt) };
    const detail = describeQueueTimeout(queued, limits, Math.round(now));
    this.refuse(waiter.accepted, { reason: 'queue-timeout', detail, banner: null });
  }

  /**
   * Starts the first startable waiter, or closes it (`queue-gone`) if its peer has left while it
   * waited: the drain then calls again for the slot that is still free.
   */
  private startFirstWaiter(): void {
    const waiter: QueuedConnection | null = this.queue.findStartable(this.slots());
    if (waiter === null) return;
    this.queue.remove(waiter);
    const waitedMs = Math.round(this.options.clock() - waiter.enqueuedAt);
    if (waiter.accepted.incoming.isPeerGone()) this.refuseGone({ waiter, waitedMs });
    else this.start(waiter.accepted, waiter.sourceKey, waitedMs);
  }

  /** A waiter whose peer left while it waited. */
  private refuseGone({ waiter, waitedMs }: GoneWaiter): void {
    const detail = describeQueueGone(waitedMs);
    this.refuse(waiter.accepted, { reason: 'queue-gone', detail, banner: null });
  }

  private slots(): Omit<SlotsInput, 'sourceKey'> {
    const { shared } = this.options;
    const spec = this.options.spec();
    return {
      limits: spec.limits,
      service: spec.name,
      connections: shared.table,
      globalMax: shared.globalMax,
    };
  }
}
