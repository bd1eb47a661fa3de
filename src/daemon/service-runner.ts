import { closeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { ListenAddress, ServiceSpec } from '../config/types.js';
import type { EventLog } from '../log/events.js';
import { netAccept, type AcceptBackend } from '../listen/accept-backend.js';
import type { BoundListener, CloseOptions } from '../listen/bound-listener.js';
import type { BindOptions } from '../listen/listener.js';
import type { ListenerEvents } from '../listen/native-accept.js';
import { formatListenAddress } from '../config/listen-address.js';
import type { Spawner } from '../model/spawn.js';
import type { RefuseReason } from '../limits/reasons.js';
import type { QueuedConnection } from '../connection/handler-queue.js';
import type { PassedWaiter } from '../connection/carried-waiter.js';
import type { RunningHandler } from '../connection/handler-table.js';
import { ServiceConnections } from '../connection/service-connections.js';
import type { ServiceCounters } from '../connection/service-connections-options.js';
import { createSharedLimits, type SharedLimits } from '../connection/shared-limits.js';
import { terminateHandlers } from '../connection/terminate.js';
import { asProxyAddon } from '../connection/proxy-copy.js';
import type { ActivationServer, ProcessStatus } from '../connection/activation-server.js';
import { createActivation } from '../connection/activation-create.js';
import type { AdoptedProcess, ProcessHandOver } from '../connection/activation-carry.js';
import { ExitCode, FatalError } from '../model/errors.js';
import { serveBuiltinDatagrams } from '../connection/builtin-datagrams.js';

export interface RunnerDeps {
  readonly spawner: Spawner;
  readonly log: EventLog;
  readonly now: () => number;
  /**
   * How listeners accept and a Unix peer's credentials are read (createAcceptBackend, made once
   * at start). Default: net.Server accepts, no credentials.
   */
  readonly accept?: AcceptBackend;
  /**
   * The daemon-wide handler table, global cap and load average, shared by every runner of one
   * daemon (createSharedLimits({ globalMax })). Default: a table of this runner's own.
   */
  readonly shared?: SharedLimits;
  /** Monotonic ms for token buckets, queue and runtime deadlines (default performance.now). */
  readonly clock?: () => number;
}

/** One service at run time: its listeners, its running handlers and its counters. */
export class ServiceRunner {
  /** Replaced by a reload (`replaceSpec`); running handlers keep the one they started with. */
  spec: ServiceSpec;
  private listeners: BoundListener[] = [];
  private readonly accept: AcceptBackend;
  private readonly log: EventLog;
  /** The service's connections: the handlers running, the queue, the counters. */
  private readonly connections: ServiceConnections;
  /** `accept: false`: the server that holds the sockets and runs the process (with the addon). */
  private readonly activation: ActivationServer | null;
  private readonly now: () => number;

  constructor(spec: ServiceSpec, deps: RunnerDeps) {
    this.spec = spec;
    this.accept = deps.accept ?? netAccept;
    this.log = deps.log.child({ service: spec.name });
    this.connections = new ServiceConnections({
      ...deps,
      peerCredentials: (fd) => this.accept.peerCredentials(fd),
      spec: () => this.spec,
      log: this.log,
      clock: deps.clock ?? (() => performance.now()),
      shared: deps.shared ?? createSharedLimits(),
      proxyAddon: asProxyAddon(this.accept.holder),
    });
    this.activation = createActivation(this, { ...deps, log: this.log });
    this.now = deps.now;
    for (const w of spec.warnings) this.log.log('warn', 'config-warning', { ...w });
  }

  /**
   * The handlers running now, by connection id; for an `accept: false` service its process (what
   * stop, quiesce, drain, kill and shutdown end or signal).
   */
  get handlers(): ReadonlyMap<string, RunningHandler> {
    return this.activation?.handlers ?? this.connections.handlers;
  }

  /** The handlers started for connections (none with `accept: false`). */
  get connectionHandlers(): ReadonlyMap<string, RunningHandler> {
    return this.connections.handlers;
  }

  /** `accept: false`: its process (pid, uptime, restarts, last exit); null otherwise. */
  get process(): ProcessStatus | null {
    return this.activation?.status() ?? null;
  }

  get counters(): ServiceCounters {
    return this.connections.counters;
  }

  /** Counters carried over by a hand-over from its predecessor. */
  restoreCounters(counters: Partial<ServiceCounters>): void {
    this.connections.restoreCounters(counters);
  }

  /** Connections refused since this runner started, per reason (zeros included). */
  refusedCounts(): Record<RefuseReason, number> {
    return this.connections.refusedCounts();
  }

  /** Connections waiting in the queue (`limits.onLimit: queue`), accepted and unread. */
  get queueLength(): number {
    return this.connections.queueLength;
  }

  /** Closes every queued connection unserved (`queue-dropped` records); returns how many. */
  closeQueue(): number {
    return this.connections.closeQueue();
  }

  /** Takes the queued connections out, still open, in arrival order (a hand-over). */
  takeQueue(): QueuedConnection[] {
    return this.connections.takeQueue();
  }

  /**
   * Puts connections taken by `takeQueue` back at the head of the queue (a failed hand-over) and
   * starts those that every cap admits now (unless `start` is false).
   */
  restoreQueue(waiters: readonly QueuedConnection[], start = true): void {
    this.connections.restoreQueue(waiters);
    if (start) this.connections.startWaiting();
  }

  /** Queues connections that waited in the predecessor, first, in order (a hand-over). */
  adoptWaiting(carried: readonly PassedWaiter[]): void {
    this.connections.adoptWaiting(carried);
  }

  /** Starts queued connections while slots are free, in arrival order across every service. */
  startWaiting(): void {
    this.connections.startWaiting();
  }

  get boundAddresses(): string[] {
    return this.listeners.map((l) => l.bound);
  }

  /** Binds every address of the service; on a failure unbinds what was bound and throws. */
  async bind(): Promise<void> {
    for (const address of this.spec.listen) {
      try {
        await this.addListener(address);
      } catch (error) {
        await this.closeListeners();
        throw error;
      }
    }
  }

  /** Stops accepting and removes the Unix paths this service created (unless `keepPath`). */
  async closeListeners(options: CloseOptions = {}): Promise<void> {
    this.activation?.release();
    const closing = this.listeners;
    this.listeners = [];
    await Promise.all(closing.map((l) => l.close(options)));
  }

  /**
   * SIGTERM to every handler's process group, SIGKILL after `graceMs`; resolves when all ended.
   * With the listeners closed (stop, shutdown) queued connections are closed first, or each exit
   * would start one; still listening (quiesce), they start fresh handlers as slots free.
   */
  async terminateAll(graceMs: number): Promise<void> {
    if (this.listeners.length === 0) this.closeQueue();
    await terminateHandlers([...this.handlers.values()], graceMs);
  }

  /** The listeners bound now (a reload keeps, replaces or closes them one by one). */
  get boundListeners(): readonly BoundListener[] {
    return this.listeners;
  }

  /** New connections get `spec` (same name); running handlers keep the definition they had. */
  replaceSpec(spec: ServiceSpec): void {
    this.spec = spec;
  }

  /** Binds one more address, or serves the inherited listening socket `fd` for it. Throws. */
  async addListener(
    address: ListenAddress,
    options: BindOptions & { readonly fd?: number } = {},
  ): Promise<BoundListener> {
    const events: ListenerEvents = {
      onConnection: (incoming) => this.connections.accept(incoming, address),
      onError: (error) => this.reportAcceptError(address, error),
    };
    const socket = this.spec.socket;
    const hold = this.spec.activation !== null;
    if (hold && this.activation === null)
      throw new FatalError(
        `service ${this.spec.name}: accept: false needs socketeer's native addon, which is not built`,
        ExitCode.permanent,
      );
    const listener =
      address.kind === 'udp' && this.spec.builtin !== null
        ? await serveBuiltinDatagrams({
            address,
            fd: options.fd,
            admission: this.connections,
            builtin: () => this.spec.builtin,
            socket: () => this.spec.socket,
            log: this.log,
            now: this.now,
            onError: (error) => events.onError(error),
          })
        : await this.accept.listen({ ...options, address, socket, events, hold });
    this.listeners.push(listener);
    this.log.log('info', 'listen', {
      address: listener.bound,
      ...(options.fd === undefined ? {} : { fd: options.fd }),
    });
    if (hold) this.holdWhenComplete();
    return listener;
  }

  /** `accept: false`: once every address is bound, the activation server holds them in order. */
  private holdWhenComplete(): void {
    const order = this.spec.listen.map(formatListenAddress);
    const position = (l: BoundListener): number => order.indexOf(formatListenAddress(l.address));
    const held = [...this.listeners].sort((a, b) => position(a) - position(b));
    const sockets = held.flatMap((l) => (l.fd === null ? [] : [{ fd: l.fd, bound: l.bound }]));
    if (sockets.length !== order.length) return;
    this.activation?.hold(sockets);
  }

  /** Stops one listener (and its Unix path if still ours). */
  async removeListener(listener: BoundListener, options: CloseOptions = {}): Promise<void> {
    // a reload binds it anew (stop, drain and removal close every listener: closeListeners)
    if (this.listeners.includes(listener)) this.activation?.release({ keepStore: true });
    this.listeners = this.listeners.filter((l) => l !== listener);
    await listener.close(options);
    // a reload that bound the new socket before closing the old one: complete again
    if (this.activation !== null) this.holdWhenComplete();
  }

  /**
   * Counts a handler started by the socketeer process this one took over from as one of this
   * service's: limits, status, quiesce and kill see it until `handler.outcome` resolves.
   */
  adoptHandler(handler: RunningHandler): void {
    this.connections.adopt(handler);
  }

  /** A hand-over: an `accept: false` service's process, counters and fds; null if it accepts. */
  carryProcess(): ProcessHandOver | null {
    return this.activation?.carry() ?? null;
  }

  /** Taken over: the previous daemon's process (one that accepts now counts it as a handler). */
  adoptProcess(adopted: AdoptedProcess): void {
    if (this.activation !== null) return this.activation.adopt(adopted);
    adopted.stderr?.destroy();
    // no activation server here to keep them: the process's notify socket and stored fds close
    for (const fd of [adopted.notify?.fd ?? -1, ...adopted.stored.map((s) => s.fd)])
      if (fd >= 0) closeSync(fd);
    if (adopted.handler !== null) this.adoptHandler(adopted.handler);
  }

  /** A hand-over: the process runs on, the sockets stay held, nothing starts it; false: none. */
  suspendHolding(): boolean {
    if (this.activation === null || this.listeners.length === 0) return false;
    this.activation.release({ keepProcess: true });
    return true;
  }

  resumeHolding(): void {
    this.holdWhenComplete();
  }

  /** A take-over that failed: an adopted process is left to the previous daemon, unsignalled. */
  disownProcess(): void {
    this.activation?.disown();
  }

  private reportAcceptError(address: ListenAddress, error: NodeJS.ErrnoException): void {
    const listener = this.listeners.find((l) => l.address === address);
    this.log.log('error', 'accept-failed', {
      address: listener?.bound ?? formatListenAddress(address),
      code: error.code ?? 'EUNKNOWN',
      error: error.message,
    });
  }
}
