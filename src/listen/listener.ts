import { createServer, type Server } from 'node:net';
import type { ListenAddress, SocketSpec } from '../config/types.js';
import { ExitCode, FatalError, describeSystemError } from '../model/errors.js';
import { formatListenAddress } from '../config/listen-address.js';
import { AcceptedSocket, handleFd, type LocalEnd } from './incoming.js';
import {
  acceptNatively,
  type AcceptAddon,
  type ListenerEvents,
  type NativeAcceptWatch,
} from './native-accept.js';
import {
  bindAbstract,
  bindFailure,
  bindTcp,
  bindUnixPath,
  closeServer,
  formatTcp,
  listen,
  type Listening,
} from './bind.js';
import { holdSocket, type SocketHolder } from './hold.js';
import { bindDatagram } from './udp.js';
import { hasPendingConnections, identityOf, removeOwnedSocket, retuneSocket } from './unix-path.js';

type UdpAddress = ListenAddress & { kind: 'udp' };

export interface CloseOptions {
  /** Leave the Unix path in place (a hand-over: another process serves the same socket). */
  readonly keepPath?: boolean;
  /**
   * Accept the connections already queued on the socket before closing it (a reload whose new
   * socket has taken the address: the queued ones would be reset). Up to 2 s.
   */
  readonly drain?: boolean;
}

export interface BoundListener {
  /** The configured address. */
  readonly address: ListenAddress;
  /** The socket options it was bound with, or retuned to (a reload compares them). */
  readonly socket: SocketSpec;
  /** What was really bound (port 0 resolved), as the readiness line shows it. */
  readonly bound: string;
  /** The TCP or UDP port really bound (port 0 resolved); null for Unix. */
  readonly port: number | null;
  /** The listening socket's fd (what a hand-over passes on); null if Node shows none. */
  readonly fd: number | null;
  /** Stops accepting; removes a Unix path this listener created unless `keepPath`. */
  close(options?: CloseOptions): Promise<void>;
  /**
   * A Unix path listener: gives its socket file the owner and mode of `socket` in place, no
   * re-bind (native/unix-bind.c). Throws when that cannot be done (the caller binds afresh).
   */
  retune(socket: SocketSpec): void;
}

/** What to listen on, with which socket options, and where its connections go. */
export interface ListenRequest {
  readonly address: ListenAddress;
  readonly socket: SocketSpec;
  readonly events: ListenerEvents;
}

export interface AcceptOptions {
  /**
   * Accept in the native addon (no net.Socket per connection; see native-accept.ts) instead of
   * in the net.Server that bound the socket. Default null: the net.Server accepts.
   */
  readonly nativeAccept?: AcceptAddon | null;
  /**
   * Hold the socket instead (`accept: false`): the addon's duplicate of it, nothing accepted
   * (see hold.ts); the listener's `fd` is that duplicate. Wins over `nativeAccept`.
   */
  readonly hold?: SocketHolder | null;
}

/** Takes a bound socket's fd from its net.Server: into the addon's accept loop, or held. */
type TakeFd = (serverFd: number, localEnd: LocalEnd | null) => NativeAcceptWatch;

/** How the addon takes the socket, or null: the net.Server accepts. */
function takeFdWith(request: ListenRequest & AcceptOptions): TakeFd | null {
  const { hold, nativeAccept } = request;
  if (hold !== undefined && hold !== null) return (serverFd) => holdSocket(hold, serverFd);
  if (nativeAccept === undefined || nativeAccept === null) return null;
  return (listenFd, localEnd) => acceptNatively(nativeAccept, { ...request, listenFd, localEnd });
}

export interface BindOptions {
  /**
   * Unix path only: put the new socket in place even if a live one is there (a reload replacing
   * its own listener whose mode or owner changed; the rename swaps them atomically).
   */
  readonly replace?: boolean;
  /** TCP with port 0 only: bind this port (one resolved before, bound again after a failure). */
  readonly port?: number;
}

/**
 * Binds one address with `pauseOnConnect`, so no byte of a connection is read by Node.
 * Unix paths are bound under a temporary name with umask 0177, given their owner and mode,
 * then renamed into place: the socket never exists at its path with the wrong permissions.
 */
