// How much CPU processes outside the bench used during a measured run: the check that the
// machine was quiet, cell by cell (the load average at the end mostly shows the bench itself).
import { isBenchGroup } from './processes.mjs';
import { listProcesses } from './proc-stats.mjs';

/** Above this much of one core used by others during a run, the report calls the machine busy. */
export const busyOtherCpuPercent = 10;

/**
 * True for the bench, its children (the loadgen) and everything under a process group it
 * created (servers, their handlers even in groups of their own), found by walking up ppid.
 */
function isBench(proc, byPid) {
  for (let p = proc, hops = 0; p !== undefined && hops < 64; p = byPid.get(p.ppid), hops++) {
    if (p.pid === process.pid || isBenchGroup(p.pgrp) || isBenchGroup(p.pid)) return true;
  }
  return false;
}

/** Kernel threads: kthreadd (pid 2) and its children; their work here is mostly the bench's. */
const isKernelThread = (proc) => proc.pid === 2 || proc.ppid === 2;

/** CPU ticks of every process outside the bench right now: Map pid → { comm, ticks }. */
export function snapshotOtherCpu() {
  const processes = listProcesses({ withExe: false });
  const byPid = new Map(processes.map((proc) => [proc.pid, proc]));
  const others = new Map();
  for (const proc of processes) {
    if (isKernelThread(proc) || isBench(proc, byPid)) continue;
    others.set(proc.pid, { comm: proc.comm, ticks: proc.cpuTicks });
  }
  return others;
}

/**
 * CPU other processes used since `before` (processes that started and ended in between are
 * missed; one that started in between counts whole): { ticks, top } with the three busiest as
 * { pid, comm, ticks }.
 */
export function measureOtherCpu(before) {
  const used = [];
  for (const [pid, now] of snapshotOtherCpu()) {
    const ticks = now.ticks - (before.get(pid)?.ticks ?? 0);
    if (ticks > 0) used.push({ pid, comm: now.comm, ticks });
  }
  used.sort((a, b) => b.ticks - a.ticks);
  return { ticks: used.reduce((sum, p) => sum + p.ticks, 0), top: used.slice(0, 3) };
}
