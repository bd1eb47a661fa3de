import { formatPeer } from '../model/peer.js';
import type { Refusal } from './admit.js';
import type { AcceptedConnection } from './describe-connection.js';

/** Logs the one `refuse` record of a connection and closes it (after the banner, if any). */
export function refuseConnection(accepted: AcceptedConnection, refusal: Refusal): void {
  accepted.log.log('info', 'refuse', {
    peer: formatPeer(accepted.peer),
    reason: refusal.reason,
    detail: refusal.detail,
  });
  // unread: at once, or once the banner is handed to the kernel (which sends it, then FIN)
  if (refusal.banner === null) accepted.incoming.close();
  else accepted.incoming.closeAfter(refusal.banner);
}

/** Closes a queued connection unserved because its service stops (`queue-dropped`). */
export function dropConnection(accepted: AcceptedConnection, waitedMs: number): void {
  accepted.log.log('info', 'queue-dropped', { peer: formatPeer(accepted.peer), waitedMs });
  accepted.incoming.close();
}
