/** Who is on the other end of an accepted connection, addresses already normalised. */
export type Peer =
  | {
      readonly kind: 'tcp';
      readonly localAddress: string;
      readonly localPort: number;
      readonly remoteAddress: string;
      readonly remotePort: number;
    }
  | {
      readonly kind: 'unix';
      /** The listener's path, `@name` for an abstract socket. */
      readonly localPath: string;
      readonly pid: number | null;
      readonly uid: number | null;
      readonly gid: number | null;
    };

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** The peer as one log field: `1.2.3.4:5678`, `[::1]:5678`, `uid 1000 pid 42`. */
export function formatPeer(peer: Peer): string {
  if (peer.kind === 'unix') {
    return peer.uid === null ? 'unix' : `uid ${peer.uid} pid ${peer.pid ?? '?'}`;
  }
  const host = peer.remoteAddress.includes(':') ? `[${peer.remoteAddress}]` : peer.remoteAddress;
  return `${host}:${peer.remotePort}`;
}

/**
 * The connection's instance id, as systemd names per-connection units:
 * `<n>-<localaddr>:<localport>-<remoteaddr>:<remoteport>` or `<n>-<pid>-<uid>`.
 */
export function connectionId(n: number, peer: Peer): string {
  if (peer.kind === 'unix') return `${n}-${peer.pid ?? 'unknown'}-${peer.uid ?? 'unknown'}`;
  return `${n}-${peer.localAddress}:${peer.localPort}-${peer.remoteAddress}:${peer.remotePort}`;
}
