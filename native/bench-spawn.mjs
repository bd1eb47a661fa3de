// Micro-measurement (not a test): spawning /bin/true with the native addon and with
// child_process.spawn. Prints spawns/s, this process's CPU per spawn (process.cpuUsage: user +
// system of every thread) and the time the event loop is blocked inside the spawn call
// (mean, median, 99th percentile).
// Usage: node native/bench-spawn.mjs [N=5000] [concurrency=1]
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { createRequire } from 'node:module';

const n = Number(process.argv[2] ?? 5000);
const concurrency = Number(process.argv[3] ?? 1);
const addon = createRequire(import.meta.url)('../build/Release/socketeer_native.node');
const devNull = openSync('/dev/null', 'r+');

function spawnNative() {
  let resolve;
  const exited = new Promise((r) => (resolve = r));
  const options = { file: '/bin/true', argv: ['true'], envp: [], stdinFd: devNull };
  const result = addon.spawn({ ...options, stderr: 'null', rlimits: [] }, resolve);
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

async function measure(name, start, count = n) {
  const blocked = [];
  let started = 0;
  const worker = async () => {
    while (started < count) {
      started++;
      const before = process.hrtime.bigint();
      const exited = start();
      blocked.push(Number(process.hrtime.bigint() - before) / 1000);
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

await measure('warm-up', spawnNative, 200);
await measure('warm-up', spawnNode, 200);
const rows = [await measure('native', spawnNative), await measure('child_process', spawnNode)];
console.log(`N=${n} concurrency=${concurrency} node ${process.version}`);
console.table(rows);
