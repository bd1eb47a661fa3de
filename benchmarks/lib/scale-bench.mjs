// The `scale` scenario (issue 15: 1,000 services start and reload within 1 s of one): socketeer
// started afresh on a config dir of 1 service and of N (`tcp:127.0.0.1:0` each, the bench
// handler), timed to its `ready:` line and to READY=1 on NOTIFY_SOCKET (a datagram socket of
// benchmarks/notify-sink.c); then reloads over the control socket with nothing changed and with
// one service's file changed, and `socketeer reload` (the CLI, its own start-up included).
// Each round starts both sizes; every figure is kept, the report shows medians.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { readMemoryKiB } from './memory-bench.mjs';
import { runProgram, startDaemon, stopDaemon, waitForLine } from './processes.mjs';

const reloadsPerRound = 3;
const deadlineMs = 120_000;

/**
 * CPU time of every thread of `pid` so far, in ms (/proc/PID/task/TID/schedstat: nanoseconds,
 * where /proc/PID/stat counts 10 ms ticks); null when it is gone. Less disturbed by other
 * processes than the wall time, on a busy machine.
 */
function readCpuMs(pid) {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8');
      ns += Number(text.split(' ')[0]);
    }
    return ns / 1e6;
  } catch {
    return null;
  }
}

/** NAME.json for each of n services; their names, in order. */
function writeServices(dir, n, handler) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const names = Array.from({ length: n }, (_, i) => `s${String(i).padStart(5, '0')}`);
  for (const name of names) writeService(dir, name, handler, null);
  return names;
}

function writeService(dir, name, handler, mark) {
  const service = { listen: 'tcp:127.0.0.1:0', exec: [handler], stderr: 'null' };
  if (mark !== null) service.env = { BENCH_MARK: mark };
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(service)}\n`);
}

/** The notify sink: every line it prints, with when it came ({ at, text }). */
async function startSink(ctx) {
  const path = join(ctx.workDir, 'scale-notify.sock');
  rmSync(path, { force: true });
  const logPath = join(ctx.logDir, 'scale-notify-sink.log');
  const child = startDaemon({ argv: [ctx.programs['notify-sink'], path], logPath });
  const lines = [];
  const waiters = new Set();
  let pending = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    const at = performance.now();
    pending += chunk;
    for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
      lines.push({ at, text: pending.slice(0, nl) });
      pending = pending.slice(nl + 1);
    }
    for (const waiter of waiters) waiter();
  });
  /** Resolves with the first line from index `from` on that matches `pattern`. */
  const waitFor = (pattern, from) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const line = lines.slice(from).find((l) => pattern.test(l.text));
        if (line === undefined) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(line);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no ${pattern} on NOTIFY_SOCKET within ${deadlineMs} ms`));
      }, deadlineMs);
      waiters.add(check);
      check();
    });
  await waitFor(/^bound$/, 0);
  return { path, child, mark: () => lines.length, waitFor };
}

/** One request on the control socket: { ms, reply } (ms from connect to the reply line). */
function controlRequest(path, request) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const socket = net.connect(path);
    let text = '';
    socket.setEncoding('utf8');
    socket.setTimeout(deadlineMs, () => socket.destroy(new Error('no reply to reload')));
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk) => {
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl === -1) return;
      const ms = performance.now() - t0;
      socket.destroy();
      resolve({ ms, reply: JSON.parse(text.slice(0, nl)) });
    });
    socket.on('error', reject);
  });
}

/** A reload over the control socket, checked against what it should have found. */
async function reloadChecked(control, expect) {
  const { ms, reply } = await controlRequest(control, { id: 1, cmd: 'reload' });
  const r = reply.result;
  if (reply.ok !== true || r?.applied === false)
    throw new Error(`reload: ${JSON.stringify(reply)}`);
  if (r.unchanged.length !== expect.unchanged || r.changed.join() !== expect.changed.join())
    throw new Error(
      `reload found ${r.unchanged.length} unchanged and changed [${r.changed}], expected ${expect.unchanged} and [${expect.changed}]`,
    );
  return ms;
}

