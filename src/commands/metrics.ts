import { ExitCode } from '../model/errors.js';
import { askDaemon, type ControlArgs, type Out } from './ask-daemon.js';

const metricsTimeoutMs = 10000;

/** `metrics`: the daemon's counters in the Prometheus text format, as GET /metrics serves them. */
export async function runMetrics(args: ControlArgs, out: Out): Promise<number> {
  const { text } = await askDaemon(args, { cmd: 'metrics' }, metricsTimeoutMs);
  out(text);
  return ExitCode.ok;
}
