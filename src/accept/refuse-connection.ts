import type { Socket } from 'node:net';
import type { RefuseReason } from '../limits/reasons.js';
import type { AcceptedConnection } from './accept-connection.js';
import { formatPeer } from './peer.js';

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
  closeRefused(accepted.socket, refusal.banner);
}

/**
 * Closes a refused socket without reading from it: at once, or once the banner is handed to the
 * kernel (which sends it, then FIN). Never waits on the peer, so a refused peer holds no fd.
 */
export function closeRefused(socket: Socket, banner: string | null): void {
  if (banner === null) {
    socket.destroy();
    return;
  }
  socket.end(banner, () => socket.destroy());
}
