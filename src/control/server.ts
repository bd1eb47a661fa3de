import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, rename } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { ExitCode, FatalError, describeSystemError } from '../model/errors.js';
import { ControlConnections } from './connection-table.js';
import {
  endGently,
  serveConversation,
  type ControlHandler,
  type ControlLogger,
} from './connection.js';
import { formatReply, type ControlErrorBody } from './protocol.js';
import { loadUnixBindAddon, type FileIdentity } from '../listen/unix-native.js';
import { probeSocketPath, removeOwnedSocket, unsafeDirectory } from '../listen/unix-path.js';

export type { ControlHandler, ControlLogger } from './connection.js';

export interface ControlServerOptions {
  readonly path: string;
  /** Mode of the socket file; default 0o600. */
  readonly mode?: number;
  /** Mode of parent directories this creates when missing; default 0o700. */
  readonly dirMode?: number;
  /** Answers one valid request: resolves to the reply's result, or throws a ControlError. */
  readonly handle: ControlHandler;
  readonly log: ControlLogger;
  /** Longest request line in bytes, newline excluded; default 65536. */
  readonly maxLineBytes?: number;
  /**
   * Control connections open at once; default 32. At the limit a newcomer closes the longest-idle
   * one; it gets a `busy` reply only when every one has a request in progress.
   */
  readonly maxConnections?: number;
  /**
   * A connection is closed when it has not completed a request this long after it was accepted
   * or its last reply was written (bytes that are not a whole request do not count); default 5000.
   */
  readonly idleTimeoutMs?: number;
  /** Peers with this uid (and root) may connect; default the daemon's effective uid. */
  readonly ownerUid?: number;
  /**
   * The peer's uid (SO_PEERCRED), or null when unknown; then only the socket file's mode and
   * owner keep others out. Default: always null.
   */
  readonly peerUid?: (socket: Socket) => number | null;
}

export interface ControlServer {
  readonly path: string;
  /** Stops listening, drops open control connections, removes the socket path if still ours. */
  close(): Promise<void>;
}

/**
 * Binds the control socket without a permission window and without acting by path in its
 * directory (bindSafely), replacing a stale socket but never a live one, and serves it.
 * Throws a FatalError (exit 111) when it cannot bind.
 */
export async function startControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const { path, log } = options;
  const table = new ControlConnections();
  const server = createServer({ allowHalfOpen: true });
  server.on('connection', (socket) => acceptControlConnection(socket, table, options));
  const identity = await bindSafely(server, options).catch((error: unknown) => {
    throw error instanceof FatalError ? error : bindError(path, describeSystemError(error));
  });
  server.on('error', (error) => log.error('control-error', { error: describeSystemError(error) }));
  log.info('control-listen', { path });
  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    table.closeAll();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    removeOwnedSocket(path, identity);
  };
  return { path, close: () => (closing ??= close()) };
}

/**
 * A peer of another uid is refused and makes no room (at the limit it is closed without a
 * reply); any other newcomer closes the longest-idle connections at the limit.
 */
function acceptControlConnection(
  socket: Socket,
  table: ControlConnections,
  options: ControlServerOptions,
): void {
  socket.on('error', () => undefined); // a peer that resets is routine, not a daemon problem
  const limit = options.maxConnections ?? 32;
  const refusal = checkPeer(socket, options);
  if (refusal !== null && table.size >= limit) {
    options.log.warn('control-refused', { ...refusal });
    socket.destroy();
    return;
  }
  const hasRoom = refusal === null && table.makeRoom(limit);
  table.add(socket);
  if (!hasRoom) {
    refuse(
      socket,
      options.log,
      refusal ?? { code: 'busy', message: `too many control connections (${limit})` },
    );
    return;
  }
  serveConversation(socket, {
    handle: options.handle,
    log: options.log,
    maxLineBytes: options.maxLineBytes ?? 65536,
    idleTimeoutMs: options.idleTimeoutMs ?? 5000,
    table,
  });
}