export async function bindListener(
  request: ListenRequest & BindOptions & AcceptOptions,
): Promise<BoundListener> {
  const { address, socket } = request;
  if (address.kind === 'udp') return bindUdp({ ...request, address });
  const server = makeServer(socket);
  let listening: Listening;
  try {
    if (address.kind === 'tcp')
      listening = await bindTcp(server, { address, socket }, request.port);
    else if (address.abstract) listening = await bindAbstract(server, { address, socket });
    else listening = await bindUnixPath(server, { address, socket }, request.replace === true);
  } catch (error) {
    server.close();
    if (error instanceof FatalError) throw error;
    throw bindFailure(address, describeSystemError(error));
  }
  return startAccepting(listening, request, takeFdWith(request));
}

/**
 * Serves an inherited listening socket (`LISTEN_FDS`, a hand-over) for `address` instead of
 * binding it. A TCP socket must be bound to the configured port (any port when it is 0) and
 * family; a Unix socket is taken as it is (Node cannot read its path). At close, the path is
 * removed only if it is still the socket file that was there when the fd was adopted.
 */
export async function adoptListener(
  request: ListenRequest & AcceptOptions & { readonly fd: number },
): Promise<BoundListener> {
  const { address, socket, fd } = request;
  if (address.kind === 'udp') return adoptUdp({ ...request, address });
  const server = makeServer(socket);
  try {
    await listen(server, { fd, backlog: socket.backlog });
  } catch (error) {
    server.close();
    throw adoptFailure(address, fd, describeSystemError(error));
  }
  const info = server.address();
  const isTcp = typeof info === 'object' && info !== null;
  if (isTcp !== (address.kind === 'tcp') || !matchesPort(address, info)) {
    server.close();
    const what = isTcp ? formatTcp(info.address, info.port) : 'a Unix socket';
    throw adoptFailure(address, fd, `it is ${what}`);
  }
  const bound = isTcp ? formatTcp(info.address, info.port) : formatListenAddress(address);
  const path = address.kind === 'unix' && !address.abstract ? address.path : null;
  const port = isTcp ? info.port : null;
  const identity = path === null ? null : identityOf(path);
  const listening = { server, bound, port, path, identity };
  return startAccepting(listening, request, takeFdWith(request));
}

/** `udp:` (`accept: false` only, check refuses it otherwise): bound by node:dgram, held. */
async function bindUdp(
  request: ListenRequest & AcceptOptions & { readonly address: UdpAddress },
): Promise<BoundListener> {
  const { address, socket, hold } = request;
  if (hold === undefined || hold === null)
    throw bindFailure(address, 'a UDP socket is for accept: false services only');
  const { watch, bound, port } = await bindDatagram(address, (fd) => holdSocket(hold, fd));
  return heldDatagram({ address, bound, port, watch }, socket);
}

/** A held UDP socket as a listener: closing it stops the watch and closes the daemon's copy. */
function heldDatagram(
  held: { address: UdpAddress; bound: string; port: number; watch: NativeAcceptWatch },
  socket: SocketSpec,
): BoundListener {
  const { address, bound, port, watch } = held;
  const close = (): Promise<void> => {
    watch.stop();
    return Promise.resolve();
  };
  const retune = (): void => {
    throw new Error('not a Unix path listener');
  };
  return listenerOf({ address, bound, port, fd: watch.fd, close, retune }, () => socket);
}

/**
 * An inherited `udp:` socket (a hand-over, LISTEN_FDS): held as bindUdp holds the one it binds,
 * once the addon has seen it is a UDP socket bound to the configured port (any, for port 0).
 */
function adoptUdp(
  request: ListenRequest & AcceptOptions & { readonly address: UdpAddress; readonly fd: number },
): BoundListener {
  const { address, socket, hold, fd } = request;
  if (hold === undefined || hold === null)
    throw adoptFailure(address, fd, 'a UDP socket is for accept: false services only');
  const port = hold.datagramPort(fd);
  if (port < 0) throw adoptFailure(address, fd, 'it is not a bound UDP socket');
  if (address.port !== 0 && port !== address.port)
    throw adoptFailure(address, fd, `it is bound to UDP port ${port}`);
  const watch = holdSocket(hold, fd); // the daemon's own copy; the inherited fd is closed
  hold.closeFd(fd);
  const bound = formatListenAddress({ ...address, port });
  return heldDatagram({ address, bound, port, watch }, socket);
}

