import type { ResolvedLimits } from './settings.js';

/** When a handler started at `startedAt` gets SIGTERM and, still alive, SIGKILL (ms). */
export interface RuntimeDeadlines {
  readonly termAt: number;
  readonly killAt: number;
}

/** The deadlines of `limits.runtimeMaxSec` and `limits.killGraceSec`, or null when unlimited. */
export function planRuntimeDeadlines(
  limits: ResolvedLimits,
  startedAt: number,
): RuntimeDeadlines | null {
  if (limits.runtimeMaxSec === null) return null;
  const termAt = startedAt + limits.runtimeMaxSec * 1000;
  return { termAt, killAt: termAt + limits.killGraceSec * 1000 };
}
