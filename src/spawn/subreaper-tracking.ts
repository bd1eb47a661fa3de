import type { EventLog } from '../log/events.js';
import { GroupTree } from './group-tree.js';
import { endTree, waitFor, type HandlerTree } from './kill-escalator.js';
import type { NativeAddon } from './native-addon.js';
import { childrenOf, descendantsOf, isRunning, readStat } from './proc-scan.js';
import { trackedSpawner, type ProcessTracking } from './process-tracking.js';

type Reaper = Pick<NativeAddon, 'reapPid'>;

/**
 * A handler's tree without cgroups: its process group, and every process found below it in the
 * process tree whenever the tree is signalled or looked at (remembered with its start time, so
 * that one which has left the group, the session and even its parent, adopted by the daemon as
 * subreaper, is still reached, and a reused pid is not).
 */
class SubreaperTree implements HandlerTree {
  private readonly seen = new Map<number, number>();
  private readonly group: GroupTree | null;

  constructor(
    readonly pid: number,
    private readonly reaper: Reaper,
    roots: readonly number[] = [],
  ) {
    this.group = pid > 0 ? new GroupTree(pid) : null;
    for (const root of roots) this.remember(root);
  }

  signal(signal: NodeJS.Signals): boolean {
    this.collect();
    const isGroupReached = this.group?.signal(signal) ?? false;
    let reached = isGroupReached;
    for (const [pid, ticks] of this.seen) {
      if (!isRunning(pid, ticks)) continue;
      // each process once: a member of the group had it above (a second SIGINT is not the first)
      if (isGroupReached && readStat(pid)?.pgrp === this.pid) continue;
      try {
        process.kill(pid, signal);
        reached = true;
      } catch {
        // gone meanwhile
      }
    }
    return reached;
  }

  hasMembers(): boolean {
    this.reapAdopted();
    this.collect();
    if (this.group?.hasMembers() === true) return true;
    return [...this.seen].some(([pid, ticks]) => isRunning(pid, ticks));
  }

  noteExited(): void {
    this.group?.noteExited();
  }

  private collect(): void {
    const roots = [...this.seen].filter(([pid, ticks]) => isRunning(pid, ticks)).map(([p]) => p);
    if (this.group !== null && !this.group.hasExited) roots.push(this.pid);
    for (const root of roots) for (const pid of descendantsOf(root)) this.remember(pid);
  }

  private remember(pid: number): void {
    if (this.seen.has(pid)) return;
    const stat = readStat(pid);
    if (stat !== null) this.seen.set(pid, stat.startTicks);
  }

  /** Orphans of this tree adopted by the daemon and dead: reaped (nobody else will). */
  private reapAdopted(): void {
    for (const [pid, ticks] of this.seen) {
      const stat = readStat(pid);
      if (stat?.state === 'Z' && stat.ppid === process.pid && stat.startTicks === ticks)
        this.reaper.reapPid(pid);
    }
  }
}

export interface SubreaperTrackingOptions {
  readonly addon: NativeAddon;
  readonly log: EventLog;
  readonly graceMs: number;
  /** Why not cgroups. */
  readonly reason: string;
}

/** How often adopted orphans that died are looked for and reaped. */
const reapIntervalMs = 1000;

/**
 * Makes the daemon a child subreaper and tracks handlers by process group and process tree;
 * throws when prctl fails.
 */
export function trackWithSubreaper(options: SubreaperTrackingOptions): ProcessTracking {
  const { addon, graceMs, reason } = options;
  addon.setChildSubreaper();
  const ownSession = readStat(process.pid)?.session ?? -1;
  const running = new Set<number>();
  /** Adopted zombies seen by the last pass: Node and the exit watches reap theirs at once. */
  let zombies = new Set<number>();

  /** Children of the daemon that it did not start: not handlers, not in its session. */
  const adopted = (): number[] =>
    childrenOf(process.pid).filter((pid) => {
      if (running.has(pid)) return false;
      const stat = readStat(pid);
      return stat !== null && stat.session !== ownSession;
    });

  const reapStrays = (): void => {
    const now = new Set<number>();
    for (const pid of adopted()) {
      if (readStat(pid)?.state !== 'Z') continue;
      if (zombies.has(pid)) addon.reapPid(pid);
      else now.add(pid);
    }
    zombies = now;
  };
  const timer = setInterval(reapStrays, reapIntervalMs).unref();

  return {
    mechanism: 'subreaper',
    cgroup: null,
    reason,
    treeOf: (pid) => new SubreaperTree(pid, addon),
    wrap: (spawner) =>
      trackedSpawner(spawner, (_plan, spawn) => {
        const spawned = spawn();
        const { pid } = spawned;
        if (pid !== null) {
          running.add(pid);
          void spawned.outcome.then(() => running.delete(pid));
        }
        return spawned;
      }),
    close: async (hasHandedOver) => {
      clearInterval(timer);
      if (hasHandedOver) return;
      // Every orphan adopted from any handler, and all below it.
      const strays = new SubreaperTree(-1, addon, adopted());
      await endTree(strays, Promise.resolve(), graceMs);
      await waitFor(() => !strays.hasMembers(), 2000); // reaps those the SIGKILL ended
    },
  };
}
