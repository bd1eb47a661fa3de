import type { SpawnPlan } from '../model/spawn.js';
import type {
  NativeExitCallback,
  NativeSpawned,
  NativeSpawnError,
  NativeSpawnOptions,
} from './native-addon.js';

/** The options a prepared spawn fixes: all but the connection's own and the activation's. */
export type NativeFixedOptions = Omit<
  NativeSpawnOptions,
  'envp' | 'stdinFd' | 'cgroupFd' | 'passFds' | 'setListenPid'
>;

/** An opaque handle of the addon: a plan's fixed options, read once. */
export interface NativePreparedSpawn {
  readonly __brand: 'NativePreparedSpawn';
}

/** The addon's prepared spawn and its counters (native/spawn.c). */
export interface NativePreparedApi {
  debugCounters(): NativeDebugCounters;
  /** Reads the fixed options once; throws a TypeError for malformed ones, as spawn() does. */
  spawnPrepare(options: NativeFixedOptions): NativePreparedSpawn;
  /**
   * spawn() with the prepared options and the connection's own: its socket, its cgroup's
   * cgroup.procs (-1: none) and the whole environment as `envCount` entries joined by NUL bytes.
   * A child without a stderr pipe comes back as its pid alone (no object built in the addon).
   */
  spawnPrepared(
    prepared: NativePreparedSpawn,
    stdinFd: number,
    cgroupFd: number,
    envBlock: string,
    envCount: number,
    onExit: NativeExitCallback,
  ): NativeSpawned | NativeSpawnError | number;
}

/** For tests and benchmarks: how the addon spawns and the spawn arenas it holds. */
export interface NativeDebugCounters {
  /** 'clone': spawn() returns before the exec; 'vfork': SOCKETEER_NATIVE_VFORK=1 at load. */
  readonly mode: 'clone' | 'vfork';
  /** Arenas (a child's stack and plan) in use: children not yet known to have exec'd. */
  readonly liveArenas: number;
  /** Freed arenas kept for reuse. */
  readonly cachedArenas: number;
}

export const preparedFunctionNames = ['spawnPrepare', 'spawnPrepared', 'debugCounters'];

/** What one spawn of a plan adds to its fixed options. */
export interface PreparedLaunch {
  readonly socketFd: number;
  /** -1: no cgroup. */
  readonly cgroupFd: number;
  readonly onExit: NativeExitCallback;
}

interface Prepared {
  readonly fixed: NativeFixedOptions;
  readonly handle: NativePreparedSpawn;
}

/**
 * Spawns a plan through its prepared options, prepared once per plan shape: keyed by the plan's
 * argv array (one per service spec), checked field by field against the plan (a plan that
 * differs prepares anew), so that a spawn passes only its socket, cgroup and environment.
 */
export class PreparedSpawns {
  private readonly byArgv = new WeakMap<readonly string[], Prepared>();

  constructor(
    private readonly addon: NativePreparedApi,
    private readonly fixedOf: (plan: SpawnPlan) => NativeFixedOptions,
  ) {}

  /** Throws a TypeError for a malformed plan (not cached). */
  spawn(plan: SpawnPlan, launch: PreparedLaunch): NativeSpawned | NativeSpawnError {
    const { env } = plan;
    const result = this.addon.spawnPrepared(
      this.preparedFor(plan),
      launch.socketFd,
      launch.cgroupFd,
      env.join('\0'),
      env.length,
      launch.onExit,
    );
    return typeof result === 'number' ? { pid: result, pidfd: -1, stderrFd: -1 } : result;
  }

  private preparedFor(plan: SpawnPlan): NativePreparedSpawn {
    const cached = this.byArgv.get(plan.argv);
    if (cached !== undefined && isSameFixed(cached.fixed, plan)) return cached.handle;
    const fixed = this.fixedOf(plan);
    const handle = this.addon.spawnPrepare(fixed);
    this.byArgv.set(plan.argv, { fixed, handle });
    return handle;
  }
}

/** Whether `fixed` was made from a plan with these very fields (arrays by identity). */
function isSameFixed(fixed: NativeFixedOptions, plan: SpawnPlan): boolean {
  return (
    fixed.file === plan.file &&
    fixed.cwd === plan.cwd &&
    fixed.uid === plan.uid &&
    fixed.gid === plan.gid &&
    fixed.groups === plan.groups &&
    fixed.umask === plan.umask &&
    fixed.nice === plan.nice &&
    fixed.rlimits === plan.rlimits &&
    fixed.chroot === plan.chroot &&
    fixed.noNewPrivileges === plan.noNewPrivileges &&
    fixed.stderr === (plan.stderr === 'log' ? 'pipe' : plan.stderr)
  );
}
