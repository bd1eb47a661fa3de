import type { EventLog } from '../log/events.js';
import { GroupTree } from './group-tree.js';
import type { HandlerTree } from './kill-escalator.js';
import type { SpawnedHandler, SpawnPlan, Spawner } from '../model/spawn.js';

/** How the daemon finds what a handler started: cgroup, else subreaper, else process group. */
export type TrackingMechanism = 'cgroup' | 'subreaper' | 'process-group';

export interface ProcessTracking {
  readonly mechanism: TrackingMechanism;
  /** The handler cgroups' parent (mechanism `cgroup`), else null. */
  readonly cgroup: string | null;
  /** Why cgroups are not in use (null when they are). */
  readonly reason: string | null;
  /** The tree of a handler not yet reaped; a plain process group for a pid it did not start. */
  treeOf(pid: number): HandlerTree;
  /** The spawner whose handlers are tracked (same name, same features). */
  wrap(spawner: Spawner): Spawner;
  /**
   * At shutdown, once every handler has ended: ends what is left of their trees and removes the
   * daemon's cgroups. After a hand-over (the handlers are the new process's) it only lets go.
   */
  close(hasHandedOver: boolean): Promise<void>;
}

/** Tracking by process group only: no addon, or nothing started yet. */
export function trackProcessGroups(reason: string): ProcessTracking {
  return {
    mechanism: 'process-group',
    cgroup: null,
    reason,
    treeOf: (pid) => new GroupTree(pid),
    wrap: (spawner) => spawner,
    close: () => Promise.resolve(),
  };
}

let active: ProcessTracking = trackProcessGroups('process tracking not started');

/**
 * The daemon's tracking. One per process, like the cgroup it lives in and its subreaper flag:
 * `serve` sets it at start-up; until then (and in tests that build a Daemon directly) handlers
 * are tracked by process group.
 */
export function processTracking(): ProcessTracking {
  return active;
}

export function useProcessTracking(tracking: ProcessTracking): void {
  active = tracking;
}

/** Wraps `spawner` so that `track` sees each started handler and its end. */
export function trackedSpawner(
  spawner: Spawner,
  track: (
    plan: SpawnPlan,
    spawn: (placement?: { cgroupProcsFd: number }) => SpawnedHandler,
  ) => SpawnedHandler,
): Spawner {
  return {
    name: spawner.name,
    unsupported: (plan) => spawner.unsupported(plan),
    spawn: (plan, socketFd) => track(plan, (placement) => spawner.spawn(plan, socketFd, placement)),
  };
}

/** The `process-tracking` record at start-up. */
export function logProcessTracking(log: EventLog, tracking: ProcessTracking): void {
  log.log('info', 'process-tracking', {
    mechanism: tracking.mechanism,
    cgroup: tracking.cgroup,
    reason: tracking.reason,
  });
}
