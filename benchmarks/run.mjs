// `npm run bench`: socketeer next to xinetd, tcpserver, systemd-socket-activate and a minimal Node
// spawn server, one at a time, same C handler, 127.0.0.1 only; plus the loadgen's own ceiling
// against a server that does not spawn. Progress goes to stderr; the Markdown table to stdout and
// benchmarks/out/results.md, the raw numbers to benchmarks/out/results.json.
// Options: `node benchmarks/run.mjs --help`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchmarkServer } from './lib/measure.mjs';
import { readOptions } from './lib/options.mjs';
import { describeMachine, readClockTicks } from './lib/proc-stats.mjs';
import { findLeftovers, isStopping, killEverything } from './lib/processes.mjs';
import { renderMarkdown } from './lib/report.mjs';
import { serverTable } from './lib/servers.mjs';
import { buildPrograms, ensurePeers } from './lib/toolchain.mjs';

const say = (line) => process.stderr.write(`bench: ${line}\n`);
const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const outDir = join(repoRoot, 'benchmarks', 'out');
const logDir = join(outDir, 'logs');

/** One entry per row group: socketeer once per requested spawner, every other server once. */
function expandRuns(options) {
  return options.servers.flatMap((id) =>
    id === 'socketeer' && options.spawners.length > 0
      ? options.spawners.map((spawner) => ({ id, spawner }))
      : [{ id, spawner: null }],
  );
}

/** The bench's own binaries, whose processes must all be gone at the end. */
function builtPrograms(dir) {
  return ['loadgen', 'null-server', 'handler'].map((name) => join(dir, name));
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

async function runAll(options, workDir) {
  const startedAt = new Date().toISOString();
  const machine = describeMachine();
  const built = buildPrograms(join(repoRoot, 'benchmarks'), outDir);
  if (built.error !== undefined) throw new Error(built.error);
  const { paths: programs, handlerLinkage } = built;
  const peers = ensurePeers(options.servers);
  const clockTicks = readClockTicks();
  const servers = [];
  const skipped = [];

  for (const { id, spawner } of expandRuns(options)) {
    const entry = serverTable[id];
    const ctx = { handler: programs.handler, programs, peers: peers.paths, workDir, logDir };
    Object.assign(ctx, { repoRoot, spawner });
    const label = entry.label(ctx);
    const peerSkip = peers.skipped[id];
    const plan = peerSkip === undefined ? await entry.plan(ctx) : { skip: peerSkip };
    if (plan.skip !== undefined) {
      say(`${label}: skipped: ${plan.skip}`);
      skipped.push({ id, label, reason: plan.skip });
      continue;
    }
    const logName = label.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '');
    const logPath = join(logDir, `${logName}.log`);
    const args = { label, plan, options, loadgen: programs.loadgen, clockTicks, logPath };
    const result = await benchmarkServer(args);
    if (isStopping()) break;
    if (result.status === 'failed') say(`${label}: failed: ${result.reason} (log: ${logPath})`);
    const command = plan.argv.join(' ');
    servers.push({ id, label, spawner, command, config: plan.config ?? null, logPath, ...result });
  }
  const leftovers = reapLeftovers(builtPrograms(outDir));
  const loadAverageAtEnd = os.loadavg()[0];
  return {
    startedAt,
    machine,
    options,
    handlerLinkage,
    clockTicks,
    servers,
    skipped,
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
    const markdown = renderMarkdown(report);
    writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(outDir, 'results.md'), markdown);
    process.stdout.write(markdown);
    const failed = report.servers.some((s) => s.status === 'failed');
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
