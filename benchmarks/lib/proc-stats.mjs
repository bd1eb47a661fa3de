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

/** /proc/PID/stat as { comm, fields }: fields after `(comm)`, index 0 is field 3 (state). */
function readStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
    return { comm, fields: text.slice(text.lastIndexOf(')') + 2).split(' ') };
  } catch {
    return null;
  }
}

/** Fields after the `(comm)` of /proc/PID/stat; index 0 is field 3 (state). null if gone. */
function readStatFields(pid) {
  return readStat(pid)?.fields ?? null;
}

/**
 * utime + stime (fields 14 and 15) in clock ticks: the process's own CPU, all its threads,
 * excluding its children (cutime/cstime, fields 16 and 17, are not read).
 */
export function readCpuTicks(pid) {
  const fields = readStatFields(pid);
  return fields === null ? null : Number(fields[11]) + Number(fields[12]);
}

/**
 * cutime + cstime (fields 16 and 17) in clock ticks: the CPU of the children it has reaped
 * (handlers, and the forked children that refuse for xinetd and tcpserver). A child counts once
 * it is waited for, so a run's delta misses at most the children still running at its edges.
 */
export function readChildCpuTicks(pid) {
  const fields = readStatFields(pid);
  return fields === null ? null : Number(fields[13]) + Number(fields[14]);
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

/**
 * Every process as { pid, comm, state, ppid, pgrp, cpuTicks, exe } (cpuTicks: utime + stime;
 * exe null when unreadable, and not read at all with { withExe: false }).
 */
export function listProcesses({ withExe = true } = {}) {
  const processes = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(entry);
    if (stat === null) continue;
    const { comm, fields } = stat;
    processes.push({
      pid: Number(entry),
      comm,
      state: fields[0],
      ppid: Number(fields[1]),
      pgrp: Number(fields[2]),
      cpuTicks: Number(fields[11]) + Number(fields[12]),
      exe: withExe ? readExe(entry) : null,
    });
  }
  return processes;
}

function readExe(pid) {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null; // kernel threads and processes that just ended have no readable exe
  }
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
