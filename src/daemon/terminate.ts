import type { HandlerOutcome } from '../spawn/types.js';

export interface Killable {
  readonly pid: number;
  readonly outcome: Promise<HandlerOutcome>;
}

/**
 * Ends handlers the way a super-server must: SIGTERM to each handler's whole process group
 * (every handler leads its own session), then SIGKILL to the group of any still running after
 * `graceMs`. Resolves when every handler has been reaped. Returns the pids that were forced.
 */
export async function terminateHandlers(
  handlers: readonly Killable[],
  graceMs: number,
): Promise<number[]> {
  const forced: number[] = [];
  await Promise.all(
    handlers.map(async (handler) => {
      signalGroup(handler.pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs);
      });
      const first = await Promise.race([handler.outcome, timedOut]);
      clearTimeout(timer);
      if (first === 'timeout') {
        forced.push(handler.pid);
        signalGroup(handler.pid, 'SIGKILL');
        await handler.outcome;
      }
    }),
  );
  return forced;
}

/** Signals a process group; a group already gone is not an error. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    // A handler started a moment ago may not lead its session yet (the native spawner returns
    // before the child's setsid): signal the process itself. Its signals are blocked until just
    // before its exec, so the signal stays pending and ends it there. Callers pass only pids of
    // handlers not yet reaped, so the pid is still theirs.
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}
