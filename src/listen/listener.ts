import { createServer, type Server } from 'node:net';
import type { ListenAddress, SocketSpec } from '../config/types.js';
import { FatalError, describeSystemError } from '../model/errors.js';
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
import {
  adoptFailure,
  listenerOf,
  type BoundListener,
  type CloseOptions,
} from './bound-listener.js';
import { adoptUdp, bindUdp } from './udp-listener.js';
import { hasPendingConnections, identityOf, removeOwnedSocket, retuneSocket } from './unix-path.js';

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
