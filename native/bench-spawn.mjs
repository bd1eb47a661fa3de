// Micro-measurement (not a test): spawning /bin/true with the native addon and with
// child_process.spawn. Prints spawns/s, this process's CPU per spawn (process.cpuUsage: user +
// system of every thread) and the time the event loop is blocked inside the spawn call
// (mean, median, 99th percentile). The native row is labelled with the addon's mode: clone (the
// call returns once the child has run setsid, before its exec; a second row with waitForSession
// false: at once after clone) or vfork (SOCKETEER_NATIVE_VFORK=1: it returns after the exec), and
// spawnPrepared (the daemon's path: options read once, no session wait);
// then the peak of live spawn arenas, the arenas cached at the end and this process's RSS.
// Usage: node native/bench-spawn.mjs [N=5000] [concurrency=1]
// SOCKETEER_NATIVE_ADDON=path/to/socketeer_native.node measures another build (e.g. an older one).
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { createRequire } from 'node:module';

const n = Number(process.argv[2] ?? 5000);
const concurrency = Number(process.argv[3] ?? 1);
const addonPath = process.env.SOCKETEER_NATIVE_ADDON ?? '../build/Release/socketeer_native.node';
const addon = createRequire(import.meta.url)(addonPath);
const devNull = openSync('/dev/null', 'r+');
// Builds before debugCounters() only had the vfork mode.
const counters = () => addon.debugCounters?.() ?? { mode: 'vfork', liveArenas: 0, cachedArenas: 0 };
let peakLiveArenas = 0;

function spawnNative(waitForSession = true) {
  let resolve;
  const exited = new Promise((r) => (resolve = r));
  const options = { file: '/bin/true', argv: ['true'], envp: [], stdinFd: devNull, waitForSession };
  const result = addon.spawn({ ...options, stderr: 'null', rlimits: [] }, resolve);
  if (result.errno !== undefined) throw new Error(`${result.syscall}: ${result.message}`);
  return exited;
}

// spawnPrepared (the daemon's path): the options read once, the env passed as one string.
let prepared = null;
function spawnPrepared() {
  let resolve;
  const exited = new Promise((r) => (resolve = r));
  const fixed = { file: '/bin/true', argv: ['true'], stderr: 'null', waitForSession: false };
  prepared ??= addon.spawnPrepare(fixed);
  const result = addon.spawnPrepared(prepared, devNull, -1, 'PATH=/bin', 1, resolve);
  if (result.errno !== undefined) throw new Error(`${result.syscall}: ${result.message}`);
  return exited;
}

function spawnNode() {
  const child = spawn('/bin/true', [], { stdio: [devNull, devNull, 'ignore'], env: {} });
  return new Promise((resolve, reject) => child.on('exit', resolve).on('error', reject));
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** `sample` runs after each start, outside the blocked-time measurement. */
async function measure(name, start, count = n, sample = () => {}) {
  const blocked = [];
  let started = 0;
  const worker = async () => {
    while (started < count) {
      started++;
      const before = process.hrtime.bigint();
      const exited = start();
      blocked.push(Number(process.hrtime.bigint() - before) / 1000);
      sample();
      await exited;
    }
  };
  const cpu = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const used = process.cpuUsage(cpu);
  return {
    spawner: name,
    'spawns/s': Math.round(count / wall),
    'cpu µs/spawn': Math.round((used.user + used.system) / count),
    'user µs': Math.round(used.user / count),
    'system µs': Math.round(used.system / count),
    'loop blocked µs: mean': Math.round(blocked.reduce((a, b) => a + b, 0) / count),
    p50: Math.round(percentile(blocked, 0.5)),
    p99: Math.round(percentile(blocked, 0.99)),
  };
}

await measure('warm-up', () => spawnNative(), 200);
await measure('warm-up', spawnNode, 200);
const native = await measure(
  `native (${counters().mode})`,
  () => spawnNative(),
  n,
  () => {
    peakLiveArenas = Math.max(peakLiveArenas, counters().liveArenas);
  },
);
const arenas = `peak ${peakLiveArenas} live, ${counters().cachedArenas} cached at the end`;
const rows = [native];
if (counters().mode === 'clone' && addon.debugCounters !== undefined) {
  rows.push(await measure('native (clone, no session wait)', () => spawnNative(false)));
}
if (addon.spawnPrepared !== undefined) {
  rows.push(await measure('native prepared (no session wait)', spawnPrepared));
}
rows.push(await measure('child_process', spawnNode));
console.log(`N=${n} concurrency=${concurrency} node ${process.version}`);
console.table(rows);
console.log(`arenas: ${arenas}; rss ${(process.memoryUsage.rss() / 2 ** 20).toFixed(1)} MiB`);