/** Starts socketeer on `dir` (n services), measures, stops it; adds to `samples`. */
async function measureSize({ ctx, sink, dir, names, round }, samples) {
  const main = join(ctx.repoRoot, 'dist', 'src', 'main.js');
  const control = join(ctx.workDir, 'scale.control.sock');
  const argv = [process.execPath, main, 'serve', '--config-dir', dir, '--log-format', 'json'];
  argv.push('--control', control);
  const logPath = join(ctx.logDir, `scale-${names.length}.log`);
  const from = sink.mark();
  const t0 = performance.now();
  const child = startDaemon({ argv, env: { ...process.env, NOTIFY_SOCKET: sink.path }, logPath });
  try {
    const line = await waitForLine(child, /^ready: /, deadlineMs);
    samples.readyLine.push(performance.now() - t0);
    const pairs = line.slice('ready:'.length).trim().split(' ');
    if (pairs.length !== names.length) throw new Error(`ready with ${pairs.length} listeners`);
    samples.ready.push((await sink.waitFor(/(^| )READY=1( |$)/, from)).at - t0);
    samples.readyCpu.push(readCpuMs(child.pid));
    samples.rssKiB.push(readMemoryKiB(child.pid)?.rss ?? null);
    const n = names.length;
    let cpu = readCpuMs(child.pid);
    for (let k = 0; k < reloadsPerRound; k++)
      samples.reloadSame.push(await reloadChecked(control, { unchanged: n, changed: [] }));
    samples.reloadSameCpu.push((readCpuMs(child.pid) - cpu) / reloadsPerRound);
    cpu = readCpuMs(child.pid);
    for (let k = 0; k < reloadsPerRound; k++) {
      writeService(dir, names[0], ctx.handler, `${round}.${k}`);
      const one = { unchanged: n - 1, changed: [names[0]] };
      samples.reloadOne.push(await reloadChecked(control, one));
    }
    samples.reloadOneCpu.push((readCpuMs(child.pid) - cpu) / reloadsPerRound);
    const cliStart = performance.now();
    const cli = await runProgram([process.execPath, main, 'reload', '--control', control]);
    if (cli.code !== 0) throw new Error(`socketeer reload exited ${cli.code}: ${cli.stderr}`);
    samples.cliReload.push(performance.now() - cliStart);
  } finally {
    await stopDaemon(child);
  }
}

function emptySamples() {
  const wall = { readyLine: [], ready: [], reloadSame: [], reloadOne: [], cliReload: [] };
  return { ...wall, readyCpu: [], reloadSameCpu: [], reloadOneCpu: [], rssKiB: [] };
}

/**
 * Runs the scenario: `rounds` times, 1 service then `services`. Resolves with
 * { sizes, rounds, reloadsPerRound, samples: { [size]: {...} } } or with { failed } as well.
 */
export async function runScaleScenario(ctx, { options, say }) {
  const sizes = [...new Set([1, options.scaleServices])];
  const samples = Object.fromEntries(sizes.map((n) => [n, emptySamples()]));
  const result = { sizes, rounds: options.scaleRounds, reloadsPerRound, samples, failed: null };
  const sink = await startSink(ctx);
  try {
    const dirs = sizes.map((n) => {
      const dir = join(ctx.workDir, `scale-${n}.d`);
      return { n, dir, names: writeServices(dir, n, ctx.handler) };
    });
    for (let round = 1; round <= options.scaleRounds; round++) {
      for (const { n, dir, names } of dirs) {
        await measureSize({ ctx, sink, dir, names, round }, samples[n]);
        const s = samples[n];
        say(
          `scale: round ${round}, ${n} service${n === 1 ? '' : 's'}: READY=1 after ${s.ready.at(-1).toFixed(0)} ms, reload ${s.reloadSame.at(-1).toFixed(0)} ms unchanged, ${s.reloadOne.at(-1).toFixed(0)} ms with one changed`,
        );
      }
    }
  } catch (error) {
    result.failed = error.message;
    say(`scale: failed: ${error.message}`);
  } finally {
    await stopDaemon(sink.child, 1000);
  }
  return result;
}
