import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawn } from 'node:child_process';
import type { EventLog } from '../log/events.js';
import {
  findCgroup2Mount,
  findOwnCgroup,
  HandlerCgroups,
  joinCgroup,
  pause,
  removeStaleRoots,
  type HandlerCgroup,
} from './cgroup.js';
import { GroupTree } from './group-tree.js';
import { endTree, waitFor } from './kill-escalator.js';
import { isRunning, readStat } from './proc-scan.js';
import { trackedSpawner, type ProcessTracking } from './process-tracking.js';
import type { SpawnedHandler } from '../model/spawn.js';

/**
 * A handler in a cgroup of its own: every process it starts stays there, whatever its group or
 * session. Signals go to every member; SIGKILL through cgroup.kill (what forks meanwhile too).
 */
class CgroupTree extends GroupTree {
  /** Set once the cgroup is empty and handed back: nothing of this handler is left. */
  isReleased = false;

  constructor(
    pid: number,
    readonly cgroup: HandlerCgroup,
    private readonly cgroups: HandlerCgroups,
  ) {
    super(pid);
  }

  override signal(signal: NodeJS.Signals): boolean {
    if (this.isReleased) return false;
    // Before the reap the leader may not be in its cgroup yet (the native child joins right
    // after its setsid, the portable one once spawn has returned): reach it by pid too.
    const reached = this.hasExited ? false : super.signal(signal);
    // Each process once: the leader and its group, reached above, are not signalled again. A
    // second SIGINT turns lighttpd's graceful stop into an immediate one, which drops the
    // connections it has accepted (issue 16).
    const isReached = (pid: number): boolean =>
      reached && (pid === this.pid || readStat(pid)?.pgrp === this.pid);
    this.cgroups.signal(this.cgroup, signal, isReached);
    return reached || !this.cgroups.isEmpty(this.cgroup);
  }

  override hasMembers(): boolean {
    if (this.isReleased) return false;
    return !this.hasExited || !this.cgroups.isEmpty(this.cgroup);
  }
}

export interface CgroupTrackingOptions {
  readonly log: EventLog;
  /** The SIGTERM-to-SIGKILL grace for what a handler leaves behind when it exits. */
  readonly graceMs: number;
}

/**
 * Creates `socketeer-PID` in the daemon's own cgroup (cgroup v2), proves that a process can be
 * moved into it, and returns the tracking; or the reason why not.
 */
export async function trackWithCgroups(
  options: CgroupTrackingOptions,
): Promise<ProcessTracking | string> {
  const parent = findDaemonCgroup();
  if (parent.startsWith('!')) return parent.slice(1);
  removeStaleRoots(parent, (pid) => isRunning(pid));
  let cgroups: HandlerCgroups;
  try {
    cgroups = new HandlerCgroups(join(parent, `socketeer-${process.pid}`));
  } catch (error) {
    return `cannot create a cgroup in ${parent}: ${(error as Error).message}`;
  }
  const problem = await probeJoin(cgroups);
  if (problem !== null) {
    await cgroups.close(1000);
    return problem;
  }
  return createTracking(cgroups, options);
}

/** The daemon's cgroup v2 directory, or `!why not`. */
function findDaemonCgroup(): string {
  let mount: string | null;
  let own: string | null;
  try {
    mount = findCgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'));
    own = findOwnCgroup(readFileSync('/proc/self/cgroup', 'utf8'));
  } catch (error) {
    return `!cannot read /proc: ${(error as Error).message}`;
  }
  if (mount === null) return '!no cgroup2 file system is mounted';
  if (own === null) return '!the daemon is in no cgroup v2 (no 0:: line in /proc/self/cgroup)';
  return join(mount, own);
}

