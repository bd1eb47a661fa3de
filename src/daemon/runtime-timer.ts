import type { HandlerEnding } from '../accept/accept-connection.js';
import type { ResolvedLimits } from '../limits/settings.js';
import { planRuntimeDeadlines } from '../limits/runtime.js';
import type { EventLog } from '../log/events.js';
import { signalGroup } from './terminate.js';

export interface RuntimeTimerOptions {
  readonly pid: number;
  /** Updated here; the `end` record reads it. */
  readonly ending: HandlerEnding;
  readonly limits: ResolvedLimits;
  /** Monotonic ms, the clock `startedAt` was taken from. */
  readonly startedAt: number;
  readonly clock: () => number;
  /** Bound to the handler's `{service, conn}`. */
  readonly log: EventLog;
}

/**
 * Enforces `limits.runtimeMaxSec`: at the deadline, marks the handler timed out, logs `timeout`
 * and sends SIGTERM to its process group; `killGraceSec` later, SIGKILL to the group. Returns the
 * function to call once the handler has exited (null: no runtime limit). A group that outlives
 * its leader after the SIGTERM still gets the SIGKILL: its members keep the group id reserved,
 * and a group with no member left is not signalled.
 */
export function armRuntimeTimer(options: RuntimeTimerOptions): (() => void) | null {
  const { pid, ending, limits, log } = options;
  const deadlines = planRuntimeDeadlines(limits, options.startedAt);
  if (deadlines === null) return null;
  let killTimer: NodeJS.Timeout | undefined;
  const termTimer = setTimeout(
    () => {
      ending.timedOut = true;
      log.log('warn', 'timeout', {
        pid,
        runtimeMaxSec: limits.runtimeMaxSec,
        killGraceSec: limits.killGraceSec,
      });
      signalGroup(pid, 'SIGTERM');
      killTimer = setTimeout(
        () => {
          if (signalGroup(pid, 'SIGKILL')) ending.forced = true;
        },
        Math.max(0, deadlines.killAt - options.clock()),
      );
      killTimer.unref();
    },
    Math.max(0, deadlines.termAt - options.clock()),
  );
  return () => {
    clearTimeout(termTimer);
    if (killTimer !== undefined && !hasGroupMembers(pid)) clearTimeout(killTimer);
  };
}

/** Whether any process is left in the process group `pgid`. */
function hasGroupMembers(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
