// The Markdown report: spawn results table, socketeer ÷ peer ratios, loadgen ceiling, the
// refuse90 sections (report-refusal.mjs), skips, commands, config files.
import { describeQuiet } from './report-quiet.mjs';
import { renderRefusalSections } from './report-refusal.mjs';

const mib = (kib) => (kib === null || kib === undefined ? 'n/a' : (kib / 1024).toFixed(1));
const fixed = (value, digits) => (value === null || value < 0 ? 'n/a' : value.toFixed(digits));
const ratio = (a, b) => (a === null || b === null || b === 0 ? 'n/a' : `${(a / b).toFixed(2)}×`);

/** Errors of a spawn cell; a connection closed with zero bytes (refused_by_server) is one here. */
function describeErrors(r) {
  const kinds = ['refused', 'reset', 'short', 'timeout', 'other', 'refused_by_server'];
  const present = kinds.filter((k) => r[k] > 0);
  const total = r.errors + (r.refused_by_server ?? 0);
  if (present.length === 0) return String(total);
  return `${total} (${present.map((k) => `${k.replaceAll('_', ' ')} ${r[k]}`).join(', ')})`;
}

function renderRow(server, cell) {
  const r = cell.loadgen;
  return `| ${server.label} | ${cell.concurrency} | ${r.conn_per_s.toFixed(0)} | ${fixed(r.p50_ms, 3)} | ${fixed(r.p99_ms, 3)} | ${fixed(cell.cpuUsPerConn, 1)} | ${mib(server.rssIdleKiB)} | ${mib(cell.rssLoadedKiB)} | ${describeErrors(r)} | ${cell.loadgenCpuPercent.toFixed(0)} |`;
}

/** Rows grouped by concurrency, servers in run order within each group. */
function renderResults(servers, concurrencies) {
  const lines = [
    '| server | conc | conn/s | p50 ms | p99 ms | server CPU µs/conn | RSS idle MiB | RSS loaded MiB | errors | loadgen CPU % |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const concurrency of concurrencies) {
    for (const server of servers) {
      const cell = server.cells.find((c) => c.concurrency === concurrency);
      if (cell !== undefined) lines.push(renderRow(server, cell));
    }
  }
  return lines.join('\n');
}

function cellOf(server, concurrency) {
  const cell = server.cells.find((c) => c.concurrency === concurrency);
  return cell === undefined
    ? { connPerS: null, cpu: null }
    : { connPerS: cell.loadgen.conn_per_s, cpu: cell.cpuUsPerConn };
}

/** socketeer ÷ each peer, per concurrency, for conn/s (higher is better) and CPU/conn (lower). */
function renderRatios(servers, concurrencies) {
  const ours = servers.filter((s) => s.id === 'socketeer' && s.cells.length > 0);
  const peers = servers.filter((s) => s.id !== 'socketeer' && s.id !== 'null-server');
  if (ours.length === 0) return 'socketeer was not measured in this run, so there are no ratios.';
  const lines = [
    '| conc | ratio | conn/s (>1: socketeer faster) | CPU µs/conn (<1: socketeer cheaper) |',
    '|--:|---|--:|--:|',
  ];
  for (const concurrency of concurrencies) {
    for (const mine of ours) {
      const a = cellOf(mine, concurrency);
      for (const peer of peers) {
        const b = cellOf(peer, concurrency);
        lines.push(
          `| ${concurrency} | ${mine.label} ÷ ${peer.label} | ${ratio(a.connPerS, b.connPerS)} | ${ratio(a.cpu, b.cpu)} |`,
        );
      }
    }
  }
  return lines.join('\n');
}

