import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { RlimitName, SpawnPlan } from '../model/spawn.js';
import { preparedFunctionNames, type NativePreparedApi } from './native-prepared.js';

/**
 * The options of the addon's spawn(): the plan's process setup as it stands (null fields are left
 * as the daemon's; a null rlimit soft or hard is RLIM_INFINITY), its env as `envp`.
 */
export interface NativeSpawnOptions extends Pick<
  SpawnPlan,
  | 'file'
  | 'argv'
  | 'cwd'
  | 'uid'
  | 'gid'
  | 'groups'
  | 'umask'
  | 'nice'
  | 'rlimits'
  | 'chroot'
  | 'noNewPrivileges'
> {
  /** `KEY=value` strings: the handler's whole environment. */
  readonly envp: readonly string[];
  /** The connected socket: the handler's fd 0 and 1. */
  readonly stdinFd: number;
  readonly stderr: 'pipe' | 'socket' | 'null';
  /**
   * Default true: spawn() returns once the child leads its own session, so that kill(-pid)
   * reaches it. false: at once after clone; until the child has run its setsid (up to ~1 ms
   * under load) kill(-pid) fails with ESRCH and kill(pid) reaches it. Ignored in vfork mode.
   */
  readonly waitForSession?: boolean;
  /**
   * A handler cgroup's `cgroup.procs`, open for writing: the child writes "0" to it right after
   * its setsid, before anything of its own runs (a failed write is the step `cgroup`).
   */
  readonly cgroupFd?: number | null;
  /**
   * The child's fds 3, 4, … in this order (sources that are themselves among the targets are
   * moved up first), close-on-exec cleared, flags (O_NONBLOCK) kept. Default [].
   */
  readonly passFds?: readonly number[];
  /**
   * The child sets `LISTEN_PID=<its own pid>` after clone (any LISTEN_PID of envp is dropped).
   * Default false.
   */
  readonly setListenPid?: boolean;
}

export interface NativeSpawned {
  readonly pid: number;
  /** Owned and closed by the addon once the child is reaped (-1 from spawnPrepared: not told). */
  readonly pidfd: number;
  /** The read end of the stderr pipe (the caller owns it), or -1. */
  readonly stderrFd: number;
}

/**
 * A failed step of the spawn. Returned by spawn() when no child could run (or for any step in
 * vfork mode), the child if any already reaped; else passed to onExit once the child is reaped.
 */
export interface NativeSpawnError {
  /** errno name, e.g. ENOENT. */
  readonly errno: string;
  /** The step that failed: execve, chdir, chroot, setrlimit, setresuid, clone, pipe2, ... */
  readonly syscall: string;
  /** strerror text, lower case: `no such file or directory`. */
  readonly message: string;
  /** The rlimit when syscall is setrlimit. */
  readonly resource?: RlimitName;
}

/**
 * Called once, after the child is reaped; exitCode and signal are both null only if someone else
 * reaped it. `failure` is the step that failed in the child before its exec (it then exited with
 * 127), else null.
 */
export type NativeExitCallback = (
  exitCode: number | null,
  signal: string | null,
  failure: NativeSpawnError | null,
) => void;

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

export interface UserEntry {
  readonly uid: number;
  readonly gid: number;
  readonly name: string;
  readonly home: string;
  readonly shell: string;
}

export interface GroupEntry {
  readonly gid: number;
  readonly name: string;
}

export interface NativeAcceptOptions {
  /** A TCP listener (else Unix: no addresses). */
  readonly tcp: boolean;
  readonly noDelay: boolean;
  readonly keepAlive: boolean;
  /** getsockname(2) per connection: a wildcard listener's local end differs per connection. */
  readonly localEnds: boolean;
}

/**
 * One accepted connection, its fd the callee's: addresses null for a Unix listener, the local
 * end null unless `localEnds`. Called in the accept loop: the next accept4 waits for its return.
 */
export type NativeConnectionCallback = (
  fd: number,
  remoteAddress: string | null,
  remotePort: number | null,
  localAddress: string | null,
  localPort: number | null,
) => void;

/**
 * One message of a notify socket (native/notify.c): its bytes, its sender as the kernel tells
 * (SCM_CREDENTIALS; pid 0 and uid/gid -1 if none came), and the fds it carried (SCM_RIGHTS, now
 * the receiver's, close-on-exec). `truncated`: it did not fit (64 KiB, 253 fds) and was dropped:
 * `data` empty, its fds already closed.
 */
export interface NotifyDatagram {
  readonly data: Buffer;
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  readonly fds: readonly number[];
  readonly truncated: boolean;
}

/** accept4 failed (EMFILE...): accepting pauses 100 ms, connections stay in the backlog. */
export type NativeAcceptErrorCallback = (error: Error & { code: string }) => void;

