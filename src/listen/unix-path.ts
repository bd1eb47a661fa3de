// What is at a Unix socket path, and the operations on one after the bind: removal, owner and
// mode changes in place. With the addon each goes through safely opened directory fds
// (native/unix-bind.c); without it, only the checks a path allows.
import { connect } from 'node:net';
import { lstatSync, realpathSync, unlinkSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { SocketSpec } from '../config/types.js';
import { loadUnixBindAddon, type FileIdentity } from './unix-native.js';

export type PathState = 'free' | 'stale-socket' | 'live-socket' | 'not-a-socket';

/** What is at a Unix socket path now: nothing, a dead socket, a live one, or something else. */
export async function probeSocketPath(path: string): Promise<PathState> {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return 'free';
  }
  if (!stat.isSocket()) return 'not-a-socket';
  return new Promise((resolve) => {
    const client = connect(path);
    client.once('connect', () => {
      client.destroy();
      resolve('live-socket');
    });
    client.once('error', (error: NodeJS.ErrnoException) => {
      client.destroy();
      resolve(error.code === 'ECONNREFUSED' ? 'stale-socket' : 'live-socket');
    });
  });
}

/** The identity of the file at `path` (not followed), or null when there is none. */
export function identityOf(path: string): FileIdentity | null {
  try {
    const stats = lstatSync(path);
    return { dev: stats.dev, ino: stats.ino };
  } catch {
    return null;
  }
}

/** Removes a socket path only if it is still the very socket we created (same dev and inode). */
export function removeOwnedSocket(path: string, identity: FileIdentity): void {
  const addon = loadUnixBindAddon();
  if (addon !== null) {
    addon.unixRemove(path, identity.dev, identity.ino);
    return;
  }
  try {
    const stats = lstatSync(path);
    if (stats.isSocket() && stats.dev === identity.dev && stats.ino === identity.ino)
      unlinkSync(path);
  } catch {
    // already gone: nothing to remove
  }
}

/**
 * Gives our socket at `path` the owner and mode of `spec`, in place (connections queued or
 * open stay). Throws (ESTALE when the path no longer holds our socket; without the addon,
 * always: the caller binds afresh instead).
 */
export function retuneSocket(path: string, identity: FileIdentity, spec: SocketSpec): void {
  const addon = loadUnixBindAddon();
  if (addon === null) throw new Error('changing a socket in place needs the native addon');
  const { dev, ino } = identity;
  addon.unixRetune(path, dev, ino, spec.uid ?? -1, spec.gid ?? -1, spec.mode);
}

/** Whether the listening socket `fd` has connections waiting; null when it cannot be told. */
export function hasPendingConnections(fd: number): boolean | null {
  const addon = loadUnixBindAddon();
  if (addon === null) return null;
  try {
    return addon.unixPending(fd);
  } catch {
    return null;
  }
}

/**
 * Why binding in `dir` by path is unsafe, or null: a symlink on the way not owned by root or
 * the daemon's user, or a directory on the way (the target's too) that another user can write
 * (owned by someone else, or group/other-writable and not sticky). Used only without the addon.
 */
export function unsafeDirectory(dir: string): string | null {
  const euid = process.geteuid?.() ?? 0;
  const isTrusted = (uid: number): boolean => uid === 0 || uid === euid;
  const absolute = resolve(dir);
  for (const path of ancestors(absolute)) {
    const stats = lstatOrNull(path);
    if (stats?.isSymbolicLink() === true && !isTrusted(stats.uid))
      return `the symlink ${path} is owned by uid ${stats.uid}`;
  }
  let real: string;
  try {
    real = realpathSync(absolute);
  } catch (error) {
    return `cannot resolve ${absolute}: ${(error as Error).message}`;
  }
  for (const path of ancestors(real)) {
    const stats = lstatOrNull(path);
    if (stats === null) return `cannot read ${path}`;
    const isOpen = (stats.mode & 0o022) !== 0 && (stats.mode & 0o1000) === 0;
    if (!isTrusted(stats.uid) || isOpen) {
      const mode = (stats.mode & 0o7777).toString(8).padStart(4, '0');
      return `the directory ${path} can be written by another user (uid ${stats.uid}, mode ${mode})`;
    }
  }
  return null;
}

function ancestors(absolute: string): string[] {
  const list: string[] = [];
  for (let path = absolute; ; path = dirname(path)) {
    list.push(path);
    if (dirname(path) === path) return list.reverse();
  }
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}
