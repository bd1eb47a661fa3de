// The `proxy` scenario: MiB/s of 1 and 8 parallel 512 MiB streams from a Unix-socket source
// (benchmarks/stream.c) through a TCP front: socketeer's `proxy`, systemd-socket-proxyd under
// systemd-socket-activate, and socat, plus the source read directly (the plain copy), one after
// another in the same run; the proxy process's CPU seconds per GiB moved.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { readChildCpuTicks, readCpuTicks } from './proc-stats.mjs';
import { findFreePort, runProgram, startDaemon, stopDaemon, waitForLine } from './processes.mjs';

const streamBytes = 512 * 1024 * 1024;
const proxyd = '/lib/systemd/systemd-socket-proxyd';
const activate = '/usr/bin/systemd-socket-activate';

/** Compiles benchmarks/stream.c; the binary's path, or throws. */
function buildStream(sourceDir, outDir) {
  const path = join(outDir, 'stream');
  const cc = spawnSync(
    'cc',
    ['-O2', '-Wall', '-pthread', '-o', path, join(sourceDir, 'stream.c')],
    {
      encoding: 'utf8',
    },
  );
  if (cc.status !== 0) throw new Error(`cc stream.c failed: ${cc.stderr}`);
  return path;
}

/** Resolves once `port` on 127.0.0.1 accepts (a connection closed at once), or throws. */
async function waitForPort(port, child) {
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline && child.exitCode === null) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => resolve(true));
      socket.once('error', () => resolve(false));
      socket.once('connect', () => socket.destroy());
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/** The front servers: { label, start(ctx) -> { child, target, cpuOf() } }. */
function fronts(ctx) {
  const source = ctx.sourcePath;
  return [
    {
      label: 'plain copy (the source read directly, no proxy)',
      start: async () => ({ child: null, target: source }),
    },
    {
      label: 'socketeer `proxy` (splice)',
      start: async () => {
        const dir = join(ctx.workDir, 'proxy.d');
        mkdirSync(dir, { recursive: true });
        const service = { listen: 'tcp:127.0.0.1:0', proxy: `unix:${source}` };
        writeFileSync(join(dir, 'front.json'), JSON.stringify(service));
        const argv = [process.execPath, join(ctx.repoRoot, 'dist/src/main.js'), 'serve'];
        argv.push('--config-dir', dir, '--log-level', 'warn');
        argv.push('--control', join(ctx.workDir, 'proxy-control.sock'));
        const child = startDaemon({ argv, logPath: join(ctx.logDir, 'proxy-socketeer.log') });
        const line = await waitForLine(child, /^ready:/, 30000);
        const port = Number(/:(\d+)\s*$/.exec(line)?.[1]);
        return { child, target: `127.0.0.1:${port}` };
      },
    },
    {
      label: 'systemd-socket-proxyd (under systemd-socket-activate)',
      skip:
        existsSync(proxyd) && existsSync(activate) ? null : 'systemd-socket-proxyd not installed',
      start: async () => {
        const port = await findFreePort();
        const argv = [activate, '-l', `127.0.0.1:${port}`, proxyd, source];
        const child = startDaemon({ argv, logPath: join(ctx.logDir, 'proxy-proxyd.log') });
        await waitForPort(port, child);
        return { child, target: `127.0.0.1:${port}` };
      },
    },
    {
      label: 'socat `TCP-LISTEN,fork UNIX-CONNECT`',
      skip: existsSync('/usr/bin/socat') ? null : 'socat not installed',
      start: async () => {
        const port = await findFreePort();
        const listen = `TCP-LISTEN:${port},fork,reuseaddr,bind=127.0.0.1`;
        const argv = ['/usr/bin/socat', listen, `UNIX-CONNECT:${source}`];
        const child = startDaemon({ argv, logPath: join(ctx.logDir, 'proxy-socat.log') });
        await waitForPort(port, child);
        return { child, target: `127.0.0.1:${port}` };
      },
    },
  ];
}

