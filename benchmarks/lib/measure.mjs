// One server under load: start it, run the loadgen at each concurrency, read its own CPU and RSS
// around each measured run, stop it.
import { readFileSync } from 'node:fs';
import { runProgram, stopDaemon } from './processes.mjs';
import { readCpuTicks, readRssKiB } from './proc-stats.mjs';
import { startServer } from './servers.mjs';

const say = (line) => process.stderr.write(`bench: ${line}\n`);

/** Runs the loadgen once; resolves with its JSON result or throws with its stderr. */
export async function runLoadgen({ loadgen, port, concurrency, seconds, timeout }) {
  const argv = [loadgen, '--port', String(port), '--concurrency', String(concurrency)];
  argv.push('--duration', String(seconds), '--timeout', String(timeout));
  const result = await runProgram(argv);
  if (result.code !== 0) {
    throw new Error(`loadgen failed (${result.signal ?? `exit ${result.code}`}): ${result.stderr}`);
  }
  return JSON.parse(result.stdout);
}

/** One measured cell: warm-up, CPU sample, measured run, CPU and RSS samples. */
async function measureCell({ pid, port, concurrency, options, loadgen, clockTicks }) {
  const load = { loadgen, port, concurrency, timeout: options.timeout };
  if (options.warmup > 0) await runLoadgen({ ...load, seconds: options.warmup });
  const before = readCpuTicks(pid);
  const result = await runLoadgen({ ...load, seconds: options.duration });
  const after = readCpuTicks(pid);
  const rssLoadedKiB = readRssKiB(pid);
  if (before === null || after === null) throw new Error('the server exited during the run');
  const cpuTicks = after - before;
  const cpuUsPerConn = result.count > 0 ? ((cpuTicks / clockTicks) * 1e6) / result.count : null;
  const loadgenCpuPercent =
    result.duration_s > 0 ? ((result.cpu_user_s + result.cpu_sys_s) / result.duration_s) * 100 : 0;
  return { concurrency, loadgen: result, cpuTicks, cpuUsPerConn, rssLoadedKiB, loadgenCpuPercent };
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
      say(`${label}: c=${concurrency}: ${summarise(cell)}`);
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

function summarise(cell) {
  const r = cell.loadgen;
  const cpu = cell.cpuUsPerConn === null ? 'n/a' : cell.cpuUsPerConn.toFixed(0);
  return `${r.conn_per_s.toFixed(0)} conn/s, p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms, ${cpu} µs CPU/conn, ${r.errors} errors`;
}
