// The `proxy` scenario's Markdown table (see proxy-bench.mjs).

const fixed = (value, digits) =>
  value === null || value === undefined ? '' : value.toFixed(digits);

/** The table: MiB/s and CPU s/GiB at 1 and 8 streams per front, and each against the plain copy. */
export function renderProxy(proxy) {
  const mib = proxy.streamBytes / 2 ** 20;
  const plain = proxy.rows.find((r) => r.cells !== undefined && r.label.startsWith('plain'));
  const lines = [
    `### Proxy: ${mib} MiB streams from a Unix socket through a TCP front (best of ${proxy.rounds})`,
    '',
    '| front | 1 stream MiB/s | 8 streams MiB/s | CPU s/GiB (1 / 8) | of the plain copy (1 / 8) |',
    '| ----- | -------------: | --------------: | ----------------: | ------------------------: |',
  ];
  for (const row of proxy.rows) {
    if (row.skip !== undefined) {
      lines.push(`| ${row.label} | skipped: ${row.skip} | | | |`);
      continue;
    }
    const one = row.cells[1];
    const eight = row.cells[8];
    const ratio = (n) => fixed(row.cells[n].mibPerSec / plain.cells[n].mibPerSec, 2);
    const cpu =
      one.cpuSecPerGiB === null
        ? ''
        : `${fixed(one.cpuSecPerGiB, 2)} / ${fixed(eight.cpuSecPerGiB, 2)}`;
    const short = one.short + eight.short > 0 ? ` (${one.short + eight.short} short streams)` : '';
    lines.push(
      `| ${row.label}${short} | ${fixed(one.mibPerSec, 0)} | ${fixed(eight.mibPerSec, 0)} | ${cpu} | ${ratio(1)}× / ${ratio(8)}× |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
