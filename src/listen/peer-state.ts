import { loadNativeAddon } from '../spawn/native-addon.js';

/** The addon's functions for queued connections (native/peer.c). */
export interface PeerAddon {
  /**
   * Whether the peer of an accepted, unread socket has gone: reset, a Unix peer closed, or EOF
   * with nothing sent (TCP cannot tell a close from a half-close). Reads nothing. Throws EBADF.
   */
  peerGone(fd: number): boolean;
  /** Sends `fds` in order over a Unix stream socket (SCM_RIGHTS); throws a system error. */
  sendFds(socket: number, fds: readonly number[], timeoutMs: number): void;
  /** Receives `count` fds sent by sendFds, in order, close-on-exec; throws a system error. */
  receiveFds(socket: number, count: number, timeoutMs: number): number[];
}

let cached: PeerAddon | null | undefined;

/** The addon when it is built and has these functions, else null. Cached. */
export function loadPeerAddon(): PeerAddon | null {
  if (cached === undefined) {
    const addon = loadNativeAddon() as (object & Partial<PeerAddon>) | null;
    cached =
      typeof addon?.peerGone === 'function' &&
      typeof addon.sendFds === 'function' &&
      typeof addon.receiveFds === 'function'
        ? (addon as PeerAddon)
        : null;
  }
  return cached;
}

/**
 * Whether the peer of `fd` has gone (see PeerAddon.peerGone). false when that cannot be told:
 * no fd, no addon (the portable build), or a failed check.
 */
export function isPeerGoneAt(fd: number | null): boolean {
  const addon = loadPeerAddon();
  if (addon === null || fd === null) return false;
  try {
    return addon.peerGone(fd);
  } catch {
    return false;
  }
}
