// Putting a net.Server on an address: TCP, abstract and Unix path sockets (a path is bound in a
// private directory by the addon and renamed into place), and the promise wrappers of listen
// and close.
import { randomBytes } from 'node:crypto';
import { chmodSync, lchownSync, renameSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:net';
import { dirname, join } from 'node:path';
import type { ListenAddress, SocketSpec } from '../config/types.js';
import { ExitCode, FatalError, describeSystemError } from '../model/errors.js';
import { formatListenAddress } from '../config/listen-address.js';
import { loadUnixBindAddon, type FileIdentity } from './unix-native.js';
import { identityOf, probeSocketPath, unsafeDirectory } from './unix-path.js';

/** A net.Server listening, before its connections are routed anywhere. */
export interface Listening {
  readonly server: Server;
  readonly bound: string;
  readonly port: number | null;
  /** A Unix path this listener put in place (removed at close while it is still ours). */
  readonly path: string | null;
  /** The socket file put at `path`, as bound. */
  readonly identity: FileIdentity | null;
}

/** An address to bind, with the options of its socket. */
export interface BindTarget<A extends ListenAddress> {
  readonly address: A;
  readonly socket: SocketSpec;
}

type TcpAddress = ListenAddress & { kind: 'tcp' };
type UnixAddress = ListenAddress & { kind: 'unix' };

export function bindFailure(address: ListenAddress, why: string): FatalError {
  const isPrivileged = address.kind !== 'unix' && address.port > 0 && address.port < 1024;
  const hint =
    isPrivileged && why.includes('(EACCES)')
      ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE: run as root, give the daemon' +
        ' AmbientCapabilities=CAP_NET_BIND_SERVICE in its unit, or let systemd bind it: LISTEN_FDS)'
      : '';
  return new FatalError(
    `unable to bind ${formatListenAddress(address)}: ${why}${hint}`,
    ExitCode.temporary,
  );
}

export async function bindTcp(
  server: Server,
  { address, socket }: BindTarget<TcpAddress>,
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
  const bound = formatTcp(info.address, info.port);
  return { server, bound, port: info.port, path: null, identity: null };
}

export function formatTcp(host: string, port: number): string {
  return host.includes(':') ? `tcp:[${host}]:${port}` : `tcp:${host}:${port}`;
}

export async function bindAbstract(
  server: Server,
  { address, socket }: BindTarget<UnixAddress>,
): Promise<Listening> {
  const addon = loadUnixBindAddon();
  if (addon === null) {
    // Node pads the name to 108 bytes: only Node clients can reach it (README: Security)
    await listen(server, { path: `\0${address.path}`, backlog: socket.backlog });
  } else {
    let fd: number;
    try {
      fd = addon.unixBindAbstract(address.path, socket.backlog);
    } catch (error) {
      throw bindFailure(address, describeSystemError(error));
    }
    await listen(server, { fd, backlog: socket.backlog });
  }
  const bound = formatListenAddress(address);
  return { server, bound, port: null, path: null, identity: null };
}

/**
 * Binds a Unix path: through the addon's safe bind (native/unix-bind.c: a private directory,
 * directory fds only), else the portable way, which refuses directories other users can write.
 */
export async function bindUnixPath(
  server: Server,
  target: BindTarget<UnixAddress>,
  replace: boolean,
): Promise<Listening> {
  const addon = loadUnixBindAddon();
  if (addon === null) return bindUnixPortably(server, target, replace);
  const { address, socket: spec } = target;
  const { path } = address;
  let bound: FileIdentity & { fd: number };
  try {
    const owner = { uid: spec.uid ?? -1, gid: spec.gid ?? -1 };
    bound = addon.unixBind(path, { mode: spec.mode, ...owner, backlog: spec.backlog, replace });
  } catch (error) {
    throw bindFailure(address, describeBindError(error));
  }
  const identity = { dev: bound.dev, ino: bound.ino };
  try {
    await listen(server, { fd: bound.fd, backlog: spec.backlog });
  } catch (error) {
    addon.unixRemove(path, identity.dev, identity.ino);
    throw error;
  }
  return { server, bound: formatListenAddress(address), port: null, path, identity };
}

/** The words of the existing path checks, for the addon's EADDRINUSE and EEXIST. */
function describeBindError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (message.endsWith(': a live socket'))
    return 'a live socket is already at that path (EADDRINUSE)';
  if (message.endsWith(': not a socket'))
    return 'a file that is not a socket is at that path (EEXIST)';
  return message;
}

/**
 * Without the addon: only in a directory chain nobody but root and the daemon's user can
 * write (unsafeDirectory), under an unpredictable temporary name, chown/chmod, rename.
 */
async function bindUnixPortably(
  server: Server,
  { address, socket: spec }: BindTarget<UnixAddress>,
  replace: boolean,
): Promise<Listening> {
  const { path } = address;
  const unsafe = unsafeDirectory(dirname(path));
  if (unsafe !== null) throw bindFailure(address, `${unsafe} (the native addon is not built)`);
  const state = await probeSocketPath(path);
  if (state === 'live-socket' && !replace)
    throw bindFailure(address, 'a live socket is already at that path (EADDRINUSE)');
  if (state === 'not-a-socket')
    throw bindFailure(address, 'a file that is not a socket is at that path (EEXIST)');
  const tempPath = join(dirname(path), `.sk-${randomBytes(9).toString('hex')}`);
  const previous = process.umask(0o177);
  try {
    // For a path, net.Server binds synchronously inside listen(), under this umask.
    const listening = listen(server, { path: tempPath, backlog: spec.backlog });
    process.umask(previous);
    await listening;
    if (spec.uid !== null || spec.gid !== null)
      lchownSync(tempPath, spec.uid ?? -1, spec.gid ?? -1);
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
  const identity = identityOf(path);
  return { server, bound: formatListenAddress(address), port: null, path, identity };
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

/** Start-up bind failures: one as it is; several as one error listing each (nothing started). */
export function throwBindFailures(failures: readonly FatalError[]): void {
  const [first] = failures;
  if (first === undefined) return;
  if (failures.length === 1) throw first;
  const message = `${failures.length} addresses could not be bound; nothing was started`;
  throw new FatalError(
    message,
    first.exitCode,
    failures.map((f) => f.message),
  );
}