/** Moves a short-lived child into a handler cgroup, as each handler will be; null: it works. */
async function probeJoin(cgroups: HandlerCgroups): Promise<string | null> {
  const cgroup = cgroups.acquire();
  const child = spawn('/bin/sh', ['-c', 'read x'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const gone = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  let problem: string | null = null;
  try {
    cgroups.members(cgroup); // readable
    if (child.pid === undefined) throw new Error('cannot start /bin/sh');
    joinCgroup(cgroup.procsFd, child.pid);
    if (!cgroups.members(cgroup).includes(child.pid)) throw new Error('the move did not happen');
  } catch (error) {
    problem = `cannot move a process into ${dirname(cgroup.path)}: ${(error as Error).message}`;
  }
  child.kill('SIGKILL');
  child.stdin?.destroy();
  await Promise.race([gone, pause(5000)]);
  await waitFor(() => cgroups.isEmpty(cgroup), 1000);
  cgroups.release(cgroup);
  return problem;
}

function createTracking(cgroups: HandlerCgroups, options: CgroupTrackingOptions): ProcessTracking {
  const handlers = new CgroupHandlers(cgroups, options);
  return {
    mechanism: 'cgroup',
    cgroup: cgroups.root,
    reason: null,
    treeOf: (pid) => handlers.treeOf(pid),
    wrap: (spawner) => trackedSpawner(spawner, (_plan, spawn) => handlers.start(spawn)),
    close: async (hasHandedOver) => {
      // After a hand-over the handlers, in their cgroups, are the new process's.
      if (hasHandedOver) return cgroups.dropFree();
      const left = await cgroups.close(Math.max(options.graceMs, 1000));
      if (left.length > 0)
        options.log.log('warn', 'process-tracking', { error: `cannot remove ${left.join(', ')}` });
    },
  };
}

/** The handlers running in cgroups of their own, by leader pid. */
class CgroupHandlers {
  private readonly running = new Map<number, CgroupTree>();

  constructor(
    private readonly cgroups: HandlerCgroups,
    private readonly options: CgroupTrackingOptions,
  ) {}

  treeOf(pid: number): GroupTree {
    return this.running.get(pid) ?? new GroupTree(pid);
  }

  /** Starts a handler in a cgroup of its own (by process group alone when none can be had). */
  start(spawn: (p?: { cgroupProcsFd: number }) => SpawnedHandler): SpawnedHandler {
    const { cgroups, options } = this;
    let cgroup: HandlerCgroup;
    try {
      cgroup = cgroups.acquire();
    } catch (error) {
      options.log.log('warn', 'process-tracking', {
        error: `no cgroup for a handler (${(error as Error).message}): tracked by process group`,
      });
      return spawn();
    }
    const spawned = spawn({ cgroupProcsFd: cgroup.procsFd });
    if (spawned.pid === null) {
      cgroups.release(cgroup);
      return spawned;
    }
    const tree = new CgroupTree(spawned.pid, cgroup, cgroups);
    this.running.set(spawned.pid, tree);
    // One reaction per handler (no chain, no async function): an empty cgroup is handed back
    // in it; only leftovers take the async path.
    const failed = (error: unknown): void => this.warn(`${cgroup.path}: ${String(error)}`);
    spawned.outcome.then(() => {
      try {
        this.settle(tree);
      } catch (error) {
        failed(error); // a throw here would be an unhandled rejection: the daemon's end
      }
    }, failed);
    return spawned;
  }

  /** The handler is reaped: hand its cgroup back once empty, ending what it left there. */
  private settle(tree: CgroupTree): void {
    tree.noteExited();
    if (this.running.get(tree.pid) === tree) this.running.delete(tree.pid);
    if (!tree.hasMembers()) return this.release(tree);
    this.endLeftovers(tree).catch((error: unknown) =>
      this.warn(`${tree.cgroup.path}: ${String(error)}`),
    );
  }

  private warn(error: string): void {
    this.options.log.log('warn', 'process-tracking', { error });
  }

  /** What a per-connection systemd unit leaves is ended with it (KillMode=control-group). */
  private async endLeftovers(tree: CgroupTree): Promise<void> {
    await endTree(tree, Promise.resolve(), this.options.graceMs);
    if (await waitFor(() => !tree.hasMembers(), 10000)) return this.release(tree);
    this.options.log.log('warn', 'process-tracking', {
      error: `${tree.cgroup.path}: still populated 10 s after SIGKILL; left until shutdown`,
    });
  }

  private release(tree: CgroupTree): void {
    tree.isReleased = true;
    this.cgroups.release(tree.cgroup);
  }
}
