// `npm run bench`: socketeer next to xinetd, tcpserver, systemd-socket-activate and a minimal Node
// spawn server, one at a time, same C handler, 127.0.0.x only; plus the loadgen's own ceiling
// against a server that does not spawn. Two scenarios: `spawn` (every connection served) and
// `refuse90` (9 of 10 client addresses refused, by access or by rate). Progress goes to stderr;
// the Markdown tables to stdout and benchmarks/out/results.md, the raw numbers to
// benchmarks/out/results.json.
// Options: `node benchmarks/run.mjs --help`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchmarkServer } from './lib/measure.mjs';
import { readOptions } from './lib/options.mjs';
import { describeMachine, readClockTicks } from './lib/proc-stats.mjs';
import { findLeftovers, isStopping, killEverything } from './lib/processes.mjs';
import { renderGoals } from './lib/goals.mjs';
import { runMemoryScenario } from './lib/memory-bench.mjs';
import { runProxyScenario } from './lib/proxy-bench.mjs';
import { renderMarkdown } from './lib/report.mjs';
import { renderProxy } from './lib/report-proxy.mjs';
import { renderMemory, renderScale } from './lib/report-scale.mjs';
import { runScaleScenario } from './lib/scale-bench.mjs';
import { serverTable } from './lib/servers.mjs';
import {
  calibrateRate,
  expandRefusalRuns,
  labelRefusalRun,
  refusalSources,
} from './lib/refusal.mjs';
import { buildPrograms, ensurePeers } from './lib/toolchain.mjs';

const say = (line) => process.stderr.write(`bench: ${line}\n`);
const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const outDir = join(repoRoot, 'benchmarks', 'out');
const logDir = join(outDir, 'logs');

/** Spawn scenario runs: socketeer once per requested spawner, every other server once. */
function expandSpawnRuns(options) {
  return options.servers.flatMap((id) =>
    id === 'socketeer' && options.spawners.length > 0
      ? options.spawners.map((spawner) => ({ id, spawner, refusal: null }))
      : [{ id, spawner: null, refusal: null }],
  );
}

/** The bench's own binaries, whose processes must all be gone at the end. */
function builtPrograms(dir) {
  const names = ['loadgen', 'null-server', 'vfork-server', 'notify-sink', 'handler', 'stream'];
  return names.map((name) => join(dir, name));
}

/** Kills what the bench left behind (by pid) and returns the list. */
function reapLeftovers(programs) {
  const leftovers = findLeftovers(programs);
  for (const proc of leftovers) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // ended by itself meanwhile
    }
  }
  return leftovers;
}

/** A run's label and slug (a file-name stem, unique per run). */
function nameRun(run, ctx, scenario) {
  const base = serverTable[run.id].label(ctx);
  const label = run.refusal === null ? base : labelRefusalRun(run.id, base, run.refusal);
  const stem = label.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return { label, slug: scenario === 'spawn' ? stem : `${scenario}-${stem}` };
}

/**
 * The run's refusal (null, as given, or the rate variant calibrated on the runs measured so far)
 * as { refusal } or { skip }: a skipped run, a missing peer, nothing to calibrate on.
 */
function resolveRefusal(run, { peers, measured }) {
  if (run.skip !== undefined) return { skip: run.skip };
  if (peers.skipped[run.id] !== undefined) return { skip: peers.skipped[run.id] };
  if (run.refusal?.by !== 'rate') return { refusal: run.refusal };
  const concurrency = run.concurrencies[0];
  const calibrated = calibrateRate(measured, { spawner: run.spawner, concurrency });
  if (calibrated.skip !== undefined) return calibrated;
  return { refusal: { by: 'rate', rate: calibrated.rate } };
}

/** Plans, starts, measures and stops one run; resolves with its entry, or { skip }. */
async function measureRun(scenario, run, env, measured) {
  const { options, programs, peers, workDir, clockTicks } = env;
  const ctx = { handler: programs.handler, programs, peers: peers.paths, workDir, logDir };
  Object.assign(ctx, { repoRoot, spawner: run.spawner, refusal: run.refusal });
  const { label, slug } = nameRun(run, ctx, scenario.id);
  const resolved = resolveRefusal(run, { peers, measured });
  const plan =
    resolved.skip === undefined
      ? await serverTable[run.id].plan({ ...ctx, slug, refusal: resolved.refusal })
      : resolved;
  if (plan.skip !== undefined) return { skip: { id: run.id, label, reason: plan.skip } };
  const logPath = join(logDir, `${slug}.log`);
  const concurrencies = run.concurrencies ?? scenario.load.concurrencies;
  const result = await benchmarkServer({
    label: `${scenario.id}: ${label}`,
    plan,
    options: { ...options, ...scenario.load, concurrencies },
    loadgen: programs.loadgen,
    clockTicks,
    logPath,
  });
  if (result.status === 'failed') say(`${label}: failed: ${result.reason} (log: ${logPath})`);
  const { id, spawner } = run;
  const command = plan.argv.join(' ');
  const config = plan.config ?? null;
  const refusal = resolved.refusal;
  return { entry: { id, label, spawner, refusal, command, config, logPath, ...result } };
}

