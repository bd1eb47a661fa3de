import { chmodSync, chownSync, lstatSync, renameSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import type { ListenAddress, SocketSpec } from '../config/types.js';
import { ExitCode, FatalError, describeSystemError } from '../errors.js';
import { formatListenAddress } from './address.js';
import { probeSocketPath, removeOwnedSocket } from './unix-path.js';

export interface BoundListener {
  /** The configured address. */
  readonly address: ListenAddress;
  /** What was really bound (port 0 resolved), as the readiness line shows it. */
  readonly bound: string;
  readonly server: Server;
  /** Stops accepting; removes a Unix path this listener created. */
  close(): Promise<void>;
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
): Promise<BoundListener> {
  const server = createServer({
    pauseOnConnect: true,
    noDelay: socket.noDelay,
    keepAlive: socket.keepAlive,
  });
  server.on('connection', onConnection);
  try {
    if (address.kind === 'tcp') return await bindTcp(server, address, socket.backlog);
    if (address.abstract) return await bindAbstract(server, address, socket.backlog);
    return await bindUnixPath(server, address, socket);
  } catch (error) {
    server.close();
    if (error instanceof FatalError) throw error;
    throw bindFailure(address, describeSystemError(error));
  }
}

function bindFailure(address: ListenAddress, why: string): FatalError {
  return new FatalError(
    `unable to bind ${formatListenAddress(address)}: ${why}`,
    ExitCode.temporary,
  );
}

async function bindTcp(
  server: Server,
  address: ListenAddress & { kind: 'tcp' },
  backlog: number,
): Promise<BoundListener> {
  await listen(server, {
    port: address.port,
    backlog,
    ipv6Only: false,
    ...(address.host === null ? {} : { host: address.host }),
  });
  const info = server.address();
  const bound =
    typeof info === 'object' && info !== null
      ? formatTcp(info.address, info.port)
      : formatListenAddress(address);
  return { address, bound, server, close: () => closeServer(server) };
}

function formatTcp(host: string, port: number): string {
  return host.includes(':') ? `tcp:[${host}]:${port}` : `tcp:${host}:${port}`;
}

async function bindAbstract(
  server: Server,
  address: ListenAddress & { kind: 'unix' },
  backlog: number,
): Promise<BoundListener> {
  await listen(server, { path: `\0${address.path}`, backlog });
  return { address, bound: formatListenAddress(address), server, close: () => closeServer(server) };
}

async function bindUnixPath(
  server: Server,
  address: ListenAddress & { kind: 'unix' },
  spec: SocketSpec,
): Promise<BoundListener> {
  const { path } = address;
  const state = await probeSocketPath(path);
  if (state === 'live-socket')
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
  const inode = lstatSync(path).ino;
  const close = async (): Promise<void> => {
    await closeServer(server);
    removeOwnedSocket(path, inode);
  };
  return { address, bound: formatListenAddress(address), server, close };
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
