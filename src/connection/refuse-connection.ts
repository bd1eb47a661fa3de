import type { RefuseReason } from '../limits/reasons.js';
import type { AcceptedConnection } from './accept-connection.js';
import { formatPeer } from '../model/peer.js';

export interface Refusal {
  readonly reason: RefuseReason;
  readonly detail: string;
  /** Text to write before closing (onLimit `banner`), or null: close at once. */
  readonly banner: string | null;
}

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