/**
 * Runs one scenario's runs in order; resolves with { servers, skipped }. scenario.load is what
 * the loadgen does: { concurrencies, sources } (sources 0: the kernel picks the client address).
 */
async function runScenario(scenario, runs, env) {
  const servers = [];
  const skipped = [];
  for (const run of runs) {
    const outcome = await measureRun(scenario, run, env, servers);
    if (isStopping()) break;
    if (outcome.skip !== undefined) {
      say(`${scenario.id}: ${outcome.skip.label}: skipped: ${outcome.skip.reason}`);
      skipped.push(outcome.skip);
    } else servers.push(outcome.entry);
  }
  return { servers, skipped };
}

async function runAll(options, workDir) {
  const startedAt = new Date().toISOString();
  const machine = describeMachine();
  const built = buildPrograms(join(repoRoot, 'benchmarks'), outDir);
  if (built.error !== undefined) throw new Error(built.error);
  const { paths: programs, handlerLinkage } = built;
  const peers = ensurePeers(options.servers);
  const clockTicks = readClockTicks();
  const env = { options, programs, peers, workDir, clockTicks };
  const wants = (id) => options.scenarios.includes(id);

  const spawn = wants('spawn')
    ? await runScenario(
        { id: 'spawn', load: { concurrencies: options.concurrencies, sources: 0 } },
        expandSpawnRuns(options),
        env,
      )
    : { servers: [], skipped: [] };
  const refuse90 =
    wants('refuse90') && !isStopping()
      ? await runScenario(
          {
            id: 'refuse90',
            load: { concurrencies: options.refuseConcurrencies, sources: refusalSources },
          },
          expandRefusalRuns(options),
          env,
        )
      : null;
  const footprint = { programs, handler: programs.handler, workDir, logDir, repoRoot };
  const memory =
    wants('memory') && options.servers.includes('socketeer') && !isStopping()
      ? await runMemoryScenario(footprint, { options, say })
      : null;
  const scale =
    wants('scale') && !isStopping() ? await runScaleScenario(footprint, { options, say }) : null;
  const proxy =
    wants('proxy') && !isStopping()
      ? await runProxyScenario({
          repoRoot,
          outDir,
          workDir,
          logDir,
          clockTicks,
          rounds: options.proxyRounds,
          say,
        })
      : null;
  const leftovers = reapLeftovers(builtPrograms(outDir));
  const loadAverageAtEnd = os.loadavg()[0];
  return {
    startedAt,
    machine,
    options,
    handlerLinkage,
    clockTicks,
    servers: spawn.servers,
    skipped: spawn.skipped,
    refuse90: refuse90 === null ? null : { sources: refusalSources, ...refuse90 },
    memory,
    scale,
    proxy,
    leftovers,
    loadAverageAtEnd,
  };
}

async function main() {
  const parsed = readOptions(process.argv.slice(2), process.env);
  if (parsed.help !== undefined) {
    process.stdout.write(`${parsed.help}\n`);
    return 0;
  }
  if (parsed.error !== undefined) {
    process.stderr.write(`bench: ${parsed.error}\n`);
    return 100;
  }
  mkdirSync(outDir, { recursive: true });
  rmSync(logDir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });
  const workDir = mkdtempSync(join(os.tmpdir(), 'socketeer-bench-'));
  const onSignal = async (signal) => {
    say(`${signal}: stopping every server and handler`);
    await killEverything();
    const leftovers = reapLeftovers(builtPrograms(outDir));
    if (leftovers.length > 0) say(`killed leftovers: ${leftovers.map((p) => p.pid).join(' ')}`);
    rmSync(workDir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const report = await runAll(parsed.options, workDir);
    const markdown = [
      renderMarkdown(report),
      ...(report.memory === null ? [] : [`${renderMemory(report.memory)}\n`]),
      ...(report.scale === null ? [] : [`${renderScale(report.scale)}\n`]),
      ...(report.proxy === null ? [] : [renderProxy(report.proxy)]),
      `${renderGoals(report)}\n`,
    ].join('\n');
    writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(outDir, 'results.md'), markdown);
    process.stdout.write(markdown);
    const all = [...report.servers, ...(report.refuse90?.servers ?? [])];
    const failed =
      all.some((s) => s.status === 'failed') ||
      (report.memory?.runs ?? []).some((r) => r.failed !== undefined) ||
      (report.scale?.failed ?? null) !== null;
    return failed || report.leftovers.length > 0 ? 1 : 0;
  } finally {
    await killEverything();
    rmSync(workDir, { recursive: true, force: true });
  }
}

process.exitCode = await main().catch((error) => {
  if (isStopping()) return 130; // Ctrl-C: the signal handler reports and exits
  process.stderr.write(`bench: fatal: ${error.stack ?? error}\n`);
  return 111;
});
