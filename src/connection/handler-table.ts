import type { Peer } from '../model/peer.js';
import type { HandlerOutcome } from '../model/spawn.js';

/** How a handler was ended by the daemon; set by whoever signals it, read by the `end` record. */
export interface HandlerEnding {
  /** It ran past `limits.runtimeMaxSec`. */
  timedOut: boolean;
  /** The daemon sent SIGKILL to its process group (SIGTERM was not enough). */
  forced: boolean;
  /** The daemon asked it to end (the kill escalator's first signal: stop, quiesce, drain, reload). */
  requested?: boolean;
  /** The signal that asks it to end: the service's `killSignal` (SIGTERM by default). */
  readonly stopSignal?: NodeJS.Signals;
}

/** A handler that is running now, or a proxied connection (no process: `pid` null). */
export interface RunningHandler {
  readonly conn: string;
  /** null: a proxied connection, which `close` ends. */
  readonly pid: number | null;
  /** A proxied connection: closes both sides now (its outcome resolves once it has). */
  readonly close?: () => void;
  readonly peer: Peer;
  readonly startedAt: number;
  readonly outcome: Promise<HandlerOutcome>;
  /** Started here (not handed over): what its `end` record will say. */
  readonly ending?: HandlerEnding;
}

/**
 * One service's running handlers by connection id, and how many run per peer as
 * `TCPCONNNUM`/`IPCCONNNUM` count them (a TCP peer by its exact address, a Unix peer by its
 * uid), kept as handlers start and end: a connection's count is a look-up, not a walk.
 */
export class HandlerTable {
  private readonly byConn = new Map<string, RunningHandler>();
  /** Per peer: a TCP peer by its address, a Unix one by its uid (null: unknown). */
  private readonly perAddress = new Map<string, number>();
  private readonly perUid = new Map<number | null, number>();

  /** The running handlers by connection id (read only: `add` and `remove` keep it). */
  get running(): ReadonlyMap<string, RunningHandler> {
    return this.byConn;
  }

  add(handler: RunningHandler): void {
    this.byConn.set(handler.conn, handler);
    const { peer } = handler;
    if (peer.kind === 'tcp') increment(this.perAddress, peer.remoteAddress);
    else increment(this.perUid, peer.uid);
  }

  /** Takes an ended handler out (nothing when it is not in the table). */
  remove(handler: RunningHandler): void {
    if (!this.byConn.delete(handler.conn)) return;
    const { peer } = handler;
    if (peer.kind === 'tcp') decrement(this.perAddress, peer.remoteAddress);
    else decrement(this.perUid, peer.uid);
  }

  /** Handlers running for the same peer as `peer`. */
  countFromPeer(peer: Peer): number {
    const count =
      peer.kind === 'tcp' ? this.perAddress.get(peer.remoteAddress) : this.perUid.get(peer.uid);
    return count ?? 0;
  }
}

/** The keys are the peer's own strings: no key built per connection. */
function increment<K>(counts: Map<K, number>, key: K): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function decrement<K>(counts: Map<K, number>, key: K): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}
