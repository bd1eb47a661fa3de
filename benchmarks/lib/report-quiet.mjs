// Was the machine quiet? The CPU other processes used during each measured run (the load
// average at the end is mostly the bench's own; the one at the start lags by a minute).
import { busyOtherCpuPercent } from './other-cpu.mjs';

/** Every measured cell of every scenario as { label, cell }. */
function everyCell(report) {
  const runs = [
    ...report.servers,
    ...(report.refuse90?.servers ?? []).map((s) => ({ ...s, label: `refuse90: ${s.label}` })),
  ];
  return runs.flatMap((run) =>
    run.cells
      .filter((cell) => cell.otherCpu !== undefined)
      .map((cell) => ({ label: run.label, cell })),
  );
}

function describeCell({ label, cell }) {
  const top = cell.otherCpu.top.map((p) => `${p.comm} ${p.percent.toFixed(0)}%`).join(', ');
  return `${label} c=${cell.concurrency}: ${cell.otherCpu.percent.toFixed(0)}%${top ? ` (${top})` : ''}`;
}

/** The quietness line, and a bold warning when the numbers are not to be trusted. */
export function describeQuiet(report) {
  const { machine } = report;
  const cells = everyCell(report);
  const lines = [];
  const reasons = [];
  // Without per-run measurements, the load average at the start is the only hint (it lags a
  // minute, so with them it would only repeat whatever ran just before).
  if (cells.length === 0 && machine.loadAverage1m > machine.nproc / 2) {
    reasons.push(`the 1-min load average was ${machine.loadAverage1m.toFixed(2)} when it started`);
  }
  if (cells.length > 0) {
    const worst = cells.reduce((a, b) =>
      b.cell.otherCpu.percent > a.cell.otherCpu.percent ? b : a,
    );
    lines.push(
      `Processes outside the bench used at most ${worst.cell.otherCpu.percent.toFixed(0)}% of ` +
        `one core during a measured run (${describeCell(worst)}).`,
    );
    const busy = cells.filter((c) => c.cell.otherCpu.percent > busyOtherCpuPercent);
    if (busy.length > 0) {
      const shown = busy.slice(0, 5).map(describeCell).join('; ');
      reasons.push(
        `other processes used more than ${busyOtherCpuPercent}% of a core during ${busy.length} ` +
          `of ${cells.length} measured runs: ${shown}${busy.length > 5 ? ` and ${busy.length - 5} more` : ''}`,
      );
    }
  }
  if (reasons.length > 0) {
    lines.push(
      `**The machine was busy**: ${reasons.join('; ')}. Absolute numbers are depressed and ` +
        'noisy; ratios between servers measured minutes apart are rough. Rerun on a quiet ' +
        'machine to compare.',
    );
  }
  return lines;
}
