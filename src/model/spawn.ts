import type { Readable } from 'node:stream';

/** Where a handler's fd 2 goes. */
export type StderrTarget = 'log' | 'socket' | 'null';

export const rlimitNames = [
  'nofile',
  'nproc',
  'as',
  'data',
  'stack',
  'cpu',
  'fsize',
  'core',
  'memlock',
] as const;
export type RlimitName = (typeof rlimitNames)[number];

/** `null` is RLIM_INFINITY. */
export interface ResourceLimit {
  readonly resource: RlimitName;
  readonly soft: number | null;
  readonly hard: number | null;
}

/**
 * Everything needed to start one handler, computed before the fork (pure). The handler always
 * starts in a new session (setsid), so its pid is also its process group id (with the native
 * spawner, a moment after spawn returns: see signalGroup).
 */
export interface SpawnPlan {
  /** Absolute path of the program. */
  readonly file: string;
  /** Full argv, argv[0] included. */
  readonly argv: readonly string[];
  /** The whole environment as `KEY=value` strings; nothing else is inherited. */
  readonly env: readonly string[];
  readonly cwd: string | null;
  /** Both set or both null (null: the daemon's own credentials). */
  readonly uid: number | null;
  readonly gid: number | null;
  /** Supplementary groups; null leaves the daemon's own when uid is null, clears them otherwise. */
  readonly groups: readonly number[] | null;
  readonly umask: number | null;
  readonly nice: number | null;
  readonly rlimits: readonly ResourceLimit[];
  readonly chroot: string | null;
  readonly noNewPrivileges: boolean;
  readonly stderr: StderrTarget;
  /**
   * fds the process gets at 3, 4, … in this order (accept: false: the listening sockets); [] for
   * a per-connection handler.
   */
  readonly passFds: readonly number[];
  /**
   * accept: false: the child sets LISTEN_PID to its own pid (after clone, before execve),
   * replacing any LISTEN_PID in env; env already has LISTEN_FDS / LISTEN_FDNAMES.
   */
  readonly setListenPid: boolean;
}

/** How a handler ended. Exactly one of exitCode and signal is set. */
export interface HandlerExit {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SpawnFailure {
  /** errno name, e.g. ENOENT. */
  readonly code: string;
  readonly message: string;
}

export type HandlerOutcome =
  | ({ readonly kind: 'exit' } & HandlerExit)
  | { readonly kind: 'spawn-failed'; readonly error: SpawnFailure };

/** A started (or failed) handler. `pid` is null when the spawn failed before a process existed. */
export interface SpawnedHandler {
  readonly pid: number | null;
  /** The read end of the stderr pipe when the plan's stderr is 'log' (native: made when asked). */
  readonly stderr: Readable | null;
  /**
   * Native spawner, the plan's stderr 'log': the same pipe's fd, for a caller that has the
   * addon read it (log/stderr-pipes.ts) and then never asks for `stderr`.
   */
  readonly stderrFd?: number;
  /** Resolves once: on exit (after reaping) or on a spawn failure. Never rejects. */
  readonly outcome: Promise<HandlerOutcome>;
}

/** The field names of SpawnPlan that a spawner may be unable to honour. */
export type ProcessFeature = 'groups' | 'rlimits' | 'umask' | 'nice' | 'chroot' | 'noNewPrivileges';

/** Where a handler is put before it runs: the cgroup whose cgroup.procs is open as this fd. */
export interface SpawnPlacement {
  readonly cgroupProcsFd: number;
}

export interface Spawner {
  readonly name: 'native' | 'portable';
  /** The features of the plan this spawner cannot honour (empty: it can run it as planned). */
  unsupported(plan: SpawnPlan): ProcessFeature[];
  /**
   * Starts the handler with `socketFd` as its fd 0 and 1 and the plan's passFds as 3, 4, …
   * (no other fd of the daemon's). Never throws: every failure comes back as a 'spawn-failed'
   * outcome. The caller closes its own copy of the socket right after (not of the passFds).
   * With `placement`, the handler joins that cgroup: the native child before its exec, the
   * portable one (child_process cannot run code there) as soon as spawn has returned.
   */
  spawn(plan: SpawnPlan, socketFd: number, placement?: SpawnPlacement): SpawnedHandler;
}