/** The process's CPU ticks, its reaped children's included (socat forks per connection). */
function cpuTicks(pid) {
  return (readCpuTicks(pid) ?? 0) + (readChildCpuTicks(pid) ?? 0);
}

/** Waits until `pid` has no child left (socat's per-connection children are reaped). */
async function childrenGone(pid) {
  const deadline = Date.now() + 5000;
  const hasChild = () =>
    readdirSync(`/proc/${pid}/task`).some((tid) => {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
      return text.trim() !== '';
    });
  while (hasChild() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** One cell: `streams` parallel streams through `front`; { mibPerSec, cpuSecPerGiB, short }. */
async function measureCell(ctx, running, streams) {
  const pid = running.child?.pid ?? null;
  const before = pid === null ? 0 : cpuTicks(pid);
  const argv = [ctx.streamPath, 'fetch', running.target, String(streamBytes), String(streams)];
  const run = await runProgram(argv);
  if (run.code !== 0) throw new Error(`stream fetch failed: ${run.stderr}`);
  const { bytes, seconds, short } = JSON.parse(run.stdout);
  if (pid !== null) await childrenGone(pid);
  const cpuSec = pid === null ? null : (cpuTicks(pid) - before) / ctx.clockTicks;
  const gib = bytes / 2 ** 30;
  return {
    mibPerSec: bytes / 2 ** 20 / seconds,
    cpuSecPerGiB: cpuSec === null ? null : cpuSec / gib,
    short,
  };
}

/** Starts every front that is not skipped: [{ label, skip } | { label, running }]. */
async function startFronts(ctx) {
  const started = [];
  for (const front of fronts(ctx)) {
    if (front.skip) started.push({ label: front.label, skip: front.skip });
    else started.push({ label: front.label, running: await front.start() });
  }
  return started;
}

/**
 * Measures round by round, each round every front in turn (so a change in the machine's load
 * falls on all of them alike); each cell keeps its best round by MiB/s, CPU from that round.
 */
async function measureAll(ctx, started) {
  const best = new Map();
  for (const streams of [1, 8]) {
    for (let round = 0; round < ctx.rounds; round++) {
      for (const front of started) {
        if (front.running === undefined) continue;
        ctx.say(`proxy: ${streams} stream(s), round ${round + 1}: ${front.label}`);
        const cell = await measureCell(ctx, front.running, streams);
        const key = `${front.label} ${streams}`;
        if ((best.get(key)?.mibPerSec ?? -1) < cell.mibPerSec) best.set(key, cell);
      }
    }
  }
  return started.map((front) =>
    front.running === undefined
      ? { label: front.label, skip: front.skip }
      : {
          label: front.label,
          cells: { 1: best.get(`${front.label} 1`), 8: best.get(`${front.label} 8`) },
        },
  );
}

/**
 * Runs the scenario: ctx { repoRoot, outDir, workDir, logDir, clockTicks, rounds, say }.
 * Returns { streamBytes, rounds, rows: [{ label, cells: { 1: cell, 8: cell } } | { label, skip }] }.
 */
export async function runProxyScenario(ctx) {
  const streamPath = buildStream(join(ctx.repoRoot, 'benchmarks'), ctx.outDir);
  const sourcePath = join(ctx.workDir, 'source.sock');
  const source = startDaemon({
    argv: [streamPath, 'serve', sourcePath, String(streamBytes)],
    logPath: join(ctx.logDir, 'proxy-source.log'),
  });
  const full = { ...ctx, streamPath, sourcePath };
  let started = [];
  try {
    while (!existsSync(sourcePath)) await new Promise((r) => setTimeout(r, 20));
    started = await startFronts(full);
    return { streamBytes, rounds: ctx.rounds, rows: await measureAll(full, started) };
  } finally {
    for (const front of started) if (front.running?.child) await stopDaemon(front.running.child);
    await stopDaemon(source);
  }
}
