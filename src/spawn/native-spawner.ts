import type { Readable } from 'node:stream';

import { openStderrStream, useStderrPipes } from '../log/stderr-pipes.js';
import {
  isNativeSpawnError,
  type NativeAddon,
  type NativeExitCallback,
  type NativeSpawnError,
  type NativeSpawnOptions,
} from './native-addon.js';
import { PreparedSpawns, type NativeFixedOptions } from './native-prepared.js';
import type {
  HandlerOutcome,
  ProcessFeature,
  SpawnedHandler,
  SpawnFailure,
  SpawnPlacement,
  SpawnPlan,
  Spawner,
} from '../model/spawn.js';

/**
 * The spawner on the native addon: honours every feature of a plan. The handler's pid is known
 * when spawn returns, before its exec: a step that fails in the child (execve, chdir, setuid...)
 * comes as a 'spawn-failed' outcome of a handler with a pid, once that child is reaped.
 */
export function createNativeSpawner(addon: NativeAddon): Spawner {
  useStderrPipes(addon);
  const prepared = new PreparedSpawns(addon, fixedNativeOptions);
  return {
    name: 'native',
    unsupported: (): ProcessFeature[] => [],
    spawn: (plan, socketFd, placement) =>
      spawnHandler({ addon, prepared }, plan, { socketFd, placement }),
  };
}

interface NativeSpawning {
  readonly addon: NativeAddon;
  readonly prepared: PreparedSpawns;
}

interface SpawnTarget {
  readonly socketFd: number;
  readonly placement: SpawnPlacement | undefined;
}

function spawnHandler(
  spawning: NativeSpawning,
  plan: SpawnPlan,
  { socketFd, placement }: SpawnTarget,
): SpawnedHandler {
  let settle: (outcome: HandlerOutcome) => void = () => {};
  const outcome = new Promise<HandlerOutcome>((resolve) => {
    settle = resolve;
  });
  // A step that failed in the child (its exec included) is the outcome, not its exit code 127.
  // Real-time signals arrive as `SIGRTMIN+n`, outside NodeJS.Signals (Node has no names for them).
  const onExit: NativeExitCallback = (exitCode, signal, failure) => {
    settle(
      failure === null
        ? { kind: 'exit', exitCode, signal: signal as NodeJS.Signals | null }
        : { kind: 'spawn-failed', error: describeSpawnError(plan, failure) },
    );
  };
  let result: ReturnType<NativeAddon['spawn']>;
  try {
    const cgroupFd = placement === undefined ? -1 : placement.cgroupProcsFd;
    // An activation's plan (passFds, LISTEN_PID) is spawned once: nothing to prepare.
    if (plan.passFds.length === 0 && !plan.setListenPid) {
      result = spawning.prepared.spawn(plan, { socketFd, cgroupFd, onExit });
    } else {
      const options = buildNativeOptions(plan, socketFd);
      result = spawning.addon.spawn(cgroupFd < 0 ? options : { ...options, cgroupFd }, onExit);
    }
  } catch (error) {
    // Only a malformed plan throws: a bug upstream, still reported as a value.
    const message = `spawn ${plan.file}: ${(error as Error).message.replace(/^spawn: /, '')}`;
    return failedHandler({ code: 'EINVAL', message });
  }
  if (isNativeSpawnError(result)) return failedHandler(describeSpawnError(plan, result));
  if (result.stderrFd < 0) return { pid: result.pid, stderr: null, outcome };
  return new PipedHandler(result.pid, result.stderrFd, outcome);
}

/**
 * A handler with a stderr pipe: its fd for the addon's reader, or a stream made when first
 * asked for (the activation server, which hands the pipe over in an upgrade). The spawn server
 * takes the fd, so a handler that writes nothing to stderr costs no stream.
 */
class PipedHandler implements SpawnedHandler {
  private stream: Readable | null | undefined = undefined;

  constructor(
    readonly pid: number,
    readonly stderrFd: number,
    readonly outcome: Promise<HandlerOutcome>,
  ) {}

  get stderr(): Readable | null {
    if (this.stream === undefined) this.stream = openStderrStream(this.stderrFd);
    return this.stream;
  }
}

/**
 * Whether spawn returns only once the handler leads its own session. Not waiting is ~20% more
 * connections/s under load (native/launch.c); it is safe because signalGroup (spawn/group-tree.ts)
 * falls back to kill(pid) on ESRCH: a handler that has not run its setsid yet keeps the signal
 * pending and dies of it before its exec.
 */
const waitForSession = false;

/** The plan in the addon's terms ('log' is a pipe the caller reads). */
export function buildNativeOptions(plan: SpawnPlan, socketFd: number): NativeSpawnOptions {
  return {
    ...fixedNativeOptions(plan),
    envp: plan.env,
    stdinFd: socketFd,
    passFds: plan.passFds,
    setListenPid: plan.setListenPid,
  };
}

/** What a prepared spawn keeps of the plan: all but the environment, socket and fds. */
export function fixedNativeOptions(plan: SpawnPlan): NativeFixedOptions {
  return {
    file: plan.file,
    argv: plan.argv,
    cwd: plan.cwd,
    uid: plan.uid,
    gid: plan.gid,
    groups: plan.groups,
    umask: plan.umask,
    nice: plan.nice,
    rlimits: plan.rlimits,
    chroot: plan.chroot,
    noNewPrivileges: plan.noNewPrivileges,
    stderr: plan.stderr === 'log' ? 'pipe' : plan.stderr,
    waitForSession,
  };
}

/** `execve /x: no such file or directory`: the step, what it acted on, the reason. */
export function describeSpawnError(plan: SpawnPlan, error: NativeSpawnError): SpawnFailure {
  const subject = describeSubject(plan, error);
  const step = subject === null ? error.syscall : `${error.syscall} ${subject}`;
  return { code: error.errno, message: `${step}: ${error.message}` };
}

function describeSubject(plan: SpawnPlan, error: NativeSpawnError): string | null {
  switch (error.syscall) {
    case 'execve':
      return plan.file;
    case 'chdir':
      return plan.cwd ?? '/';
    case 'chroot':
      return plan.chroot;
    case 'setrlimit':
      return error.resource ?? null;
    case 'setresuid':
      return String(plan.uid);
    case 'setresgid':
      return String(plan.gid);
    case 'setgroups':
      return plan.groups === null ? '[]' : `[${plan.groups.join(',')}]`;
    case 'setpriority':
      return String(plan.nice);
    case 'prctl':
      return 'PR_SET_NO_NEW_PRIVS';
    case 'open':
      return '/dev/null';
    case 'cgroup':
      return 'cgroup.procs';
    default:
      return null;
  }
}

function failedHandler(error: SpawnFailure): SpawnedHandler {
  return { pid: null, stderr: null, outcome: Promise.resolve({ kind: 'spawn-failed', error }) };
}
