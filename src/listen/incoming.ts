import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { isPeerGoneAt } from './peer-state.js';

/** The two ends of a connection as accept(2) or the socket reports them (Unix: none). */
export interface SocketEnds {
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
}

/**
 * The local end of a TCP listener bound to one address: the same for every connection, so it is
 * learnt once at bind time instead of by getsockname(2) per connection.
 */
export interface LocalEnd {
  readonly address: string;
  readonly port: number;
}

/**
 * An accepted connection no byte of which has been read: the fd a handler gets as 0 and 1, its
 * ends, and the ways the daemon lets go of its own copy.
 */
export interface IncomingConnection {
  /** null: Node's socket had no fd (the caller logs it and closes the connection). */
  readonly fd: number | null;
  readonly ends: SocketEnds;
  /** Closes the daemon's copy at once, unread (after a spawn: the handler has its own). */
  close(): void;
  /**
   * Hands `text` to the kernel, then closes (the onLimit banner). Never waits on the peer, so a
   * refused peer holds no fd.
   */
  closeAfter(text: string): void;
  /**
   * Whether the peer has gone while the connection waited unread (reset, closed, or EOF with
   * nothing sent); false when the native addon is not built. Reads nothing.
   */
  isPeerGone(): boolean;
  /**
   * The connection as a flowing net.Socket, the daemon's own (a proxy copies with it when the
   * addon does not); this object must not be closed afterwards: the socket owns the fd.
   */
  takeSocket(): Socket;
}

/** A connection accepted by the native addon: a bare fd, blocking, close-on-exec. */
export class AcceptedFd implements IncomingConnection {
  constructor(
    readonly fd: number,
    readonly ends: SocketEnds,
  ) {}

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // EBADF would be a bug here; nothing a peer can cause
    }
  }

  closeAfter(text: string): void {
    // the slow path (refusals with a banner): a write-only socket over the fd, which it closes
    let socket: Socket;
    try {
      socket = new Socket({ fd: this.fd, readable: false, writable: true });
    } catch {
      this.close();
      return;
    }
    closeSocketAfter(socket, text);
  }

  isPeerGone(): boolean {
    return isPeerGoneAt(this.fd);
  }

  takeSocket(): Socket {
    return new Socket({ fd: this.fd, readable: true, writable: true, allowHalfOpen: true });
  }
}

/** A connection accepted by a net.Server (`pauseOnConnect`: nothing is read). */
export class AcceptedSocket implements IncomingConnection {
  readonly fd: number | null;
  readonly ends: SocketEnds;

  /** `localEnd`: the listener's one local end (not a wildcard), else asked of the socket. */
  constructor(
    private readonly socket: Socket,
    localEnd: LocalEnd | null,
  ) {
    socket.on('error', () => {
      // a reset from a peer that left before its handler started: nothing to do
    });
    this.fd = handleFd(socket);
    this.ends =
      localEnd === null
        ? socket
        : {
            localAddress: localEnd.address,
            localPort: localEnd.port,
            remoteAddress: socket.remoteAddress,
            remotePort: socket.remotePort,
          };
  }

  close(): void {
    this.socket.destroy();
  }

  closeAfter(text: string): void {
    closeSocketAfter(this.socket, text);
  }

  isPeerGone(): boolean {
    // the fd of a paused socket is the kernel's socket itself; nothing was read from it
    return this.socket.destroyed || isPeerGoneAt(handleFd(this.socket));
  }

  takeSocket(): Socket {
    this.socket.removeAllListeners('error');
    return this.socket;
  }
}

function closeSocketAfter(socket: Socket, text: string): void {
  socket.on('error', () => socket.destroy());
  socket.end(text, () => socket.destroy());
}

/** The OS fd of a socket or server (Node keeps it on the internal handle). */
export function handleFd(socketOrServer: object): number | null {
  const handle = (socketOrServer as { _handle?: { fd?: unknown } })._handle;
  return typeof handle?.fd === 'number' && handle.fd >= 0 ? handle.fd : null;
}
