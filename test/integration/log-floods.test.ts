import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import t, { type Test } from 'tap';
import {
  DaemonUnderTest,
  childrenOf,
  exchange,
  isEvent,
  makeConfDir,
  runCli,
  withDeadline,
  type LogRecord,
} from '../helpers/daemon.js';

/** Resolves once `condition` holds, checked on every new log record; rejects after `ms`. */
function waitUntil(daemon: DaemonUnderTest, condition: () => boolean, ms: number): Promise<void> {
  return daemon.waitForLog(() => condition(), ms).then(() => undefined);
}

/** `n` connections, `concurrency` at a time, each closed by the daemon; resolves with the ms. */
async function hammer(
  target: { host: string; port: number },
  n: number,
  concurrency: number,
): Promise<number> {
  const started = performance.now();
  let opened = 0;
  let closed = 0;
  await withDeadline(
    new Promise<void>((resolve) => {
      const next = (): void => {
        if (opened >= n) return;
        opened += 1;
        const socket = connect(target.port, target.host);
        socket.on('error', () => {
          // a refused connection may be reset; 'close' follows
        });
        socket.resume();
        socket.on('close', () => {
          closed += 1;
          if (closed === n) resolve();
          else next();
        });
      };
      for (let i = 0; i < concurrency; i += 1) next();
    }),
    120_000,
    `${n} connections`,
  );
  return performance.now() - started;
}

const sum = (records: LogRecord[], field: string): number =>
  records.reduce((total, r) => total + Number(r[field]), 0);

/**
 * Floods a deny-all service and checks: at most `burst + perSecond * (elapsed + 1 s)` refuse
 * records, `log-suppressed` summaries that add up with them to exactly `n`, and `n` refusals
 * counted in `status`.
 */
async function floodDenied(
  t: Test,
  options: { n: number; flags: string[]; rate: { perSecond: number; burst: number } },
): Promise<void> {
  const conf = makeConfDir({
    'closed.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: ['/bin/cat'],
      access: { deny: ['0.0.0.0/0', '::/0'] },
    },
  });
  t.teardown(conf.cleanup);
  const daemon = await DaemonUnderTest.start(conf.confDir, options.flags);
  t.teardown(() => daemon.stop());
  const elapsedMs = await hammer(daemon.tcp('closed'), options.n, 50);
  const refused = (): LogRecord[] => daemon.records.filter(isEvent('refuse', 'closed'));
  const summaries = (): LogRecord[] =>
    daemon.records.filter((r) => isEvent('log-suppressed', 'closed')(r) && r.record === 'refuse');
  // every connection is either logged or counted, and the counts come once the flood pauses
  await waitUntil(
    daemon,
    () => refused().length + sum(summaries(), 'suppressed') >= options.n,
    30_000,
  );
  const bound = options.rate.burst + options.rate.perSecond * (elapsedMs / 1000 + 1);
  t.ok(
    refused().length <= bound,
    `${refused().length} refuse records for ${options.n} connections in ${Math.round(elapsedMs)} ms (at most ${Math.floor(bound)})`,
  );
  t.ok(refused().length >= options.rate.burst, 'the burst is logged');
  t.equal(refused().length + sum(summaries(), 'suppressed'), options.n, 'logged + suppressed');
  for (const s of summaries())
    t.match(s, { level: 'info', reason: 'denied', suppressed: Number, intervalMs: Number });
  const status = await runCli([
    'status',
    '--json',
    '--control',
    join(dirname(conf.confDir), 'control.sock'),
  ]);
  t.equal(status.code, 0);
  const services = (
    JSON.parse(status.stdout) as {
      services: { name: string; counters: { refused: { denied?: number } } }[];
    }
  ).services;
  t.equal(
    services.find((s) => s.name === 'closed')?.counters.refused.denied,
    options.n,
    'status counts all',
  );
}

t.test('a client hammering a deny-all service cannot flood the log', async (t) => {
  await t.test('default --log-burst 20, --log-rate 10', (t) =>
    floodDenied(t, { n: 3000, flags: [], rate: { perSecond: 10, burst: 20 } }),
  );
  await t.test('--log-burst 5 --log-rate 2', (t) =>
    floodDenied(t, {
      n: 400,
      flags: ['--log-burst', '5', '--log-rate', '2'],
      rate: { perSecond: 2, burst: 5 },
    }),
  );
});

