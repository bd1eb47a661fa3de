// The memory and scale sections of the report.
const mib = (kib) => (kib === null || kib === undefined ? 'n/a' : (kib / 1024).toFixed(1));

/** The median of the numbers in `list` (nulls left out), or null. */
export function median(list) {
  const sorted = list.filter((v) => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The memory section. */
export function renderMemory(memory) {
  const lines = [
    `## memory: socketeer idle and after ${memory.connections.toLocaleString('en')} connections`,
    `A fresh daemon for each row (\`--log-level warn\`, the spawn scenario's service): RSS ` +
      `(VmRSS) and its anonymous part (RssAnon, socketeer's own; the rest is mostly the ` +
      `\`node\` binary's pages) once ready, right after ${memory.connections} connections at ` +
      `c=${memory.concurrency}, and ${memory.settleMs / 1000} s later.`,
    '',
    '| server | RSS idle MiB | after MiB | after, 2 s later MiB | anon idle / after / later MiB | served | errors |',
    '|---|--:|--:|--:|--:|--:|--:|',
  ];
  for (const run of memory.runs) {
    if (run.failed !== undefined) {
      lines.push(`| ${run.label} | failed: ${run.failed} | | | | | |`);
      continue;
    }
    const anon = [run.idle, run.loaded, run.settled].map((m) => mib(m?.anon)).join(' / ');
    lines.push(
      `| ${run.label} | ${mib(run.idle?.rss)} | ${mib(run.loaded?.rss)} | ${mib(run.settled?.rss)} | ${anon} | ${run.load.count} | ${run.load.errors + run.load.refused_by_server} |`,
    );
  }
  return lines.join('\n');
}

const scaleRows = [
  ['readyLine', 'start to the `ready:` line, ms'],
  ['ready', 'start to READY=1 (sd_notify), ms'],
  ['reloadSame', 'reload, nothing changed (control socket), ms'],
  ['reloadOne', 'reload, one service changed (control socket), ms'],
  ['cliReload', '`socketeer reload`, nothing changed (CLI wall time), ms'],
  ['readyCpu', 'daemon CPU until READY=1, ms'],
  ['reloadSameCpu', 'daemon CPU per reload, nothing changed, ms'],
  ['reloadOneCpu', 'daemon CPU per reload, one service changed, ms'],
  ['rssKiB', 'RSS once ready, MiB'],
];

/** { one, many, delta } medians of one measure (RSS in MiB), for the table and the goals. */
export function scaleFigures(scale, key) {
  const [small, large] = [scale.sizes[0], scale.sizes.at(-1)];
  const scaleOf = key === 'rssKiB' ? 1 / 1024 : 1;
  const one = median(scale.samples[small][key]);
  const many = median(scale.samples[large][key]);
  if (one === null || many === null) return { one, many, delta: null };
  return { one: one * scaleOf, many: many * scaleOf, delta: (many - one) * scaleOf };
}

/** The scale section. */
export function renderScale(scale) {
  const large = scale.sizes.at(-1);
  const samplesOf = (key) => scale.samples[large][key].length;
  const lines = [
    `## scale: 1 service against ${large}`,
    `socketeer started afresh on a config dir of 1 and of ${large} services (each ` +
      `\`tcp:127.0.0.1:0\`, the bench handler, default log level, JSON log to a file), ` +
      `${scale.rounds} round${scale.rounds === 1 ? '' : 's'}; each start then reloads ` +
      `${scale.reloadsPerRound} times with nothing changed and ${scale.reloadsPerRound} times ` +
      `with one service's file changed (every reply checked: that many unchanged, that one ` +
      `changed). Medians of ${samplesOf('ready')} starts and ${samplesOf('reloadSame')} reloads ` +
      `each; delta: ${large} services − 1. Times are wall-clock; the daemon's CPU (every ` +
      `thread's, from /proc/PID/task/*/schedstat; per reload, the mean of each round's ` +
      `${scale.reloadsPerRound}) is what other processes on a busy machine disturb least.`,
    '',
    `| measure | 1 service | ${large} services | delta | ${large}: min – max |`,
    '|---|--:|--:|--:|--:|',
  ];
  for (const [key, label] of scaleRows) {
    const { one, many, delta } = scaleFigures(scale, key);
    const digits = key === 'rssKiB' ? 1 : 0;
    const show = (v) => (v === null ? 'n/a' : v.toFixed(digits));
    const values = scale.samples[large][key].filter((v) => v !== null);
    const unit = key === 'rssKiB' ? 1 / 1024 : 1;
    const range =
      values.length === 0
        ? 'n/a'
        : `${show(Math.min(...values) * unit)} – ${show(Math.max(...values) * unit)}`;
    lines.push(`| ${label} | ${show(one)} | ${show(many)} | ${show(delta)} | ${range} |`);
  }
  if (scale.failed !== null) lines.push('', `**The scenario failed**: ${scale.failed}`);
  return lines.join('\n');
}
