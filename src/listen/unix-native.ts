// The addon's safe Unix socket operations (native/unix-bind.c), typed; null without the addon.
import { loadNativeAddon } from '../spawn/native-addon.js';

/** A file's identity: a socket path is ours while the same inode is at it. */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

export interface UnixBindOptions {
  readonly mode: number;
  /** -1: unchanged (the daemon's). */
  readonly uid: number;
  readonly gid: number;
  readonly backlog: number;
  /** Put the socket in place even over a live one (a reload replacing its own listener). */
  readonly replace: boolean;
}

/** The functions of native/unix-bind.c; each throws an Error with an errno `code`. */
export interface UnixBindAddon {
  /**
   * Binds `path` inside a fresh private directory next to it (every step through directory
   * fds, no symlink followed unless root's or the daemon's), sets owner and mode, listens and
   * renames it into place. EADDRINUSE: a live socket there; EEXIST: something not a socket.
   */
  unixBind(path: string, options: UnixBindOptions): FileIdentity & { readonly fd: number };
  /** Binds the abstract name exactly (no padding) and listens; the fd. */
  unixBindAbstract(name: string, backlog: number): number;
  /** Removes `path` only while it is still the socket `dev`/`ino`; whether it did. */
  unixRemove(path: string, dev: number, ino: number): boolean;
  /** Sets owner (-1: unchanged) and mode of our socket at `path` in place; ESTALE: not ours. */
  unixRetune(path: string, dev: number, ino: number, uid: number, gid: number, mode: number): void;
  /** Whether the listening socket `fd` has connections waiting. */
  unixPending(fd: number): boolean;
}

const names = ['unixBind', 'unixBindAbstract', 'unixRemove', 'unixRetune', 'unixPending'];

/** The addon's Unix functions, or null when the addon is not built (or predates them). */
export function loadUnixBindAddon(): UnixBindAddon | null {
  const addon = loadNativeAddon() as unknown as Record<string, unknown> | null;
  if (addon === null || !names.every((name) => typeof addon[name] === 'function')) return null;
  return addon as unknown as UnixBindAddon;
}
