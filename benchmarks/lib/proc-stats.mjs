// What the bench reads from /proc: one process's own CPU and RSS, and the machine line.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import os from 'node:os';

/** Clock ticks per second of /proc/PID/stat times (sysconf _SC_CLK_TCK). */
export function readClockTicks() {
  const result = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(result.stdout?.trim());
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
}

/** Fields after the `(comm)` of /proc/PID/stat; index 0 is field 3 (state). null if gone. */
function readStatFields(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * utime + stime (fields 14 and 15) in clock ticks: the process's own CPU, all its threads,
 * excluding its children (cutime/cstime, fields 16 and 17, are not read).
 */
export function readCpuTicks(pid) {
  const fields = readStatFields(pid);
  return fields === null ? null : Number(fields[11]) + Number(fields[12]);
}

/** VmRSS in KiB, or null when the process is gone. */
export function readRssKiB(pid) {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}

/** Every process as { pid, state, ppid, pgrp, exe } (exe null when unreadable). */
export function listProcesses() {
  const processes = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = readStatFields(entry);
    if (fields === null) continue;
    let exe = null;
    try {
      exe = readlinkSync(`/proc/${entry}/exe`);
    } catch {
      // kernel threads and processes that just ended have no readable exe
    }
    processes.push({
      pid: Number(entry),
      state: fields[0],
      ppid: Number(fields[1]),
      pgrp: Number(fields[2]),
      exe,
    });
  }
  return processes;
}

/** nproc, CPU model, kernel, Node version and the 1-minute load average right now. */
export function describeMachine() {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match !== null) cpuModel = match[1].trim();
  } catch {
    // keep os.cpus()' answer
  }
  return {
    nproc: os.availableParallelism(),
    cpuModel,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    loadAverage1m: os.loadavg()[0],
  };
}