/** What the stderr records of one connection account for: bytes logged, cut and dropped. */
function stderrAccount(
  daemon: DaemonUnderTest,
  conn: unknown,
): { logged: number; charged: number; dropped: number } {
  let logged = 0;
  let charged = 0;
  for (const r of daemon.records) {
    if (r.conn !== conn || r.event !== 'stderr') continue;
    const bytes = Buffer.byteLength(String(r.line)) + 1;
    logged += bytes + Number(r.truncated ?? 0);
    charged += bytes + 128;
  }
  const dropped = sum(
    daemon.records.filter((r) => r.conn === conn && r.event === 'stderr-dropped'),
    'bytes',
  );
  return { logged, charged, dropped };
}

t.test('a handler flooding its stderr is logged within stderrRate', async (t) => {
  // 4,000,000 bytes of 8-byte lines, then a word to the client
  const total = 4_000_000;
  const conf = makeConfDir({
    'flood.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: ['/bin/sh', '-c', `yes xxxxxxx | head -c ${total} >&2; echo done`],
    },
    'echo.json': { listen: 'tcp:127.0.0.1:0', exec: ['/bin/cat'] },
    'tight.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: ['/bin/sh', '-c', 'yes xxxxxxx | head -c 200000 >&2'],
      stderrRate: { perSecond: 1000, burst: 8192 },
    },
    'long.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: [
        '/bin/sh',
        '-c',
        "head -c 100000 /dev/zero | tr '\\0' x >&2; printf '\\nshort\\n' >&2",
      ],
    },
  });
  t.teardown(conf.cleanup);
  const daemon = await DaemonUnderTest.start(conf.confDir);
  t.teardown(() => daemon.stop());

  const started = performance.now();
  const flood = exchange(daemon.tcp('flood'), null, { ms: 60_000 });
  const accept = await daemon.waitForLog(isEvent('accept', 'flood'));
  t.equal((await exchange(daemon.tcp('echo'), 'ping\n')).toString(), 'ping\n', 'served meanwhile');
  t.equal((await flood).toString(), 'done\n');
  const end = await daemon.waitForLog(
    (r) => isEvent('end', 'flood')(r) && r.conn === accept.conn,
    120_000,
  );
  // the last stderr-dropped comes when the pipe closes, which may be after the `end` record
  await waitUntil(
    daemon,
    () => {
      const { logged, dropped } = stderrAccount(daemon, accept.conn);
      return logged + dropped >= total;
    },
    60_000,
  );
  const elapsed = (performance.now() - started) / 1000;
  const { logged, charged, dropped } = stderrAccount(daemon, accept.conn);
  t.equal(logged + dropped, total, 'every byte logged or counted as dropped');
  const bound = 131072 + 65536 * (elapsed + 1);
  t.ok(
    charged <= bound,
    `${logged} bytes logged (${charged} charged) in ${elapsed.toFixed(2)} s, at most ${bound}`,
  );
  t.ok(dropped > 0);
  const reports = daemon.records.filter(
    (r) => r.conn === accept.conn && r.event === 'stderr-dropped',
  );
  t.match(reports.at(-1), { level: 'warn', pid: accept.pid, total: dropped });
  t.ok(
    Number(end.stderrDropped) > 0 && Number(end.stderrDropped) <= dropped,
    'end: dropped so far',
  );

  await t.test(
    'a line over 4096 bytes is logged once, cut, with the count of what was cut',
    async (t) => {
      await exchange(daemon.tcp('long'), null);
      const long = await daemon.waitForLog(isEvent('accept', 'long'));
      await daemon.waitForLog(
        (r) => r.conn === long.conn && r.event === 'stderr' && r.line === 'short',
      );
      await daemon.waitForLog(isEvent('end', 'long'));
      const lines = daemon.records.filter((r) => r.conn === long.conn && r.event === 'stderr');
      t.same(
        lines.map((r) => [r.line, r.truncated]),
        [
          ['x'.repeat(4096), 100_000 - 4096],
          ['short', undefined],
        ],
      );
    },
  );
  await t.test('stderrRate is set per service', async (t) => {
    const started = performance.now();
    await exchange(daemon.tcp('tight'), null);
    const tight = await daemon.waitForLog(isEvent('accept', 'tight'));
    await waitUntil(
      daemon,
      () => {
        const { logged, dropped } = stderrAccount(daemon, tight.conn);
        return logged + dropped >= 200_000;
      },
      30_000,
    );
    const elapsed = (performance.now() - started) / 1000;
    const { logged, charged, dropped } = stderrAccount(daemon, tight.conn);
    t.equal(logged + dropped, 200_000);
    t.ok(charged <= 8192 + 1000 * (elapsed + 1), `${charged} charged in ${elapsed.toFixed(2)} s`);
    t.ok(charged > 8192 - 137, 'the burst is used');
    await daemon.waitForLog(isEvent('end', 'tight'));
  });
  await daemon.waitForLog(isEvent('end', 'echo'));
  t.same(childrenOf(daemon.pid), [], 'no handler left');
});
