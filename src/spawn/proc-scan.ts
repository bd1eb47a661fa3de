import { readdirSync, readFileSync } from 'node:fs';

/** The fields of /proc/PID/stat that process tracking needs. */
export interface ProcStat {
  readonly state: string;
  readonly ppid: number;
  readonly pgrp: number;
  readonly session: number;
  /** Start time in clock ticks since boot: tells a reused pid apart. */
  readonly startTicks: number;
}

/** Parses a /proc/PID/stat line (pure); null when malformed. */
export function parseStat(text: string): ProcStat | null {
  const close = text.lastIndexOf(')');
  if (close === -1) return null;
  const f = text.slice(close + 2).split(' ');
  const [state, ppid, pgrp, session] = [f[0], Number(f[1]), Number(f[2]), Number(f[3])];
  const startTicks = Number(f[19]);
  if (state === undefined || ![ppid, pgrp, session, startTicks].every(Number.isSafeInteger))
    return null;
  return { state, ppid, pgrp, session, startTicks };
}

/** The process's stat, or null when it is gone. */
export function readStat(pid: number): ProcStat | null {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** Whether a process still runs: there, not a zombie, and (when given) started at `ticks`. */
export function isRunning(pid: number, ticks?: number): boolean {
  const stat = readStat(pid);
  return (
    stat !== null &&
    stat.state !== 'Z' &&
    stat.state !== 'X' &&
    (ticks === undefined || stat.startTicks === ticks)
  );
}

/**
 * The children of `pid`, from /proc/PID/task/TID/children (every thread's: a child belongs to
 * the thread that forked it, an adopted orphan to any). Without that file (a kernel built
 * without CONFIG_PROC_CHILDREN), a scan of every /proc/PID/stat.
 */
export function childrenOf(pid: number): number[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of tids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && tid === tids[0])
        return scanForParent(pid);
      continue;
    }
    for (const word of text.trim().split(/\s+/)) if (word !== '') out.push(Number(word));
  }
  return out;
}

function scanForParent(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (readStat(Number(entry))?.ppid === pid) out.push(Number(entry));
  }
  return out;
}

/** Every process below `pid` in the process tree now (breadth first, `pid` excluded). */
export function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const child of childrenOf(next)) {
      if (out.length >= 100000) return out; // a fork bomb: enough to signal
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}
