// The refuse90 part of the Markdown report: per-server table, socketeer ÷ peer ratios, the
// served-fraction check and the servers left out.
import {
  describeRefusal,
  expectedServedFraction,
  refusalSources,
  servedFractionTolerance,
} from './refusal.mjs';

const fixed = (value, digits) =>
  value === null || value === undefined || value < 0 ? 'n/a' : value.toFixed(digits);
const ratio = (a, b) => (a === null || b === null || b === 0 ? 'n/a' : `${(a / b).toFixed(2)}×`);
const percent = (fraction) => `${(fraction * 100).toFixed(1)}%`;

/** served ÷ offered of a cell, and whether it is within the tolerance of 10%; null if none. */
export function checkServedFraction(r) {
  if (!(r.offered > 0)) return null;
  const fraction = r.served / r.offered;
  const isExpected = Math.abs(fraction - expectedServedFraction) <= servedFractionTolerance;
  return { fraction, isExpected };
}

/** The table's served cell: exact for access rules (ok or off), only roughly 10% by rate. */
function describeFraction(r, refusal) {
  const check = checkServedFraction(r);
  if (check === null) return 'n/a';
  if (refusal.by === 'rate') return `${percent(check.fraction)} (rate)`;
  return `${percent(check.fraction)} ${check.isExpected ? 'ok' : '**off**'}`;
}

function describeErrors(r) {
  const kinds = ['refused', 'reset', 'short', 'timeout', 'other'].filter((k) => r[k] > 0);
  if (kinds.length === 0) return String(r.errors);
  return `${r.errors} (${kinds.map((k) => `${k} ${r[k]}`).join(', ')})`;
}

function renderRow(server, cell) {
  const r = cell.loadgen;
  const cells = [
    server.label,
    describeRefusal(server.id, server.refusal),
    cell.concurrency,
    r.offered_per_s.toFixed(0),
    r.served_per_s.toFixed(0),
    r.refused_per_s.toFixed(0),
    describeFraction(r, server.refusal),
    fixed(cell.cpuUsPerOffered, 1),
    fixed(cell.childCpuUsPerOffered, 1),
    fixed(r.refused_p50_ms, 3),
    fixed(r.refused_p99_ms, 3),
    fixed(r.p99_ms, 3),
    describeErrors(r),
    cell.loadgenCpuPercent.toFixed(0),
  ];
  return `| ${cells.join(' | ')} |`;
}

function renderTable(servers, concurrencies) {
  const lines = [
    '| server | refused by | conc | offered conn/s | served/s | refused/s | served | server CPU µs/offered | reaped children CPU µs/offered | refused p50 ms | refused p99 ms | served p99 ms | errors | loadgen CPU % |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const concurrency of concurrencies) {
    for (const server of servers) {
      const cell = server.cells.find((c) => c.concurrency === concurrency);
      if (cell !== undefined) lines.push(renderRow(server, cell));
    }
  }
  return lines.join('\n');
}

function numbersOf(server, concurrency) {
  const cell = server.cells.find((c) => c.concurrency === concurrency);
  if (cell === undefined) return { offered: null, cpu: null, total: null };
  const total =
    cell.cpuUsPerOffered === null || cell.childCpuUsPerOffered === null
      ? null
      : cell.cpuUsPerOffered + cell.childCpuUsPerOffered;
  return { offered: cell.loadgen.offered_per_s, cpu: cell.cpuUsPerOffered, total };
}

/** socketeer's rows ÷ each peer's, per concurrency. */
function renderRatios(servers, concurrencies) {
  const ours = servers.filter((s) => s.id === 'socketeer');
  const peers = servers.filter((s) => s.id !== 'socketeer');
  if (ours.length === 0 || peers.length === 0) {
    return 'socketeer and at least one peer were not both measured, so there are no ratios.';
  }
  const lines = [
    '| conc | ratio | offered conn/s (>1: socketeer faster) | server CPU µs/offered (<1: socketeer cheaper) | server + reaped children CPU µs/offered |',
    '|--:|---|--:|--:|--:|',
  ];
  for (const concurrency of concurrencies) {
    for (const mine of ours) {
      const a = numbersOf(mine, concurrency);
      for (const peer of peers) {
        const b = numbersOf(peer, concurrency);
        const cells = [ratio(a.offered, b.offered), ratio(a.cpu, b.cpu), ratio(a.total, b.total)];
        lines.push(`| ${concurrency} | ${mine.label} ÷ ${peer.label} | ${cells.join(' | ')} |`);
      }
    }
  }
  return lines.join('\n');
}

