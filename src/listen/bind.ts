// Putting a net.Server on an address: TCP, abstract and Unix path sockets (a path is bound under a
// temporary name, then renamed into place), and the promise wrappers of listen and close.
import { chmodSync, chownSync, lstatSync, renameSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:net';
import { basename, dirname, join } from 'node:path';
import type { ListenAddress, SocketSpec } from '../config/types.js';
import { ExitCode, FatalError } from '../errors.js';
import { formatListenAddress } from './address.js';
import { probeSocketPath, removeOwnedSocket } from './unix-path.js';

/** A net.Server listening, before its connections are routed anywhere. */
export interface Listening {
  readonly server: Server;
  readonly bound: string;
  readonly port: number | null;
  /** A Unix path this listener put in place (removed at close while it is still ours). */
  readonly path: string | null;
}

let tempCounter = 0;

export function bindFailure(address: ListenAddress, why: string): FatalError {
  return new FatalError(
    `unable to bind ${formatListenAddress(address)}: ${why}`,
    ExitCode.temporary,
  );
}

export async function bindTcp(
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

export function formatTcp(host: string, port: number): string {
  return host.includes(':') ? `tcp:[${host}]:${port}` : `tcp:${host}:${port}`;
}

export async function bindAbstract(
  server: Server,
  address: ListenAddress & { kind: 'unix' },
  socket: SocketSpec,
): Promise<Listening> {
  await listen(server, { path: `\0${address.path}`, backlog: socket.backlog });
  return { server, bound: formatListenAddress(address), port: null, path: null };
}

export async function bindUnixPath(
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
export function removeLaterIfOurs(path: string): () => void {
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

export function listen(server: Server, options: Parameters<Server['listen']>[0]): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}