function makeServer(socket: SocketSpec): Server {
  return createServer({
    pauseOnConnect: true,
    // a proxied connection passes a client's half-close on (a handler gets the fd itself)
    allowHalfOpen: true,
    noDelay: socket.noDelay,
    keepAlive: socket.keepAlive,
  });
}

/**
 * Routes a listening socket's connections to `events`: through its net.Server, or through the
 * addon (which takes its own copy of the fd; the server is closed, the socket stays bound), or
 * holds it (`accept: false`: the addon's copy, nothing accepted).
 * Runs in the same tick as the listen completed: no connection event is missed.
 */
async function startAccepting(
  listening: Listening,
  request: ListenRequest & AcceptOptions,
  take: TakeFd | null,
): Promise<BoundListener> {
  const { server, bound, port, path, identity } = listening;
  const { address, socket: spec, events } = request;
  const removePath = (): void => {
    if (path !== null && identity !== null) removeOwnedSocket(path, identity);
  };
  let socket = spec;
  const retune = (next: SocketSpec): void => {
    if (path === null || identity === null) throw new Error('not a Unix path listener');
    retuneSocket(path, identity, next);
    socket = next;
  };
  const serverFd = handleFd(server);
  const localEnd = localEndOf(server);
  const isHeld = request.hold !== undefined && request.hold !== null;
  if (isHeld && serverFd === null) {
    await closeServer(server);
    throw bindFailure(address, 'Node shows no fd for the socket, which accept: false must hold');
  }
  if (take === null || serverFd === null) {
    server.on('connection', (s) => events.onConnection(new AcceptedSocket(s, localEnd)));
    server.on('error', (error) => events.onError(error));
    const close = async (options: CloseOptions = {}): Promise<void> => {
      if (options.drain === true && serverFd !== null) await drainQueue(serverFd);
      await closeServer(server);
      if (options.keepPath !== true) removePath();
    };
    return listenerOf({ address, bound, port, fd: serverFd, close, retune }, () => socket);
  }
  let watch: NativeAcceptWatch;
  try {
    watch = take(serverFd, localEnd);
  } catch (error) {
    // the path stays: an inherited one may still be served by the predecessor; a stale socket
    // file is replaced by the next bind
    await closeServer(server);
    throw bindFailure(address, describeSystemError(error));
  }
  await closeServer(server);
  const close = async (options: CloseOptions = {}): Promise<void> => {
    // nobody accepts on a held socket: what is queued there is its process's, not drained
    if (options.drain === true && !isHeld) await drainQueue(watch.fd);
    watch.stop();
    if (options.keepPath !== true) removePath();
  };
  return listenerOf({ address, bound, port, fd: watch.fd, close, retune }, () => socket);
}

function listenerOf(parts: Omit<BoundListener, 'socket'>, socket: () => SocketSpec): BoundListener {
  return {
    ...parts,
    get socket() {
      return socket();
    },
  };
}

/**
 * Lets the accept loop (net.Server's or the addon's) take what is queued on `fd`: event-loop
 * turns until nothing is pending, up to 2 s (a paused accept loop, EMFILE). Without the addon
 * (no way to ask), a few turns.
 */
async function drainQueue(fd: number): Promise<void> {
  const deadline = Date.now() + 2000;
  for (let turn = 0; ; turn++) {
    const pending = hasPendingConnections(fd);
    if (pending === false || (pending === null && turn >= 3) || Date.now() > deadline) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A TCP listener's one local end, or null when it has many (bound to a wildcard) or is Unix. */
function localEndOf(server: Server): LocalEnd | null {
  const info = server.address();
  if (typeof info !== 'object' || info === null) return null;
  if (info.address === '0.0.0.0' || info.address === '::') return null;
  return { address: info.address, port: info.port };
}

function matchesPort(address: ListenAddress, info: ReturnType<Server['address']>): boolean {
  if (address.kind !== 'tcp' || typeof info !== 'object' || info === null) return true;
  return address.port === 0 || address.port === info.port;
}

function adoptFailure(address: ListenAddress, fd: number, why: string): FatalError {
  return new FatalError(
    `unable to serve ${formatListenAddress(address)} on inherited fd ${fd}: ${why}`,
    ExitCode.temporary,
  );
}
