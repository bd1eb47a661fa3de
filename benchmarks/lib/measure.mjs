// One server under load: start it, run the loadgen at each concurrency, read its own CPU and RSS
// around each measured run, stop it.
import { readFileSync } from 'node:fs';
import { busyOtherCpuPercent, measureOtherCpu, snapshotOtherCpu } from './other-cpu.mjs';
import { runProgram, stopDaemon } from './processes.mjs';
import { readChildCpuTicks, readCpuTicks, readRssKiB } from './proc-stats.mjs';
import { startServer } from './servers.mjs';

const say = (line) => process.stderr.write(`bench: ${line}\n`);

/**
 * Runs the loadgen once (for `seconds`, or until `count` connections when given); resolves with
 * its JSON result or throws with its stderr.
 */
export async function runLoadgen({ loadgen, port, concurrency, seconds, timeout, sources, count }) {
  const argv = [loadgen, '--port', String(port), '--concurrency', String(concurrency)];
  argv.push('--duration', String(seconds), '--timeout', String(timeout));
  if (sources > 0) argv.push('--sources', String(sources));
  if (count !== undefined) argv.push('--count', String(count));
  const result = await runProgram(argv);
  if (result.code !== 0) {
    throw new Error(`loadgen failed (${result.signal ?? `exit ${result.code}`}): ${result.stderr}`);
  }
  return JSON.parse(result.stdout);
}

/** Reads the server's own and its reaped children's CPU ticks; throws if it has exited. */
function readServerTicks(pid) {
  const own = readCpuTicks(pid);
  const children = readChildCpuTicks(pid);
  if (own === null || children === null) throw new Error('the server exited during the run');
  return { own, children };
}

/**
 * One measured cell: warm-up, CPU sample, measured run, CPU and RSS samples. CPU per connection
 * is given per served connection (cpuUsPerConn, the spawn table) and per offered one (served,
 * refused or failed: cpuUsPerOffered, and childCpuUsPerOffered for the reaped children);
 * otherCpu is what processes outside the bench used meanwhile.
 */
async function measureCell({ pid, port, concurrency, options, loadgen, clockTicks }) {
  const load = { loadgen, port, concurrency, timeout: options.timeout, sources: options.sources };
  if (options.warmup > 0) await runLoadgen({ ...load, seconds: options.warmup });
  const others = snapshotOtherCpu();
  const before = readServerTicks(pid);
  const result = await runLoadgen({ ...load, seconds: options.duration });
  const after = readServerTicks(pid);
  const otherCpu = describeOtherCpu(measureOtherCpu(others), clockTicks, result.duration_s);
  const rssLoadedKiB = readRssKiB(pid);
  const cpuTicks = after.own - before.own;
  const childCpuTicks = after.children - before.children;
  const perConn = (ticks, n) => (n > 0 ? ((ticks / clockTicks) * 1e6) / n : null);
  const loadgenCpuPercent =
    result.duration_s > 0 ? ((result.cpu_user_s + result.cpu_sys_s) / result.duration_s) * 100 : 0;
  return {
    concurrency,
    loadgen: result,
    cpuTicks,
    cpuUsPerConn: perConn(cpuTicks, result.count),
    cpuUsPerOffered: perConn(cpuTicks, result.offered),
    childCpuTicks,
    childCpuUsPerOffered: perConn(childCpuTicks, result.offered),
    rssLoadedKiB,
    loadgenCpuPercent,
    otherCpu,
  };
}

/** Other processes' CPU over the run as % of one core: { percent, top: [{pid, comm, percent}] }. */
function describeOtherCpu({ ticks, top }, clockTicks, seconds) {
  const percent = (n) => (seconds > 0 ? (n / clockTicks / seconds) * 100 : 0);
  return {
    percent: percent(ticks),
    top: top.map((p) => ({ pid: p.pid, comm: p.comm, percent: percent(p.ticks) })),
  };
}

/**
 * Benchmarks one planned server at every concurrency. Resolves with
 * { status: 'ok', rssIdleKiB, cells, stop } or { status: 'failed', reason, cells }.
 */
export async function benchmarkServer({ label, plan, options, loadgen, clockTicks, logPath }) {
  say(`${label}: starting: ${plan.argv.join(' ')}`);
  const started = await startServer(plan, { logPath });
  if (started.error !== undefined) {
    const stop = await stopDaemon(started.child);
    const said = lastLogLine(logPath);
    const reason = `did not start: ${started.error.message}${said ? `; it said: ${said}` : ''}`;
    return { status: 'failed', reason, cells: [], stop };
  }
  const { child, port } = started;
  const rssIdleKiB = readRssKiB(child.pid);
  const cells = [];
  let failure = null;
  for (const concurrency of options.concurrencies) {
    try {
      const cell = await measureCell({
        pid: child.pid,
        port,
        concurrency,
        options,
        loadgen,
        clockTicks,
      });
      cells.push(cell);
      say(`${label}: c=${concurrency}: ${summarise(cell, options.sources)}${describeNoise(cell)}`);
    } catch (error) {
      failure = `c=${concurrency}: ${error.message}`;
      break;
    }
  }
  const stop = await stopDaemon(child);
  if (stop.forced) say(`${label}: did not exit within 5 s of SIGTERM; killed`);
  if (failure !== null) return { status: 'failed', reason: failure, rssIdleKiB, cells, stop };
  return { status: 'ok', rssIdleKiB, cells, stop };
}

/** The last non-empty line of a server's stderr log (cut to 300 characters), or ''. */
function lastLogLine(logPath) {
  try {
    const lines = readFileSync(logPath, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '');
    return (lines.at(-1) ?? '').slice(0, 300);
  } catch {
    return '';
  }
}

/** A warning suffix when other processes used more than a little CPU during the run. */
function describeNoise({ otherCpu }) {
  if (otherCpu.percent <= busyOtherCpuPercent) return '';
  const top = otherCpu.top.map((p) => `${p.comm} ${p.percent.toFixed(0)}%`).join(', ');
  return `; NOISY: other processes used ${otherCpu.percent.toFixed(0)}% of a core (${top})`;
}

const us = (value) => (value === null ? 'n/a' : value.toFixed(0));

/** The progress line of one cell; with sources (refuse90), offered, served and refused. */
function summarise(cell, sources) {
  const r = cell.loadgen;
  if (!(sources > 0)) {
    return `${r.conn_per_s.toFixed(0)} conn/s, p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms, ${us(cell.cpuUsPerConn)} µs CPU/conn, ${r.errors + r.refused_by_server} errors`;
  }
  const served = r.offered > 0 ? `${((r.served / r.offered) * 100).toFixed(1)}%` : 'n/a';
  return `${r.offered_per_s.toFixed(0)} offered conn/s, ${r.served_per_s.toFixed(0)} served/s (${served} served), ${r.refused_per_s.toFixed(0)} refused/s, refused p99 ${r.refused_p99_ms.toFixed(2)} ms, ${us(cell.cpuUsPerOffered)} µs CPU/offered (+${us(cell.childCpuUsPerOffered)} children), ${r.errors} errors`;
}
