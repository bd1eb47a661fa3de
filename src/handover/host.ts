// What a hand-over needs of the daemon, in both directions: the old process gives its listeners,
// queues, handlers and counters away; the new one serves them. The daemon implements it (its
// ServiceRunner is a HandoverService); nothing here imports the daemon.
import type { ListenAddress } from '../config/types.js';
import type { AdoptedProcess, ProcessHandOver } from '../connection/activation-carry.js';
import type { RunningHandler } from '../connection/handler-table.js';
import type { PassedWaiter } from '../connection/carried-waiter.js';
import type { QueuedConnection } from '../connection/handler-queue.js';
import type { EventLog } from '../log/events.js';

/** A listening socket as a hand-over passes it on (and binds it again if the hand-over fails). */
export interface HandedListener {
  readonly address: ListenAddress;
  /** The TCP port really bound (port 0 resolved); null for Unix. */
  readonly port: number | null;
  /** The listening socket's fd; null if Node shows none. */
  readonly fd: number | null;
}

export interface HandoverCounters {
  readonly accepted: number;
  readonly spawnFailed: number;
}

/** One service at run time, as a hand-over reads and changes it. */
export interface HandoverService {
  readonly spec: { readonly name: string; readonly listen: readonly ListenAddress[] };
  readonly boundListeners: readonly HandedListener[];
  readonly counters: HandoverCounters;
  /** The handlers started for connections (an `accept: false` service's process is not one). */
  readonly connectionHandlers: { values(): Iterable<RunningHandler> };
  /**
   * Binds `address` (a Unix path over what is there when `replace`; TCP port 0 as `port`), or
   * serves the inherited listening socket `fd` for it. Throws.
   */
  addListener(
    address: ListenAddress,
    options?: { readonly replace?: boolean; readonly port?: number; readonly fd?: number },
  ): Promise<unknown>;
  /** Stops accepting; Unix paths stay (another process serves them) when `keepPath`. */
  closeListeners(options?: { readonly keepPath?: boolean }): Promise<void>;
  /** The queued connections, taken out still open, in arrival order. */
  takeQueue(): QueuedConnection[];
  /** Puts taken connections back at the head of the queue; starts what fits unless `start` is false. */
  restoreQueue(waiters: readonly QueuedConnection[], start?: boolean): void;
  /** Closes every queued connection unserved; how many. */
  closeQueue(): number;
  /** The counters the previous process had reached. */
  restoreCounters(counters: Partial<HandoverCounters>): void;
  /** A handler the previous process started, counted here until its outcome. */
  adoptHandler(handler: RunningHandler): void;
  /** Connections that waited in the previous process's queue, queued ahead of any here. */
  adoptWaiting(carried: readonly PassedWaiter[]): void;
  /** Starts queued connections while slots are free, in arrival order across every service. */
  startWaiting(): void;
  /**
   * An `accept: false` service's process (running or not), its counters, and the fds to pass
   * with it (its stderr pipe: no longer read here until `resumeHolding`); null if it accepts.
   */
  carryProcess(): ProcessHandOver | null;
  /** The process and counters the previous process carried, adopted before the sockets are held. */
  adoptProcess(adopted: AdoptedProcess): void;
  /**
   * `accept: false`: the sockets stay held (not closed: the process holds them too) and the
   * process runs on, but nothing starts it here any more; false when it holds nothing.
   */
  suspendHolding(): boolean;
  /** After a failed hand-over: watches the held sockets again (or starts the process). */
  resumeHolding(): void;
}

/** The daemon, as the giving side of a hand-over (`upgrade`, SIGUSR2) sees it. */
export interface HandoverHost {
  readonly log: EventLog;
  /** Runs `fn` after every earlier operation that binds or closes listeners, and before later ones. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** Every service, in the daemon's order. */
  listServices(): readonly HandoverService[];
  /** The services whose addresses are not bound (stopped, draining): they stay so after it. */
  unboundServices(): readonly string[];
  /** Handlers running across every service. */
  readonly activeHandlers: number;
  /** The hand-over succeeded: no request is taken any more, and the handlers are left alone. */
  markHandedOver(): void;
}
