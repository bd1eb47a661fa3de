// `socketeer metrics` and `serve --metrics`: the Prometheus text, read by the Prometheus
// project's own parser (Debian's python3-prometheus-client), with exact values after a known
// set of connections.
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import {
  DaemonUnderTest,
  cleanEnv,
  cli,
  exchange,
  isAlive,
  makeConfDir,
  withDeadline,
} from '../helpers/daemon.js';

const python = '/usr/bin/python3';
const hasParser =
  spawnSync(python, ['-c', 'import prometheus_client.parser']).status === 0 ? false : true;
const skip =
  hasParser && process.env.CI !== 'true'
    ? 'python3-prometheus-client is not installed (required in CI)'
    : false;

/** Parses with prometheus_client and prints [family, type, sample name, labels, value] rows. */
const parseScript = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
rows = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        rows.append([family.name, family.type, s.name, s.labels, s.value])
print(json.dumps(rows))
`;

type Row = [string, string, string, Record<string, string>, number];

function parse(text: string): Row[] {
  const result = spawnSync(python, ['-c', parseScript], { input: text, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`prometheus_client refused the text: ${result.stderr}`);
  return JSON.parse(result.stdout) as Row[];
}

/** The value of one sample, by sample name and labels (exactly those labels). */
function value(rows: Row[], name: string, labels: Record<string, string>): number | undefined {
  const key = JSON.stringify(Object.entries(labels).sort());
  return rows.find(
    ([, , n, l]) => n === name && JSON.stringify(Object.entries(l).sort()) === key,
  )?.[4];
}

function get(url: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return withDeadline(
    new Promise((resolve, reject) => {
      const req = request(url, { method }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? '', body }),
        );
      });
      req.on('error', reject);
      req.end();
    }),
    30000,
    `${method} ${url}`,
  );
}

t.test(
  'metrics after a known set of connections, parsed by prometheus_client',
  { skip },
  async (t) => {
    const conf = makeConfDir({
      'ok.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] },
      'fail.json': { listen: 'tcp:127.0.0.1:0', exec: ['sh', '-c', 'exit 3'] },
      'killed.json': { listen: 'tcp:127.0.0.1:0', exec: ['sh', '-c', 'kill -9 $$'] },
      'slow.json': {
        listen: 'tcp:127.0.0.1:0',
        exec: ['sleep', '60'],
        limits: { runtimeMaxSec: 1, killGraceSec: 5 },
      },
      'walled.json': {
        listen: 'tcp:127.0.0.1:0',
        exec: ['cat'],
        access: { deny: ['127.0.0.0/8'] },
      },
    });
    t.teardown(conf.cleanup);
    const daemon = await DaemonUnderTest.start(conf.confDir, ['--metrics', '127.0.0.1:0']);
    t.teardown(() => daemon.stop());
    const listen = await daemon.waitForLog((r) => r.event === 'metrics-listen');
    const url = String(listen.url);
    t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    for (let i = 0; i < 3; i++) await exchange(daemon.tcp('ok'), `ok ${i}\n`);
    for (let i = 0; i < 2; i++) await exchange(daemon.tcp('fail'), null);
    await exchange(daemon.tcp('killed'), null);
    await exchange(daemon.tcp('slow'), null, { halfClose: false, ms: 60000 });
    for (let i = 0; i < 2; i++) await exchange(daemon.tcp('walled'), null);
    await daemon.waitForCount((r) => r.event === 'end', 7);
    await daemon.waitForCount((r) => r.event === 'refuse', 2);

    const control = join(conf.dir, 'control.sock');
    const run = spawnSync(process.execPath, [cli, 'metrics', '--control', control], {
      encoding: 'utf8',
      env: cleanEnv(),
    });
    t.equal(run.stderr, '');
    t.equal(run.status, 0);
    const rows = parse(run.stdout);

    const families = [...new Set(rows.map(([f, type]) => `${f} ${type}`))].sort();
    t.same(families, [
      'socketeer_accepted counter',
      'socketeer_handler_duration_seconds histogram',
      'socketeer_handler_exits counter',
      'socketeer_refused counter',
      'socketeer_running gauge',
      'socketeer_spawn_failed counter',
    ]);
    const accepted = { ok: 3, fail: 2, killed: 1, slow: 1, walled: 2 };
    for (const [service, n] of Object.entries(accepted)) {
      t.equal(value(rows, 'socketeer_accepted_total', { service }), n, `${service} accepted`);
      t.equal(value(rows, 'socketeer_running', { service }), 0, `${service} running`);
      t.equal(value(rows, 'socketeer_spawn_failed_total', { service }), 0);
    }
    t.equal(value(rows, 'socketeer_refused_total', { service: 'walled', reason: 'denied' }), 2);
    t.equal(value(rows, 'socketeer_refused_total', { service: 'ok', reason: 'denied' }), 0);
    t.equal(value(rows, 'socketeer_refused_total', { service: 'walled', reason: 'rate' }), 0);
    const exits: Record<string, Record<string, number>> = {
      ok: { success: 3, failure: 0, signal: 0, timeout: 0 },
      fail: { success: 0, failure: 2, signal: 0, timeout: 0 },
      killed: { success: 0, failure: 0, signal: 1, timeout: 0 },
      slow: { success: 0, failure: 0, signal: 0, timeout: 1 },
      walled: { success: 0, failure: 0, signal: 0, timeout: 0 },
    };
    for (const [service, byOutcome] of Object.entries(exits)) {
      for (const [outcome, n] of Object.entries(byOutcome))
        t.equal(
          value(rows, 'socketeer_handler_exits_total', { service, outcome }),
          n,
          `${service} ${outcome}`,
        );
      const count = Object.values(byOutcome).reduce((a, b) => a + b, 0);
      const histogram = 'socketeer_handler_duration_seconds';
      t.equal(value(rows, `${histogram}_count`, { service }), count, `${service} count`);
      t.equal(value(rows, `${histogram}_bucket`, { service, le: '+Inf' }), count);
    }
    // runtimeMaxSec 1: the slow handler ran at least a second
    const slowBuckets = (le: string): number | undefined =>
      value(rows, 'socketeer_handler_duration_seconds_bucket', { service: 'slow', le });
    t.equal(slowBuckets('0.5'), 0);
    t.equal(slowBuckets('60'), 1);
    t.ok((value(rows, 'socketeer_handler_duration_seconds_sum', { service: 'slow' }) ?? 0) >= 1);

    const scraped = await get(url);
    t.equal(scraped.status, 200);
    t.equal(scraped.type, 'text/plain; version=0.0.4; charset=utf-8');
    t.same(parse(scraped.body), rows, 'GET /metrics serves the same samples');
    t.same(await get(url.replace('/metrics', '/')), {
      status: 404,
      type: 'text/plain; charset=utf-8',
      body: 'not found: the metrics are at /metrics\n',
    });
    t.equal((await get(url, 'POST')).status, 405);
    t.equal((await get(url, 'HEAD')).body, '');
  },
);

t.test('serve --metrics with a bad address: exit 100 before anything starts', async (t) => {
  const conf = makeConfDir({ 'ok.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
  t.teardown(conf.cleanup);
  const result = spawnSync(
    process.execPath,
    [cli, 'serve', '--config-dir', conf.confDir, '--metrics', 'localhost'],
    { encoding: 'utf8', env: cleanEnv(), timeout: 30000 },
  );
  t.match(JSON.parse(result.stderr), {
    level: 'error',
    event: 'fatal',
    error: '--metrics localhost: must be HOST:PORT, e.g. 127.0.0.1:9101 or [::1]:9101',
    exitCode: 100,
  });
  t.equal(result.status, 100);
});

/** A port nothing listens on now (bound to 0, then closed). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

t.test('upgrade: the new process serves --metrics on the same port', { skip }, async (t) => {
  const conf = makeConfDir({ 'ok.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
  t.teardown(conf.cleanup);
  const port = await freePort();
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--metrics', `127.0.0.1:${port}`]);
  let successor: number | null = null;
  t.teardown(async () => {
    if (successor !== null && isAlive(successor)) {
      process.kill(successor, 'SIGTERM');
      await daemon.waitForCount((r) => r.event === 'exit', 2, 20000);
    }
    await daemon.stop();
  });
  await exchange(daemon.tcp('ok'), 'one\n');
  await daemon.waitForLog((r) => r.event === 'end');
  const control = join(conf.dir, 'control.sock');
  const upgrade = spawnSync(process.execPath, [cli, 'upgrade', '--control', control], {
    encoding: 'utf8',
    env: cleanEnv(),
    timeout: 60000,
  });
  t.equal(upgrade.stderr, '');
  t.equal(upgrade.status, 0);
  successor = Number(/pid (\d+)/.exec(upgrade.stdout)?.[1]);
  t.same(await withDeadline(daemon.exited, 30000, 'the old process exit'), {
    code: 0,
    signal: null,
  });
  const scraped = await get(`http://127.0.0.1:${port}/metrics`);
  t.equal(scraped.status, 200);
  const rows = parse(scraped.body);
  t.equal(value(rows, 'socketeer_accepted_total', { service: 'ok' }), 1, 'carried over');
  const listens = daemon.records.filter((r) => r.event === 'metrics-listen');
  t.same(
    listens.map((r) => r.url),
    [`http://127.0.0.1:${port}/metrics`, `http://127.0.0.1:${port}/metrics`],
    'bound by each process in turn',
  );
});