function checkPeer(socket: Socket, options: ControlServerOptions): ControlErrorBody | null {
  if (options.peerUid === undefined) return null;
  let uid: number | null;
  try {
    uid = options.peerUid(socket);
  } catch (error) {
    options.log.error('control-error', { error: `peer credentials: ${String(error)}` });
    return { code: 'forbidden', message: 'unable to read the peer credentials' };
  }
  const owner = options.ownerUid ?? process.geteuid?.() ?? 0;
  if (uid === null || uid === 0 || uid === owner) return null;
  return { code: 'forbidden', message: `uid ${uid} may not control this daemon (uid ${owner})` };
}

function refuse(socket: Socket, log: ControlLogger, error: ControlErrorBody): void {
  log.warn('control-refused', { ...error });
  endGently(socket, formatReply({ id: null, ok: false, error }));
}

/**
 * The directory must be ours or root's, and not writable by others unless sticky (as /tmp):
 * otherwise another user could replace the socket (e.g. a /tmp/socketeer-UID made first).
 */
async function refuseForeignDirectory(dir: string): Promise<void> {
  const stats = await lstat(dir);
  const uid = process.getuid?.() ?? 0;
  const isOurs = stats.uid === uid || stats.uid === 0;
  const isOpen = (stats.mode & 0o002) !== 0 && (stats.mode & 0o1000) === 0;
  if (!stats.isDirectory() || !isOurs || isOpen) {
    const owner = `owned by uid ${stats.uid}, mode ${(stats.mode & 0o7777).toString(8).padStart(4, '0')}`;
    throw new FatalError(
      `unable to bind control socket in ${dir}: the directory is not safe (${owner}); pass --control PATH`,
      ExitCode.temporary,
    );
  }
}

/**
 * With the addon: the safe bind of native/unix-bind.c (private directory, directory fds only,
 * the mode set before the rename). Without it: an unpredictable temporary name under umask
 * 0o177, chmod, rename, in a directory chain nobody else can write.
 */
async function bindSafely(server: Server, options: ControlServerOptions): Promise<FileIdentity> {
  const { path } = options;
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: options.dirMode ?? 0o700 });
  await refuseForeignDirectory(dir);
  const addon = loadUnixBindAddon();
  if (addon === null) return bindPortably(server, options);
  let bound: FileIdentity & { fd: number };
  try {
    const owner = { uid: -1, gid: -1, backlog: 511, replace: false };
    bound = addon.unixBind(path, { mode: options.mode ?? 0o600, ...owner });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (message.endsWith(': not a socket'))
      throw bindError(path, 'the path exists and is not a socket');
    if (message.endsWith(': a live socket')) throw bindError(path, describeSystemError(error));
    throw bindError(path, message);
  }
  const identity = { dev: bound.dev, ino: bound.ino };
  try {
    await listenOn(server, { fd: bound.fd });
  } catch (error) {
    addon.unixRemove(path, identity.dev, identity.ino);
    throw error;
  }
  return identity;
}

async function bindPortably(server: Server, options: ControlServerOptions): Promise<FileIdentity> {
  const { path } = options;
  const unsafe = unsafeDirectory(dirname(path));
  if (unsafe !== null) throw bindError(path, `${unsafe} (the native addon is not built)`);
  await refuseLiveSocket(path);
  const temporary = join(dirname(path), `.sk-${randomBytes(9).toString('hex')}`);
  await listenWithUmask(server, temporary);
  try {
    await chmod(temporary, options.mode ?? 0o600);
    await rename(temporary, path);
    const stats = await lstat(path);
    return { dev: stats.dev, ino: stats.ino };
  } catch (error) {
    server.close(); // also unlinks the temporary name if it is still there
    throw error;
  }
}

function listenOn(server: Server, options: { fd: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** A stale socket at the path is replaced by the rename; a live one or a non-socket is refused. */
async function refuseLiveSocket(path: string): Promise<void> {
  const state = await probeSocketPath(path);
  if (state === 'not-a-socket') throw bindError(path, 'the path exists and is not a socket');
  if (state === 'live-socket') throw bindError(path, describeSystemError({ code: 'EADDRINUSE' }));
}

function listenWithUmask(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const previous = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      }); // bind(2) happens synchronously, under the tight umask
    } finally {
      process.umask(previous);
    }
  });
}

function bindError(path: string, reason: string): FatalError {
  return new FatalError(`unable to bind control socket ${path}: ${reason}`, ExitCode.temporary);
}
