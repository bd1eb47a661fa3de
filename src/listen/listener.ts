import { chmodSync, chownSync, lstatSync, renameSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import type { ListenAddress, SocketSpec } from '../config/types.js';
import { ExitCode, FatalError, describeSystemError } from '../errors.js';
import { formatListenAddress } from './address.js';
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
  readonly server: Server;
  /** Stops accepting; removes a Unix path this listener created unless `keepPath`. */
  close(options?: CloseOptions): Promise<void>;
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
  onConnection: (socket: Socket) => void,
  options: BindOptions = {},
): Promise<BoundListener> {
  const server = makeServer(socket, onConnection);
  try {
    if (address.kind === 'tcp') return await bindTcp(server, address, socket, options.port);
    if (address.abstract) return await bindAbstract(server, address, socket);
    return await bindUnixPath(server, address, socket, options.replace === true);
  } catch (error) {
    server.close();
    if (error instanceof FatalError) throw error;
    throw bindFailure(address, describeSystemError(error));
  }
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
  onConnection: (socket: Socket) => void,
): Promise<BoundListener> {
  const server = makeServer(socket, onConnection);
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
  if (address.kind === 'tcp' || address.abstract) {
    return { address, socket, bound, server, close: () => closeServer(server) };
  }
  return { address, socket, bound, server, close: closeUnix(server, address.path) };
}

function makeServer(socket: SocketSpec, onConnection: (socket: Socket) => void): Server {
  const server = createServer({
    pauseOnConnect: true,
    noDelay: socket.noDelay,
    keepAlive: socket.keepAlive,
  });
  server.on('connection', onConnection);
  return server;
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
): Promise<BoundListener> {
  await listen(server, {
    port: address.port === 0 && port !== undefined ? port : address.port,
    backlog: socket.backlog,
    ipv6Only: false,
    ...(address.host === null ? {} : { host: address.host }),
  });
  const info = server.address();
  const bound =
    typeof info === 'object' && info !== null
      ? formatTcp(info.address, info.port)
      : formatListenAddress(address);
  return { address, socket, bound, server, close: () => closeServer(server) };
}

function formatTcp(host: string, port: number): string {
  return host.includes(':') ? `tcp:[${host}]:${port}` : `tcp:${host}:${port}`;
}

async function bindAbstract(
  server: Server,
  address: ListenAddress & { kind: 'unix' },
  socket: SocketSpec,
): Promise<BoundListener> {
  await listen(server, { path: `\0${address.path}`, backlog: socket.backlog });
  const bound = formatListenAddress(address);
  return { address, socket, bound, server, close: () => closeServer(server) };
}

async function bindUnixPath(
  server: Server,
  address: ListenAddress & { kind: 'unix' },
  spec: SocketSpec,
  replace: boolean,
): Promise<BoundListener> {
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
  const bound = formatListenAddress(address);
  return { address, socket: spec, bound, server, close: closeUnix(server, path) };
}

/**
 * The close of a Unix path listener: Node only unlinks the temporary name it bound (already
 * renamed away), so the path is ours to remove, and only while it is still our socket file.
 */
function closeUnix(server: Server, path: string): (options?: CloseOptions) => Promise<void> {
  let inode: number | null = null;
  try {
    inode = lstatSync(path).ino;
  } catch {
    // no file: nothing of ours to remove later
  }
  return async (options = {}) => {
    await closeServer(server);
    if (options.keepPath !== true && inode !== null) removeOwnedSocket(path, inode);
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
