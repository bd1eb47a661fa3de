import { normaliseAddress } from '../access/ip.js';
import type { ListenAddress } from '../config/types.js';
import type { SocketEnds } from '../listen/incoming.js';
import type { Peer, PeerCredentials } from '../model/peer.js';

/** Describes the peer of a socket accepted on `listener` (pure over the socket's fields). */
export function describePeer(
  ends: SocketEnds,
  listener: ListenAddress,
  credentials: PeerCredentials | null,
): Peer {
  if (listener.kind === 'unix') {
    return {
      kind: 'unix',
      localPath: listener.abstract ? `@${listener.path}` : listener.path,
      pid: credentials?.pid ?? null,
      uid: credentials?.uid ?? null,
      gid: credentials?.gid ?? null,
    };
  }
  return {
    kind: 'tcp',
    localAddress: normaliseAddress(ends.localAddress ?? ''),
    localPort: ends.localPort ?? 0,
    remoteAddress: normaliseAddress(ends.remoteAddress ?? ''),
    remotePort: ends.remotePort ?? 0,
  };
}
