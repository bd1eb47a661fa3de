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
  private readonly perPeer = new Map<string, number>();

  /** The running handlers by connection id (read only: `add` and `remove` keep it). */
  get running(): ReadonlyMap<string, RunningHandler> {
    return this.byConn;
  }

  add(handler: RunningHandler): void {
    this.byConn.set(handler.conn, handler);
    const key = peerSourceOf(handler.peer);
    this.perPeer.set(key, (this.perPeer.get(key) ?? 0) + 1);
  }

  /** Takes an ended handler out (nothing when it is not in the table). */
  remove(handler: RunningHandler): void {
    if (!this.byConn.delete(handler.conn)) return;
    const key = peerSourceOf(handler.peer);
    const left = (this.perPeer.get(key) ?? 1) - 1;
    if (left > 0) this.perPeer.set(key, left);
    else this.perPeer.delete(key);
  }

  /** Handlers running for the same peer as `peer`. */
  countFromPeer(peer: Peer): number {
    return this.perPeer.get(peerSourceOf(peer)) ?? 0;
  }
}

function peerSourceOf(peer: Peer): string {
  return peer.kind === 'tcp' ? `tcp ${peer.remoteAddress}` : `uid ${peer.uid ?? '?'}`;
}