/** The functions of build/Release/socketeer_native.node (native/addon.c). */
export interface NativeAddon extends NativePreparedApi {
  /**
   * Returns once the child exists (before its exec, except in vfork mode). Throws a TypeError
   * only for malformed options; system failures are returned or passed to onExit.
   */
  spawn(options: NativeSpawnOptions, onExit: NativeExitCallback): NativeSpawned | NativeSpawnError;
  /** SO_PEERCRED of an accepted Unix socket; throws a system error (code, syscall) on failure. */
  peerCredentials(fd: number): PeerCredentials;
  /** getgrouplist: the user's groups, `gid` included. */
  groupList(userName: string, gid: number): number[];
  /** A string is a name, a number an id; null when there is no such user. */
  lookupUser(nameOrId: string | number): UserEntry | null;
  lookupGroup(nameOrId: string | number): GroupEntry | null;
  /**
   * Polls the listening socket `fd` and accepts its connections (native/accept.c). Returns the
   * watch's own duplicate of `fd` (the caller may close `fd`). Throws a system error.
   */
  acceptStart(
    fd: number,
    options: NativeAcceptOptions,
    onConnection: NativeConnectionCallback,
    onError: NativeAcceptErrorCallback,
  ): number;
  /** Ends the watch whose fd `acceptStart` returned, and closes that fd; false if none. Once. */
  acceptStop(fd: number): boolean;
  /** Marks every fd from `fd` up close-on-exec (fds the daemon inherited reach no handler). */
  closeOnExecFrom(fd: number): void;
  /**
   * One-shot: calls onReadable() once when `fd` is readable (a pending connection on a listening
   * socket, a datagram on UDP). Does not read or accept. Throws a system error on a bad fd
   * (EEXIST when `fd` is watched already).
   */
  watchReadable(fd: number, onReadable: () => void): void;
  /** Stops a watch set by watchReadable (no-op if none). Must be called before `fd` is closed. */
  unwatchReadable(fd: number): void;
  /**
   * dup(2) with O_CLOEXEC (F_DUPFD_CLOEXEC, ≥ 3): the daemon's own copy of a listening socket
   * that outlives a net.Server. Throws a system error.
   */
  dupFd(fd: number): number;
  /** close(2); throws a system error (EBADF...) except for EINTR (the fd is closed then). */
  closeFd(fd: number): void;
  /** The port a bound IPv4/IPv6 UDP socket has; -1 when `fd` is no such socket. */
  datagramPort(fd: number): number;
  /**
   * A notify socket bound to the abstract name `name` (no leading NUL or `@`; 1 to 107 bytes):
   * SOCK_DGRAM, close-on-exec, non-blocking, SO_PASSCRED on. Throws a system error.
   */
  notifyOpen(name: string): number;
  /** One message waiting on a notify socket, or null (EAGAIN). Throws a system error. */
  notifyReceive(fd: number): NotifyDatagram | null;
  /** One datagram to the Unix socket `path` (`@name`: abstract); bytes sent. Throws. */
  datagramSend(path: string, data: Buffer): number;
  /** prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants come to the daemon. Throws. */
  setChildSubreaper(): void;
  /** Reaps that one child if it has exited (never "any child"); true when it was reaped now. */
  reapPid(pid: number): boolean;
}

export type NativeAddonProbe =
  | { readonly addon: NativeAddon; readonly reason: null }
  | { readonly addon: null; readonly reason: string };

const addonFile = path.join('build', 'Release', 'socketeer_native.node');
const functionNames = [
  ...preparedFunctionNames,
  'spawn',
  'peerCredentials',
  'groupList',
  'lookupUser',
  'lookupGroup',
  'acceptStart',
  'acceptStop',
  'closeOnExecFrom',
  'watchReadable',
  'unwatchReadable',
  'dupFd',
  'closeFd',
  'datagramPort',
  'notifyOpen',
  'notifyReceive',
  'datagramSend',
  'setChildSubreaper',
  'reapPid',
];

let cached: NativeAddonProbe | undefined;

/** The addon, or null when it was not built (or cannot be loaded). Cached. */
export function loadNativeAddon(): NativeAddon | null {
  return probeNativeAddon().addon;
}

/** The addon, or why it is unavailable (for `check` and the start-up log). Cached. */
export function probeNativeAddon(): NativeAddonProbe {
  cached ??= loadFrom(findPackageRoot(path.dirname(fileURLToPath(import.meta.url))));
  return cached;
}

/** Whether a spawn() result is a failure. */
export function isNativeSpawnError(
  result: NativeSpawned | NativeSpawnError,
): result is NativeSpawnError {
  return 'errno' in result;
}

function loadFrom(root: string | null): NativeAddonProbe {
  if (root === null)
    return {
      addon: null,
      reason: 'no package root (package.json and binding.gyp) above the module',
    };
  const file = path.join(root, addonFile);
  if (!existsSync(file)) return { addon: null, reason: `${file} not built` };
  let loaded: unknown;
  try {
    loaded = createRequire(import.meta.url)(file);
  } catch (error) {
    return { addon: null, reason: `${file}: ${(error as Error).message}` };
  }
  const missing = functionNames.filter((name) => !hasFunction(loaded, name));
  if (missing.length > 0) return { addon: null, reason: `${file}: lacks ${missing.join(', ')}` };
  return { addon: loaded as NativeAddon, reason: null };
}

function hasFunction(value: unknown, name: string): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Record<string, unknown>)[name] === 'function'
  );
}

/** binding.gyp too: tsc copies package.json into dist/ when a source imports it. */
function findPackageRoot(start: string): string | null {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'binding.gyp'))) {
      return dir;
    }
    if (path.dirname(dir) === dir) return null;
  }
}
