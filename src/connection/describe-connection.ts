import type { ListenAddress } from '../config/types.js';
import type { IncomingConnection } from '../listen/incoming.js';
import type { EventLog } from '../log/events.js';
import { connectionId, formatPeer, type Peer, type PeerCredentials } from '../model/peer.js';
import { describePeer } from './describe-peer.js';

/** An accepted connection, described, before the admission decision. */
export interface AcceptedConnection {
  readonly incoming: IncomingConnection;
  readonly fd: number;
  readonly peer: Peer;
  readonly conn: string;
  /** Bound to `{service, conn}`. */
  readonly log: EventLog;
}

export interface DescribeContext {
  /** Bound to `{service}`. */
  readonly log: EventLog;
  readonly peerCredentials: (fd: number) => PeerCredentials | null;
  /** The listener that accepted it. */
  readonly listener: ListenAddress;
  /** The connection's number in its service (the `n` of its id). */
  readonly n: number;
}

/**
 * Describes an accepted (unread) connection: its fd, its peer and its connection id. Returns
 * null when it has no fd: then it is logged (`spawn-failed`, EBADF) and closed.
 */
export function describeConnection(
  incoming: IncomingConnection,
  context: DescribeContext,
): AcceptedConnection | null {
  const { fd } = incoming;
  const { listener } = context;
  const peer = describePeer(
    incoming.ends,
    listener,
    fd !== null && listener.kind === 'unix' ? context.peerCredentials(fd) : null,
  );
  const conn = connectionId(context.n, peer);
  const log = context.log.child({ conn });
  if (fd === null) {
    log.log('error', 'spawn-failed', {
      peer: formatPeer(peer),
      code: 'EBADF',
      error: 'the accepted socket has no file descriptor',
    });
    incoming.close();
    return null;
  }
  return { incoming, fd, peer, conn, log };
}
