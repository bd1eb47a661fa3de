import type { PeerCredentials } from '../model/peer.js';
import { adoptListener, bindListener, type BindOptions, type ListenRequest } from './listener.js';
import type { BoundListener } from './bound-listener.js';
import type { SocketHolder } from './hold.js';
import type { AcceptAddon } from './native-accept.js';

/** What the accept backend is made of, as the spawner selection found it at start. */
export interface AcceptChoice {
  /**
   * With the native spawner: the addon, which then accepts the connections (no net.Socket per
   * connection). null: the net.Server that bound the socket accepts (`--spawner portable`).
   */
  readonly nativeAccept: AcceptAddon | null;
  /** SO_PEERCRED of an accepted Unix connection; null where it cannot be read. */
  readonly peerCredentials: (fd: number) => PeerCredentials | null;
  /**
   * The addon whenever it loads (whichever spawner), which holds the sockets of `accept: false`
   * services; null: no such service can run.
   */
  readonly holder: SocketHolder | null;
}

/** A listen request: bind the address, or serve the inherited listening socket `fd` for it. */
export type ListenOn = ListenRequest &
  BindOptions & {
    readonly fd?: number;
    /** Hold the socket (`accept: false`, with `holder`) instead of accepting on it. */
    readonly hold?: boolean;
  };

/**
 * How this daemon's listeners accept and learn who a Unix peer is: made once at start and given
 * to the daemon, which hands it to each service's runner.
 */
export interface AcceptBackend {
  /** Binds (or adopts, given `fd`) one address and routes its connections to `events`. Throws. */
  listen(request: ListenOn): Promise<BoundListener>;
  peerCredentials(fd: number): PeerCredentials | null;
  /** What holds `accept: false` sockets and watches them; null: the addon is not there. */
  readonly holder: SocketHolder | null;
}

export function createAcceptBackend(choice: AcceptChoice): AcceptBackend {
  const { nativeAccept, peerCredentials, holder } = choice;
  return {
    listen: ({ fd, hold: isHeld = false, ...request }) => {
      if (isHeld && holder === null) throw new Error('no addon to hold the socket'); // a bug
      const options = { ...request, nativeAccept, hold: isHeld ? holder : null };
      return fd === undefined ? bindListener(options) : adoptListener({ ...options, fd });
    },
    peerCredentials,
    holder,
  };
}

/** net.Server accepts, and no peer credentials are read: a runner's default. */
export const netAccept: AcceptBackend = createAcceptBackend({
  nativeAccept: null,
  peerCredentials: () => null,
  holder: null,
});
