import { sourceKeyOf } from '../limits/source-key.js';
import { AcceptedFd } from '../listen/incoming.js';
import type { EventLog } from '../log/events.js';
import type { Peer } from '../model/peer.js';
import type { QueuedConnection } from './handler-queue.js';

/** A connection passed from the previous process's queue (a hand-over), its fd received. */
export interface PassedWaiter {
  readonly fd: number;
  readonly conn: string;
  readonly peer: Peer;
  /** How long it had waited there (ms), counted against `queueTimeoutSec`. */
  readonly waitedMs: number;
  /** Its place in the daemon-wide FIFO (before every connection queued here). */
  readonly arrival: number;
}

/**
 * A connection that waited in the previous process's queue, as a waiter of this one's: its
 * `waitedMs` counts against `queueTimeoutSec` (`now` is the monotonic clock), `arrival` keeps
 * its place in the FIFO.
 */
export function toQueuedConnection(
  carried: PassedWaiter,
  context: { readonly log: EventLog; readonly perSourcePrefix6: number; readonly now: number },
): QueuedConnection {
  const { fd, conn, peer } = carried;
  const accepted = {
    incoming: new AcceptedFd(fd, {}),
    fd,
    peer,
    conn,
    log: context.log.child({ conn }),
  };
  const sourceKey = sourceKeyOf(peer, context.perSourcePrefix6);
  const enqueuedAt = context.now - Math.max(0, carried.waitedMs);
  return { accepted, sourceKey, enqueuedAt, arrival: carried.arrival };
}
