import type { ListenAddress, SocketSpec } from '../config/types.js';
import type { NativeAddon } from '../spawn/native-addon.js';
import { AcceptedFd, type IncomingConnection, type LocalEnd } from './incoming.js';

/** The part of the native addon that accepts connections (native/accept.c). */
export type AcceptAddon = Pick<NativeAddon, 'acceptStart' | 'acceptStop'>;

export interface ListenerEvents {
  /** A connection, unread; its fd is the callee's to close. */
  onConnection(incoming: IncomingConnection): void;
  /** accept(2) failed (EMFILE...); the listener goes on. */
  onError(error: NodeJS.ErrnoException): void;
}

/** What `acceptNatively` watches: a listening socket, its address and options, its events. */
export interface NativeAcceptRequest {
  readonly listenFd: number;
  readonly address: ListenAddress;
  readonly socket: SocketSpec;
  /** The listener's one local end; null (a wildcard) asks the kernel per connection. */
  readonly localEnd: LocalEnd | null;
  readonly events: ListenerEvents;
}

/** A listening socket whose connections the addon accepts. */
export interface NativeAcceptWatch {
  /** The watch's own fd for the listening socket (the one a hand-over passes on). */
  readonly fd: number;
  /** Stops accepting and closes `fd`; later calls do nothing. */
  stop(): void;
}

/**
 * Accepts on the listening socket `listenFd` in the addon: one JS call per connection with its
 * fd and addresses, no net.Socket. The watch takes its own duplicate of the
 * fd; the caller closes `listenFd` (its net.Server) when it likes. `localEnd`: a listener on
 * one address has one local end, given here; null (a wildcard) asks the kernel per connection.
 */
export function acceptNatively(
  addon: AcceptAddon,
  watched: NativeAcceptRequest,
): NativeAcceptWatch {
  const { listenFd, address, socket: spec, localEnd, events } = watched;
  const tcp = address.kind === 'tcp';
  const options = { tcp, noDelay: spec.noDelay, keepAlive: spec.keepAlive, localEnds: !localEnd };
  const fd = addon.acceptStart(
    listenFd,
    options,
    (connFd, remoteAddress, remotePort, localAddress, localPort) => {
      const ends = tcp
        ? {
            remoteAddress: remoteAddress ?? '',
            remotePort: remotePort ?? 0,
            localAddress: localEnd?.address ?? localAddress ?? '',
            localPort: localEnd?.port ?? localPort ?? 0,
          }
        : {};
      events.onConnection(new AcceptedFd(connFd, ends));
    },
    (error) => events.onError(error),
  );
  return watchOnce(fd, () => addon.acceptStop(fd));
}

/** A watch on `fd` whose `stop` runs `release` once (later calls do nothing). */
export function watchOnce(fd: number, release: () => void): NativeAcceptWatch {
  let stopped = false;
  return {
    fd,
    stop: () => {
      if (stopped) return;
      stopped = true;
      release();
    },
  };
}
