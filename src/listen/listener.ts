import { chmodSync, chownSync, lstatSync, renameSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { basename, dirname, join } from 'node:path';
import type { ListenAddress, SocketSpec } from '../config/types.js';
import { ExitCode, FatalError, describeSystemError } from '../errors.js';
import { formatListenAddress } from './address.js';
import { AcceptedSocket, handleFd, isWildcardHost } from './incoming.js';
import {
  acceptNatively,
  type AcceptAddon,
  type ListenerEvents,
  type NativeAcceptWatch,
} from './native-accept.js';
import { probeSocketPath, removeOwnedSocket } from './unix-path.js';

export interface CloseOptions {
  /** Leave the Unix path in place (a hand-over: another process serves the same socket). */
  readonly keepPath?: boolean;
}

export interface BoundListener {
  /** The configured address. */
  readonly address: ListenAddress;
  /** The socket options it was bound with (a reload keeps it only if they are unchanged). */
  readonly socket: SocketSpec;
  /** What was really bound (port 0 resolved), as the readiness line shows it. */
  readonly bound: string;
  /** The TCP port really bound (port 0 resolved); null for Unix. */
  readonly port: number | null;
  /** The listening socket's fd (what a hand-over passes on); null if Node shows none. */
  readonly fd: number | null;
  /** Stops accepting; removes a Unix path this listener created unless `keepPath`. */
  close(options?: CloseOptions): Promise<void>;
}

export interface AcceptOptions {
  /**
   * Accept in the native addon (no net.Socket per connection; see native-accept.ts) instead of
   * in the net.Server that bound the socket. Default null: the net.Server accepts.
   */
  readonly nativeAccept?: AcceptAddon | null;
}

/** A net.Server listening, before its connections are routed anywhere. */
interface Listening {
  readonly server: Server;
  readonly bound: string;
  readonly port: number | null;
  /** A Unix path this listener put in place (removed at close while it is still ours). */
  readonly path: string | null;
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

let tempCounter = 0;

/**
 * Binds one address with `pauseOnConnect`, so no byte of a connection is read by Node.
 * Unix paths are bound under a temporary name with umask 0177, given their owner and mode,
 * then renamed into place: the socket never exists at its path with the wrong permissions.
 */
export async function bindListener(
  address: ListenAddress,
  socket: SocketSpec,
  events: ListenerEvents,
  options: BindOptions & AcceptOptions = {},
): Promise<BoundListener> {
  const server = makeServer(socket);
  let listening: Listening;
  try {
    if (address.kind === 'tcp') listening = await bindTcp(server, address, socket, options.port);
    else if (address.abstract) listening = await bindAbstract(server, address, socket);
    else listening = await bindUnixPath(server, address, socket, options.replace === true);
  } catch (error) {
    server.close();
    if (error instanceof FatalError) throw error;
    throw bindFailure(address, describeSystemError(error));
  }
  return startAccepting(listening, address, socket, events, options.nativeAccept ?? null);
}

/**
 * Serves an inherited listening socket (`LISTEN_FDS`, a hand-over) for `address` instead of
 * binding it. A TCP socket must be bound to the configured port (any port when it is 0) and
 * family; a Unix socket is taken as it is (Node cannot read its path). At close, the path is
 * removed only if it is still the socket file that was there when the fd was adopted.
 */
export async function adoptListener(
  address: ListenAddress,
  socket: SocketSpec,
  fd: number,
  events: ListenerEvents,
  options: AcceptOptions = {},
): Promise<BoundListener> {
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
  const listening = { server, bound, port, path };
  return startAccepting(listening, address, socket, events, options.nativeAccept ?? null);
}

function makeServer(socket: SocketSpec): Server {
  return createServer({
    pauseOnConnect: true,
    noDelay: socket.noDelay,
    keepAlive: socket.keepAlive,
  });
}

/**
 * Routes a listening socket's connections to `events`: through its net.Server, or through the
 * addon (which takes its own copy of the fd; the server is closed, the socket stays bound).
 * Runs in the same tick as the listen completed: no connection event is missed.
 */
async function startAccepting(
  listening: Listening,
  address: ListenAddress,
  spec: SocketSpec,
  events: ListenerEvents,
  addon: AcceptAddon | null,
): Promise<BoundListener> {
  const { server, bound, port, path } = listening;
  const removePath = path === null ? () => undefined : removeLaterIfOurs(path);
  const serverFd = handleFd(server);
  if (addon === null || serverFd === null) {
    server.on('connection', (socket) => events.onConnection(new AcceptedSocket(socket, address)));
    server.on('error', (error) => events.onError(error));
    const close = async (options: CloseOptions = {}): Promise<void> => {
      await closeServer(server);
      if (options.keepPath !== true) removePath();
    };
    return { address, socket: spec, bound, port, fd: serverFd, close };
  }
  let watch: NativeAcceptWatch;
  try {
    watch = acceptNatively(addon, serverFd, address, spec, localEndOf(server, address), events);
  } catch (error) {
    // the path stays: an inherited one may still be served by the predecessor; a stale socket
    // file is replaced by the next bind
    await closeServer(server);
    throw bindFailure(address, describeSystemError(error));
  }
  await closeServer(server);
  const close = (options: CloseOptions = {}): Promise<void> => {
    watch.stop();
    if (options.keepPath !== true) removePath();
    return Promise.resolve();
  };
  return { address, socket: spec, bound, port, fd: watch.fd, close };
}

/** A TCP listener's one local end, or null when it has many (a wildcard) or is Unix. */
function localEndOf(
  server: Server,
  address: ListenAddress,
): { address: string; port: number } | null {
  if (address.kind !== 'tcp' || isWildcardHost(address.host)) return null;
  const info = server.address();
  return typeof info === 'object' && info !== null
    ? { address: info.address, port: info.port }
    : null;
}

function matchesPort(address: ListenAddress, info: ReturnType<Server['address']>): boolean {
  if (address.kind !== 'tcp' || typeof info !== 'object' || info === null) return true;
  return address.port === 0 || address.port === info.port;
}

function bindFailure(address: ListenAddress, why: string): FatalError {
  return new FatalError(
    `unable to bind ${formatListenAddress(address)}: ${why}`,
    ExitCode.temporary,
  );
}

function adoptFailure(address: ListenAddress, fd: number, why: string): FatalError {
  return new FatalError(
    `unable to serve ${formatListenAddress(address)} on inherited fd ${fd}: ${why}`,
    ExitCode.temporary,
  );
}

async function bindTcp(
  server: Server,
  address: ListenAddress & { kind: 'tcp' },
  socket: SocketSpec,
  port: number | undefined,
): Promise<Listening> {
  await listen(server, {
    port: address.port === 0 && port !== undefined ? port : address.port,
    backlog: socket.backlog,
    ipv6Only: false,
    ...(address.host === null ? {} : { host: address.host }),
  });
  const info = server.address();
  if (typeof info !== 'object' || info === null) throw new Error('a TCP server with no address');
  return { server, bound: formatTcp(info.address, info.port), port: info.port, path: null };
}

function formatTcp(host: string, port: number): string {
  return host.includes(':') ? `tcp:[${host}]:${port}` : `tcp:${host}:${port}`;
}

async function bindAbstract(
  server: Server,
  address: ListenAddress & { kind: 'unix' },
  socket: SocketSpec,
): Promise<Listening> {
  await listen(server, { path: `\0${address.path}`, backlog: socket.backlog });
  return { server, bound: formatListenAddress(address), port: null, path: null };
}

async function bindUnixPath(
  server: Server,
  address: ListenAddress & { kind: 'unix' },
  spec: SocketSpec,
  replace: boolean,
): Promise<Listening> {
  const { path } = address;
  const state = await probeSocketPath(path);
  if (state === 'live-socket' && !replace)
    throw bindFailure(address, 'a live socket is already at that path (EADDRINUSE)');
  if (state === 'not-a-socket')
    throw bindFailure(address, 'a file that is not a socket is at that path (EEXIST)');
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${++tempCounter}`);
  const tempPath =
    Buffer.byteLength(temp) <= 107
      ? temp
      : join(dirname(path), `.sk.${process.pid}.${tempCounter}`);
  const previous = process.umask(0o177);
  try {
    // For a path, net.Server binds synchronously inside listen(), under this umask.
    const listening = listen(server, { path: tempPath, backlog: spec.backlog });
    process.umask(previous);
    await listening;
    if (spec.uid !== null || spec.gid !== null) chownSync(tempPath, spec.uid ?? -1, spec.gid ?? -1);
    chmodSync(tempPath, spec.mode);
    renameSync(tempPath, path);
  } catch (error) {
    process.umask(previous);
    try {
      unlinkSync(tempPath);
    } catch {
      // never created
    }
    throw error;
  }
  return { server, bound: formatListenAddress(address), port: null, path };
}

/**
 * What closing a Unix path listener does to the path: Node only unlinks the temporary name it
 * bound (already renamed away), so the path is ours to remove, and only while it is still the
 * socket file that is there now.
 */
function removeLaterIfOurs(path: string): () => void {
  let inode: number | null = null;
  try {
    inode = lstatSync(path).ino;
  } catch {
    // no file: nothing of ours to remove later
  }
  return () => {
    if (inode !== null) removeOwnedSocket(path, inode);
  };
}

function listen(server: Server, options: Parameters<Server['listen']>[0]): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}
