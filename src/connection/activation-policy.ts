import type { RestartPolicy } from '../config/types.js';
import type { HandlerOutcome } from '../model/spawn.js';

/** The first delay before an `accept: false` process starts again after an exit. */
export const firstDelayMs = 100;
/** The longest delay: quick failures double it up to this, and it never gives up. */
export const maxDelayMs = 30_000;
/** Uptime after which an exit counts as healthy again: the next delay is `firstDelayMs`. */
export const healthyUptimeMs = 10_000;

/** Signals a process ends by when asked to (systemd's clean exit signals): not a failure. */
const cleanSignals: ReadonlySet<string> = new Set(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGPIPE']);

/** What comes after an exit of an `accept: false` service's process. */
export interface AfterExit {
  /** `restart`: socketeer starts it again by itself; `demand`: the next connection does. */
  readonly next: 'restart' | 'demand';
  /** How long to wait first (nothing starts it meanwhile: connections wait in the backlog). */
  readonly delayMs: number;
}

/** An exit of an `accept: false` service's process, as `decideAfterExit` weighs it. */
export interface ProcessExit {
  readonly restart: RestartPolicy;
  readonly outcome: HandlerOutcome;
  readonly uptimeMs: number;
  /** The delay before this start (null: none yet). */
  readonly previousDelayMs: number | null;
  /** The daemon asked it to end (quiesce, stop, drain, reload): never a failure, no restart. */
  readonly isRequested: boolean;
}

/**
 * After an exit (pure): a failure is an exit code other than 0, a signal other than a clean one,
 * or a failed spawn, unless the daemon asked the process to end. `restart` decides whether
 * socketeer starts the process again by itself (never after an end it asked for: the next
 * connection starts the new one, as `quiesce` promises); otherwise the next connection does.
 * Either way not at once: after 100 ms, doubled by each failure within 10 s of its start up to
 * 30 s, back to 100 ms after a clean exit or 10 s of uptime.
 */
export function decideAfterExit(exit: ProcessExit): AfterExit {
  const { restart, outcome, uptimeMs, previousDelayMs, isRequested } = exit;
  const isFailure =
    !isRequested &&
    (outcome.kind === 'spawn-failed' ||
      (outcome.exitCode !== null && outcome.exitCode !== 0) ||
      (outcome.signal !== null && !cleanSignals.has(outcome.signal)));
  const isRestart =
    !isRequested && (restart === 'always' || (restart === 'on-failure' && isFailure));
  const isQuickFailure = isFailure && uptimeMs < healthyUptimeMs && previousDelayMs !== null;
  const delayMs = isQuickFailure ? Math.min(previousDelayMs * 2, maxDelayMs) : firstDelayMs;
  return { next: isRestart ? 'restart' : 'demand', delayMs };
}