/** Per concurrency: the null-server ceiling against the fastest spawning server. */
export function describeCeiling(servers, concurrencies) {
  const ceiling = servers.find((s) => s.id === 'null-server' && s.cells.length > 0);
  if (ceiling === undefined) return ['The null-server ceiling was not measured.'];
  return concurrencies.map((concurrency) => {
    const top = cellOf(ceiling, concurrency).connPerS;
    let fastest = null;
    for (const server of servers.filter((s) => s !== ceiling)) {
      const rate = cellOf(server, concurrency).connPerS;
      if (rate !== null && (fastest === null || rate > fastest.rate)) {
        fastest = { label: server.label, rate };
      }
    }
    if (top === null) return `c=${concurrency}: no ceiling measured.`;
    if (fastest === null) return `c=${concurrency}: ceiling ${top.toFixed(0)} conn/s.`;
    return `c=${concurrency}: ceiling ${top.toFixed(0)} conn/s = ${(top / fastest.rate).toFixed(1)}× the fastest spawning server (${fastest.label}, ${fastest.rate.toFixed(0)} conn/s).`;
  });
}

/** The spawn scenario's sections. */
function renderSpawnSections(report) {
  const { options, servers } = report;
  const measured = servers.filter((s) => s.cells.length > 0);
  return [
    '## spawn: every connection served',
    `Each cell: ${options.warmup} s warm-up, then ${options.duration} s with N connections kept ` +
      `in flight by \`benchmarks/loadgen.c\` (connect, read to EOF, close) on 127.0.0.1. ` +
      `Server CPU is the server process's own utime+stime (/proc/PID/stat fields 14+15, not its ` +
      `handlers) over the measured run ÷ connections served. Errors: refused, reset, short ` +
      `reply, timeout, closed with no reply. Loadgen CPU % is the generator's own CPU over the ` +
      `run (100 = one core).`,
    renderResults(measured, options.concurrencies),
    '### socketeer ÷ peers',
    renderRatios(measured, options.concurrencies),
    '### Loadgen ceiling',
    describeCeiling(measured, options.concurrencies)
      .map((line) => `- ${line}`)
      .join('\n'),
  ];
}

/** Every run of every scenario, labelled with its scenario when it is not spawn. */
function allRuns(report) {
  const refusal = (report.refuse90?.servers ?? []).map((s) => ({
    ...s,
    label: `refuse90: ${s.label}`,
  }));
  return [...report.servers, ...refusal];
}

/** Skips and failures of the spawn scenario, commands, config files, leftovers. */
function renderTail(report) {
  const { servers, skipped, leftovers } = report;
  const sections = [];
  const notRun = [
    ...skipped.map((s) => `- ${s.label}: skipped: ${s.reason}`),
    ...servers.filter((s) => s.status === 'failed').map((s) => `- ${s.label}: failed: ${s.reason}`),
  ];
  if (notRun.length > 0) sections.push('## Skipped or failed (spawn)', notRun.join('\n'));
  const runs = allRuns(report);
  sections.push('## Commands', runs.map((s) => `- ${s.label}: \`${s.command}\``).join('\n'));
  const configs = runs.filter((s) => s.config !== null);
  if (configs.length > 0) {
    const blocks = configs.map((s) => `${s.label}:\n\n\`\`\`\n${s.config.trimEnd()}\n\`\`\``);
    sections.push('## Config files', blocks.join('\n\n'));
  }
  sections.push(
    leftovers.length === 0
      ? 'No bench process was left running.'
      : `Left running after the bench (killed): ${leftovers.map((p) => `${p.pid} ${p.exe}`).join(', ')}`,
  );
  return sections;
}

/** The whole report as Markdown. */
export function renderMarkdown(report) {
  const { machine, options } = report;
  const sections = [
    `# socketeer bench, ${report.startedAt}`,
    `Machine: ${machine.nproc} × ${machine.cpuModel}; ${machine.kernel}; Node ${machine.node}; ` +
      `1-min load average ${machine.loadAverage1m.toFixed(2)} at start, ` +
      `${report.loadAverageAtEnd.toFixed(2)} at end (mostly the bench itself). Handler: \`benchmarks/handler.c\` ` +
      `(${report.handlerLinkage} C, writes "hello\\n", exits), the same for every server. ` +
      `Scenarios: ${options.scenarios.join(', ')}.`,
    ...describeQuiet(report),
    ...(options.scenarios.includes('spawn') ? renderSpawnSections(report) : []),
    ...renderRefusalSections(report.refuse90, options),
    ...renderTail(report),
  ];
  return `${sections.join('\n\n')}\n`;
}
