import type { Peer } from '../model/peer.js';

/**
 * Running handlers of one service per peer, as `TCPCONNNUM`/`IPCCONNNUM` count them: a TCP
 * peer by its exact address, a Unix peer by its uid. Kept as handlers start and end, so a
 * connection's count is a look-up, not a walk over every running handler.
 */
export class PeerCounts {
  private readonly counts = new Map<string, number>();

  add(peer: Peer): void {
    const key = peerSourceOf(peer);
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  remove(peer: Peer): void {
    const key = peerSourceOf(peer);
    const left = (this.counts.get(key) ?? 1) - 1;
    if (left > 0) this.counts.set(key, left);
    else this.counts.delete(key);
  }

  countOf(peer: Peer): number {
    return this.counts.get(peerSourceOf(peer)) ?? 0;
  }
}

function peerSourceOf(peer: Peer): string {
  return peer.kind === 'tcp' ? `tcp ${peer.remoteAddress}` : `uid ${peer.uid ?? '?'}`;
}
