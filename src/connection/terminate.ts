import { endTree, type Ending } from '../spawn/kill-escalator.js';
import { processTracking } from '../spawn/process-tracking.js';
import type { HandlerOutcome } from '../model/spawn.js';

export interface Killable {
  /** null: a proxied connection, which `close` ends (never forced). */
  readonly pid: number | null;
  readonly close?: (() => void) | undefined;
  readonly outcome: Promise<HandlerOutcome>;
  /** What its `end` record will say: `forced` is set when SIGKILL was needed. */
  readonly ending?: Ending | undefined;
}

/**
 * Ends handlers the way a super-server must, with the one kill escalator (spawn/kill-escalator):
 * SIGTERM to each handler's whole tree (process group, and its cgroup or descendants as the
 * daemon's process tracking sees them), SIGKILL to what is left after `graceMs`. Resolves when
 * every handler has been reaped. Returns the pids that were forced (SIGKILL while running).
 */
export async function terminateHandlers(
  handlers: readonly Killable[],
  graceMs: number,
): Promise<number[]> {
  const tracking = processTracking();
  const forced = await Promise.all(
    handlers.map((h) => {
      if (h.pid !== null) return endTree(tracking.treeOf(h.pid), h.outcome, graceMs, h.ending);
      h.close?.();
      return h.outcome.then(() => false);
    }),
  );
  return handlers.flatMap((h, i) => (forced[i] === true && h.pid !== null ? [h.pid] : []));
}

/** Sends `signal` to a running handler's whole tree (`kill`); false when nothing was there. */
export function signalTree(pid: number, signal: NodeJS.Signals): boolean {
  return processTracking().treeOf(pid).signal(signal);
}
