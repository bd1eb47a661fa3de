import { readFileSync } from 'node:fs';
import type { RunningHandler } from '../connection/handler-table.js';
import type { Peer } from '../model/peer.js';
import type { HandlerOutcome } from '../model/spawn.js';

/** A running handler as a hand-over carries it to the next process. */
export type CarriedHandler = {
  readonly conn: string;
  readonly pid: number;
  readonly peer: Peer;
  readonly startedAt: number;
  /** Its start time in clock ticks since boot (/proc/PID/stat), to tell a reused pid apart. */
  readonly startTicks: number | null;
};

/** The state letter and start time (field 22) of a /proc/PID/stat line (pure). */
export function parseProcStat(text: string): { state: string; startTicks: number } | null {
  const close = text.lastIndexOf(')');
  if (close === -1) return null;
  const fields = text.slice(close + 2).split(' ');
  const state = fields[0];
  const startTicks = Number(fields[19]);
  if (state === undefined || !Number.isSafeInteger(startTicks)) return null;
  return { state, startTicks };
}

/** The start time of a live process, or null when it is gone (or a zombie). */
export function readStartTicks(pid: number): number | null {
  try {
    const stat = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return stat === null || stat.state === 'Z' || stat.state === 'X' ? null : stat.startTicks;
  } catch {
    return null;
  }
}

/** Whether the carried process still runs (same pid, same start time, not a zombie). */
function isStillRunning(handler: CarriedHandler): boolean {
  const ticks = readStartTicks(handler.pid);
  return ticks !== null && (handler.startTicks === null || ticks === handler.startTicks);
}

/**
 * Handlers of a previous process are not our children: we cannot wait for them, so one timer
 * checks /proc every `intervalMs` and resolves a handler's outcome once it is gone. The exit
 * status is unknown then: the outcome has both `exitCode` and `signal` null.
 */
export function watchCarriedHandlers(
  carried: readonly CarriedHandler[],
  intervalMs: number,
): RunningHandler[] {
  const pending = new Map<CarriedHandler, () => void>();
  const handlers = carried.map((c): RunningHandler => {
    const outcome = new Promise<HandlerOutcome>((resolve) => {
      pending.set(c, () => resolve({ kind: 'exit', exitCode: null, signal: null }));
    });
    return { conn: c.conn, pid: c.pid, peer: c.peer, startedAt: c.startedAt, outcome };
  });
  const check = (): void => {
    for (const [handler, resolve] of pending) {
      if (isStillRunning(handler)) continue;
      pending.delete(handler);
      resolve();
    }
    if (pending.size === 0) clearInterval(timer);
  };
  const timer = setInterval(check, intervalMs).unref();
  check();
  return handlers;
}