/** The served fraction of one cell, and what it says about the run. */
function judgeFraction(server, cell) {
  const r = cell.loadgen;
  const check = checkServedFraction(r);
  if (check === null) return 'nothing offered';
  const served = `${percent(check.fraction)} served (${r.served} of ${r.offered})`;
  if (server.refusal.by === 'rate') {
    const total = server.refusal.rate.perSecond * refusalSources;
    const sizedFor = total / expectedServedFraction;
    return `${served}: the buckets admit ${total.toFixed(0)}/s in all, 10% of the ${sizedFor.toFixed(0)}/s the access variant was offered; this run was offered ${r.offered_per_s.toFixed(0)}/s`;
  }
  if (check.isExpected) return `${served}: as expected`;
  return `${served}: **not** within ${percent(servedFractionTolerance)} of ${percent(expectedServedFraction)}`;
}

/** One line per measured cell: the served fraction, checked against 10%. */
function renderFractionCheck(servers) {
  return servers
    .flatMap((server) =>
      server.cells.map(
        (cell) => `- ${server.label}, c=${cell.concurrency}: ${judgeFraction(server, cell)}`,
      ),
    )
    .join('\n');
}

/** The refuse90 sections of the report (an empty list when the scenario did not run). */
export function renderRefusalSections(refuse90, options) {
  if (refuse90 === null || refuse90 === undefined) return [];
  const measured = refuse90.servers.filter((s) => s.cells.length > 0);
  const intro =
    `Each cell: ${options.warmup} s warm-up, then ${options.duration} s with N connections in ` +
    `flight; the loadgen binds each new connection round-robin to 127.0.0.1 … ` +
    `127.0.0.${refusalSources}, and only 127.0.0.1 is allowed, so 9 of 10 offered connections ` +
    `are refused. A connection is served when it reads the handler's "hello\\n", refused when ` +
    `the server closes it (EOF or RST) with zero bytes read; anything else is an error. ` +
    `Offered = served + refused + errors, per second of the run. Server CPU is the server ` +
    `process's own utime+stime ÷ offered connections; reaped children CPU is its ` +
    `cutime+cstime (handlers, and for xinetd and tcpserver the forked children that refuse) ` +
    `÷ offered connections. socketeer decides before any fork; xinetd (\`only_from\`) and ` +
    `tcpserver (\`-x\` rules) fork first and refuse in the child. socketeer's rate variant ` +
    `(no access rules) gives every source alike a bucket of burst 1 refilled at a tenth of its ` +
    `access variant's offered conn/s ÷ ${refusalSources}, so about 10% is served if a rate ` +
    `refusal costs what a denial costs; its share is reported, not checked. Refusals are not ` +
    `logged by any server ` +
    `(socketeer's \`refuse\` record is info level, the bench runs it at warn).`;
  const skipped = refuse90.skipped.map((s) => `- ${s.label}: skipped: ${s.reason}`);
  const failed = refuse90.servers
    .filter((s) => s.status === 'failed')
    .map((s) => `- ${s.label}: failed: ${s.reason}`);
  const sections = [
    '## refuse90: 90% of offered connections refused',
    intro,
    renderTable(measured, options.refuseConcurrencies),
    '### Served fraction',
    renderFractionCheck(measured) || 'Nothing was measured.',
    '### socketeer ÷ peers (refuse90)',
    renderRatios(measured, options.refuseConcurrencies),
  ];
  if (skipped.length + failed.length > 0) {
    sections.push('### Not in the refuse90 table', [...skipped, ...failed].join('\n'));
  }
  return sections;
}
