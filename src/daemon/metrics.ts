import { refuseReasons } from '../limits/reasons.js';
import {
  durationBuckets,
  emptyStats,
  handlerOutcomes,
  type ServiceHandlerStats,
} from './handler-stats.js';
import type { DaemonStatus, ServiceStatus } from './state.js';

/** The content type of what formatMetrics writes (Prometheus text exposition format 0.0.4). */
export const metricsContentType = 'text/plain; version=0.0.4; charset=utf-8';

/** Where formatMetrics reads each service's handler exits. */
export type StatsOf = (service: string) => Readonly<ServiceHandlerStats> | null;

interface Family {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly help: string;
  readonly samples: (s: ServiceStatus, stats: Readonly<ServiceHandlerStats>) => string[];
}

const families: readonly Family[] = [
  {
    name: 'socketeer_accepted_total',
    type: 'counter',
    help: 'Connections accepted from the service listeners (the refused ones included).',
    samples: (s) => [sample('socketeer_accepted_total', s.name, {}, s.counters.accepted)],
  },
  {
    name: 'socketeer_refused_total',
    type: 'counter',
    help: 'Connections refused, by reason.',
    samples: (s) =>
      reasonsOf(s).map((reason) =>
        sample('socketeer_refused_total', s.name, { reason }, s.counters.refused[reason] ?? 0),
      ),
  },
  {
    name: 'socketeer_running',
    type: 'gauge',
    help: 'Handlers running now.',
    samples: (s) => [sample('socketeer_running', s.name, {}, s.counters.active)],
  },
  {
    name: 'socketeer_spawn_failed_total',
    type: 'counter',
    help: 'Handlers that could not be started.',
    samples: (s) => [sample('socketeer_spawn_failed_total', s.name, {}, s.counters.spawnFailed)],
  },
  {
    name: 'socketeer_handler_exits_total',
    type: 'counter',
    help: 'Handlers ended, by outcome: success (exit 0), failure, signal, timeout.',
    samples: (s, stats) =>
      handlerOutcomes.map((outcome) =>
        sample('socketeer_handler_exits_total', s.name, { outcome }, stats.exits[outcome]),
      ),
  },
  {
    name: 'socketeer_handler_duration_seconds',
    type: 'histogram',
    help: 'How long handlers ran, from start to exit.',
    samples: histogramSamples,
  },
];

/** Every service's counters in the Prometheus text format (pure). */
export function formatMetrics(status: DaemonStatus, statsOf: StatsOf): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const service of status.services)
      lines.push(...family.samples(service, statsOf(service.name) ?? emptyStats()));
  }
  return `${lines.join('\n')}\n`;
}

function reasonsOf(s: ServiceStatus): string[] {
  const known: readonly string[] = refuseReasons;
  return [...known, ...Object.keys(s.counters.refused).filter((r) => !known.includes(r))];
}

function histogramSamples(s: ServiceStatus, stats: Readonly<ServiceHandlerStats>): string[] {
  const name = 'socketeer_handler_duration_seconds';
  let cumulative = 0;
  const bounds = [...durationBuckets.map(String), '+Inf'];
  const lines = bounds.map((le, i) => {
    cumulative += stats.buckets[i] ?? 0;
    return sample(`${name}_bucket`, s.name, { le }, cumulative);
  });
  lines.push(sample(`${name}_sum`, s.name, {}, stats.sumSec));
  lines.push(sample(`${name}_count`, s.name, {}, stats.count));
  return lines;
}

function sample(
  name: string,
  service: string,
  labels: Readonly<Record<string, string>>,
  value: number,
): string {
  const pairs = Object.entries({ service, ...labels }).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return `${name}{${pairs.join(',')}} ${formatValue(value)}`;
}

/** Label values escape backslash, double quote and newline. */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  return String(value);
}
