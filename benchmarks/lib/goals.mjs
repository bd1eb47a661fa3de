// The `goals` section: issue 15's targets, each checked against this run's own figures.
import { scaleFigures } from './report-scale.mjs';

const goalConcurrency = 8;

/** The c=8 cell of the first run of `id` that has one, with the run's label; or null. */
function cellAt(servers, id) {
  for (const server of servers.filter((s) => s.id === id)) {
    const cell = server.cells.find((c) => c.concurrency === goalConcurrency);
    if (cell !== undefined) return { label: server.label, cell };
  }
  return null;
}

/** { goal, figure, verdict } where verdict is 'met', 'not met' or 'not measured'. */
function check(goal, value, { limit, describe, isMet }) {
  if (value === null || value === undefined || Number.isNaN(value))
    return { goal, figure: 'n/a', verdict: 'not measured' };
  return { goal, figure: describe(value, limit), verdict: isMet(value, limit) ? 'met' : 'not met' };
}

function speedGoals(servers) {
  const ours = cellAt(servers, 'socketeer');
  const peer = cellAt(servers, 'tcpserver');
  const both = ours !== null && peer !== null;
  const rate = both ? ours.cell.loadgen.conn_per_s / peer.cell.loadgen.conn_per_s : null;
  const cpu =
    both && ours.cell.cpuUsPerConn !== null && peer.cell.cpuUsPerConn !== null
      ? { ours: ours.cell.cpuUsPerConn, peer: peer.cell.cpuUsPerConn }
      : null;
  return [
    check('c=8: conn/s at least 1.25× tcpserver’s', rate, {
      limit: 1.25,
      describe: (v) =>
        `${v.toFixed(2)}× (${ours.cell.loadgen.conn_per_s.toFixed(0)} against ${peer.cell.loadgen.conn_per_s.toFixed(0)})`,
      isMet: (v, limit) => v >= limit,
    }),
    check('c=8: daemon CPU per connection at most tcpserver’s', cpu?.ours, {
      limit: cpu?.peer,
      describe: (v, limit) => `${v.toFixed(0)} µs against ${limit.toFixed(0)} µs`,
      isMet: (v, limit) => v <= limit,
    }),
  ];
}

function memoryGoals(report) {
  const run = report.memory?.runs.find((r) => r.failed === undefined) ?? null;
  const spawnIdle = report.servers.find((s) => s.id === 'socketeer')?.rssIdleKiB ?? null;
  const idle = run?.idle?.rss ?? spawnIdle;
  const mib = (kib) => (kib === null || kib === undefined ? null : kib / 1024);
  const describe = (v, limit) => `${v.toFixed(1)} MiB (goal ${limit})`;
  const isMet = (v, limit) => v <= limit;
  const connections = report.memory?.connections ?? 30000;
  return [
    check('RSS idle at most 50 MiB', mib(idle), { limit: 50, describe, isMet }),
    check(
      `RSS after ${connections.toLocaleString('en')} connections at most 64 MiB`,
      mib(run?.loaded?.rss),
      {
        limit: 64,
        describe,
        isMet,
      },
    ),
  ];
}

function scaleGoals(scale) {
  const n = scale?.sizes.at(-1) ?? 1000;
  const figures = (key) => (scale === null || scale === undefined ? {} : scaleFigures(scale, key));
  const signed = (v) => `${v < 0 ? '−' : '+'}${Math.abs(v).toFixed(0)} ms`;
  const cpuOf = (key) => {
    const delta = figures(key).delta;
    return delta === null || delta === undefined ? '' : `; CPU ${signed(delta)}`;
  };
  const withinSecond = (key, cpuKey, what) =>
    check(`${n} services: ${what} within 1 s of one service’s`, figures(key).delta, {
      limit: 1000,
      describe: (v) =>
        `${signed(v)} (${figures(key).one.toFixed(0)} → ${figures(key).many.toFixed(0)} ms${cpuOf(cpuKey)})`,
      isMet: (v, limit) => v <= limit,
    });
  return [
    withinSecond('ready', 'readyCpu', 'start to READY=1'),
    withinSecond('reloadSame', 'reloadSameCpu', 'reload, nothing changed,'),
    withinSecond('reloadOne', 'reloadOneCpu', 'reload, one service changed,'),
  ];
}

/** The cost of one changed service among n, against among one: information, no verdict. */
function describeChangeCost(scale) {
  if (scale === null || scale === undefined) return null;
  const one = scaleFigures(scale, 'reloadOne');
  const same = scaleFigures(scale, 'reloadSame');
  if ([one.one, one.many, same.one, same.many].some((v) => v === null)) return null;
  const n = scale.sizes.at(-1);
  const signed = (v) => `${v < 0 ? '−' : '+'}${Math.abs(v).toFixed(0)} ms`;
  return (
    `A reload with one service changed, against one with nothing changed: ` +
    `${signed(one.many - same.many)} among ${n} services, ${signed(one.one - same.one)} among ` +
    `one (a negative figure is noise). What a reload of ${n} services costs beyond one ` +
    `(${signed(same.delta)}, nothing changed) is reading, validating, resolving and comparing ` +
    `every file; no listener is touched and nothing is logged per unchanged service.`
  );
}

/** The goals section as Markdown lines. */
export function renderGoals(report) {
  const rows = [...speedGoals(report.servers), ...memoryGoals(report), ...scaleGoals(report.scale)];
  const lines = [
    '## Goals (issue 15), from this run',
    '',
    '| goal | this run | verdict |',
    '|---|---|---|',
    ...rows.map((r) => `| ${r.goal} | ${r.figure} | ${r.verdict} |`),
  ];
  const cost = describeChangeCost(report.scale);
  if (cost !== null) lines.push('', cost);
  return lines.join('\n');
}
