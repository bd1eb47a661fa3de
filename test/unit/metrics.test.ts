import t from 'tap';
import { parseMetricsAddress } from '../../src/control/metrics-http.js';
import { HandlerStats } from '../../src/daemon/handler-stats.js';
import { RecentRecords } from '../../src/daemon/recent-records.js';
import { escapeLabel, formatMetrics } from '../../src/daemon/metrics.js';

t.test('--metrics addresses', async (t) => {
  t.same(parseMetricsAddress('127.0.0.1:9101'), { host: '127.0.0.1', port: 9101 });
  t.same(parseMetricsAddress('[::1]:0'), { host: '::1', port: 0 });
  t.same(parseMetricsAddress('localhost:80'), { host: 'localhost', port: 80 });
  for (const bad of ['localhost', ':9101', '1.2.3.4:65536', '::1:80', 'a b:1', '[x]:1'])
    t.equal(parseMetricsAddress(bad), null, bad);
});

t.test('label values escape backslash, quote and newline', async (t) => {
  t.equal(escapeLabel('a\\x2db"c\nd'), 'a\\\\x2db\\"c\\nd');
});

t.test('end records feed exits and the histogram; the text names every series', async (t) => {
  const stats = new HandlerStats();
  stats.observe(
    'end',
    { exitCode: 0, signal: null, durationMs: 20, timedOut: false },
    { service: 's' },
  );
  stats.observe(
    'end',
    { exitCode: null, signal: 'SIGKILL', durationMs: 7000, timedOut: true },
    { service: 's' },
  );
  stats.observe('accept', { pid: 1 }, { service: 's' });
  const status = {
    pid: 1,
    startedAt: '',
    configDir: '/c',
    services: [
      {
        name: 's',
        state: 'running' as const,
        listeners: [],
        counters: {
          accepted: 3,
          refused: { rate: 1, 'proxy-header': 2 },
          active: 1,
          spawnFailed: 0,
        },
        connections: [],
      },
    ],
  };
  const text = formatMetrics(status, (name) => stats.of(name));
  const lines = text.split('\n');
  t.ok(lines.includes('socketeer_accepted_total{service="s"} 3'));
  t.ok(lines.includes('socketeer_refused_total{service="s",reason="rate"} 1'));
  t.ok(lines.includes('socketeer_refused_total{service="s",reason="denied"} 0'));
  t.ok(lines.includes('socketeer_refused_total{service="s",reason="proxy-header"} 2'));
  t.ok(lines.includes('socketeer_running{service="s"} 1'));
  t.ok(lines.includes('socketeer_handler_exits_total{service="s",outcome="success"} 1'));
  t.ok(lines.includes('socketeer_handler_exits_total{service="s",outcome="timeout"} 1'));
  t.ok(lines.includes('socketeer_handler_exits_total{service="s",outcome="signal"} 0'));
  t.ok(lines.includes('socketeer_handler_duration_seconds_bucket{service="s",le="0.01"} 0'));
  t.ok(lines.includes('socketeer_handler_duration_seconds_bucket{service="s",le="0.025"} 1'));
  t.ok(lines.includes('socketeer_handler_duration_seconds_bucket{service="s",le="5"} 1'));
  t.ok(lines.includes('socketeer_handler_duration_seconds_bucket{service="s",le="10"} 2'));
  t.ok(lines.includes('socketeer_handler_duration_seconds_bucket{service="s",le="+Inf"} 2'));
  t.ok(lines.includes('socketeer_handler_duration_seconds_sum{service="s"} 7.02'));
  t.ok(lines.includes('socketeer_handler_duration_seconds_count{service="s"} 2'));
  t.ok(text.endsWith('\n'));
});

t.test('recent records: the last 5 of each service, oldest first, fields merged', async (t) => {
  let now = Date.UTC(2026, 0, 1);
  const recent = new RecentRecords(() => now);
  recent.observe('listen', { address: 'tcp:[::]:1' }, {});
  t.same(recent.of('a'), [], 'a record naming no service is not kept');
  for (let n = 1; n <= 7; n += 1) {
    now += 1000;
    recent.observe('accept', { pid: n }, { service: 'a', conn: `${n}-x` });
  }
  recent.observe('stop', { service: 'b' }, {});
  const kept = recent.of('a');
  t.same(
    kept.map((r) => r.fields),
    [3, 4, 5, 6, 7].map((n) => ({ conn: `${n}-x`, pid: n })),
  );
  t.equal(kept[0]?.time, '2026-01-01T00:00:03.000Z');
  t.equal(kept[4]?.time, '2026-01-01T00:00:07.000Z');
  t.same(recent.of('b'), [{ time: '2026-01-01T00:00:07.000Z', event: 'stop', fields: {} }]);
});
