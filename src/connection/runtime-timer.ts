import type { HandlerEnding } from './handler-table.js';
import type { ResolvedLimits } from '../limits/settings.js';
import { planRuntimeDeadlines } from '../limits/runtime.js';
import type { EventLog } from '../log/events.js';
import { endTree } from '../spawn/kill-escalator.js';
import { processTracking } from '../spawn/process-tracking.js';

export interface RuntimeTimerOptions {
  /** null: a proxied connection, ended by `close`. */
  readonly pid: number | null;
  readonly close?: (() => void) | undefined;
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
 * and ends its tree with the one kill escalator (SIGTERM, SIGKILL `killGraceSec` later to what
 * is left, `forced` when the handler itself needed it); a proxied connection is closed. Returns the function to call once the
 * handler has exited (null: no runtime limit).
 */
export function armRuntimeTimer(options: RuntimeTimerOptions): (() => void) | null {
  const { pid, ending, limits, log } = options;
  const deadlines = planRuntimeDeadlines(limits, options.startedAt);
  if (deadlines === null) return null;
  let markExited: () => void = () => undefined;
  const exited = new Promise<void>((resolve) => (markExited = resolve));
  const termTimer = setTimeout(
    () => {
      ending.timedOut = true;
      log.log('warn', 'timeout', {
        pid,
        runtimeMaxSec: limits.runtimeMaxSec,
        killGraceSec: limits.killGraceSec,
      });
      if (pid === null) return options.close?.();
      const graceMs = Math.max(0, deadlines.killAt - options.clock());
      void endTree(processTracking().treeOf(pid), exited, graceMs, ending);
    },
    Math.max(0, deadlines.termAt - options.clock()),
  );
  return () => {
    clearTimeout(termTimer);
    markExited();
  };
}
