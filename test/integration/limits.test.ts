import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { createSharedLimits } from '../../src/connection/shared-limits.js';
import { ServiceRunner } from '../../src/daemon/service-runner.js';
import type { EventLog, LogFields } from '../../src/log/events.js';
import { loadNativeAddon } from '../../src/spawn/native-addon.js';
import { portableSpawner } from '../../src/spawn/portable-spawner.js';
import {
  DaemonUnderTest,
  cleanEnv,
  cli,
  exchange,
  fixtures,
  makeConfDir,
  withDeadline,
  writeServices,
  type LogRecord,
  isEvent,
  isAlive,
} from '../helpers/daemon.js';

/** Resolves once `condition` holds, checking every 20 ms; rejects after `ms`. */
function waitUntil(condition: () => boolean, ms: number, what: string): Promise<void> {
  return withDeadline(
    new Promise<void>((resolve) => {
      const poll = (): void => (condition() ? resolve() : void setTimeout(poll, 20));
      poll();
    }),
    ms,
    what,
  );
}

interface Client {
  readonly socket: Socket;
  /** Everything received until the connection closed (a reset included). */
  readonly received: Promise<string>;
  readonly connected: Promise<void>;
}

/** A client that sends nothing until told to; `localAddress` picks the source address. */
function openClient(target: { host: string; port: number }, localAddress?: string): Client {
  const socket = connect({ ...target, ...(localAddress === undefined ? {} : { localAddress }) });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {
    // a refused connection may be reset; 'close' follows
  });
  const received = withDeadline(
    new Promise<string>((resolve) =>
      socket.on('close', () => resolve(Buffer.concat(chunks).toString())),
    ),
    30000,
    'client close',
  );
  const connected = new Promise<void>((resolve) => socket.on('connect', resolve));
  return { socket, received, connected };
}

const lineHandler = ['/bin/sh', '-c', 'read line; echo "got $line"'];
const noAddon = loadNativeAddon() === null && 'the native addon is not built';

// Both accept paths: the addon's (native spawner) and net.Server's (portable spawner).
for (const spawner of ['native', 'portable'] as const) {
  t.test(
    `instances: 2 with 5 concurrent clients, under each onLimit policy (${spawner} spawner)`,
    { skip: spawner === 'native' && noAddon },
    async (t) => {
      const banner = 'busy, try again later\r\n';
      const limits = { instances: 2 };
      const conf = makeConfDir({
        'close.json': { listen: 'tcp:127.0.0.1:0', exec: lineHandler, limits },
        'banner.json': {
          listen: 'tcp:127.0.0.1:0',
          exec: lineHandler,
          limits: { ...limits, onLimit: 'banner', banner },
        },
        'queue.json': {
          listen: 'tcp:127.0.0.1:0',
          exec: lineHandler,
          limits: { ...limits, onLimit: 'queue' },
        },
      });
      const daemon = await DaemonUnderTest.start(conf.confDir, ['--spawner', spawner]);
      t.teardown(async () => {
        await daemon.stop();
        conf.cleanup();
      });

      /** Opens 5 clients, waits for 2 accepts and 3 `held` records, then each sends one line. */
      const runFive = async (service: string, held: string): Promise<string[]> => {
        const clients = Array.from({ length: 5 }, () => openClient(daemon.tcp(service)));
        await Promise.all(clients.map((c) => c.connected));
        await daemon.waitForCount(isEvent('accept', service), 2);
        await daemon.waitForCount(isEvent(held, service), 3);
        clients.forEach((c, i) => c.socket.end(`ping ${i}\n`));
        return Promise.all(clients.map((c) => c.received));
      };

      await t.test('close: 3 refused with reason instances, 2 served', async (t) => {
        const replies = await runFive('close', 'refuse');
        t.equal(replies.filter((r) => /^got ping \d\n$/.test(r)).length, 2);
        t.equal(replies.filter((r) => r === '').length, 3);
        const refusals = daemon.records.filter(isEvent('refuse', 'close'));
        t.same(
          refusals.map((r) => [r.reason, r.detail]),
          Array(3).fill(['instances', 'limits.instances: 2 of 2 running (full)']),
        );
        t.equal(daemon.records.filter(isEvent('accept', 'close')).length, 2);
      });

      await t.test('banner: 3 clients read the exact banner', async (t) => {
        const replies = await runFive('banner', 'refuse');
        t.equal(replies.filter((r) => r === banner).length, 3);
        t.equal(replies.filter((r) => /^got ping \d\n$/.test(r)).length, 2);
      });

      await t.test('queue: all 5 served, in arrival order, none refused', async (t) => {
        const replies = await runFive('queue', 'queue');
        t.same(
          replies,
          [0, 1, 2, 3, 4].map((i) => `got ping ${i}\n`),
        );
        t.equal(daemon.records.filter(isEvent('refuse', 'queue')).length, 0);
        const queued = daemon.records.filter(isEvent('queue', 'queue'));
        t.same(
          queued.map((r) => [r.reason, r.queueLength]),
          [
            ['instances', 1],
            ['instances', 2],
            ['instances', 3],
          ],
        );
        await daemon.waitForCount(isEvent('accept', 'queue'), 5);
        const accepts = daemon.records.filter(isEvent('accept', 'queue'));
        t.same(
          accepts.filter((r) => r.waitedMs !== undefined).map((r) => r.conn),
          queued.map((r) => r.conn),
          'the queued connections started in the order they arrived',
        );
      });
    },
  );
}

t.test('queue: 200 concurrent clients against instances 10 are all served whole', async (t) => {
  const conf = makeConfDir({
    'slow.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: ['/bin/sh', '-c', 'sleep 0.1; exec cat'],
      limits: { instances: 10, onLimit: 'queue', queueSize: 256, queueTimeoutSec: 120 },
    },
  });
  const daemon = await DaemonUnderTest.start(conf.confDir);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  const payloads = Array.from(
    { length: 200 },
    (_, i) => `${i}:${randomBytes(3000).toString('hex')}`,
  );
  const replies = await Promise.all(
    payloads.map((p) => exchange(daemon.tcp('slow'), p, { ms: 120000 })),
  );
  t.equal(replies.filter((r, i) => r.toString() === payloads[i]).length, 200, 'every byte back');
  await daemon.waitForCount(isEvent('end', 'slow'), 200, 60000);
  t.equal(daemon.records.filter(isEvent('refuse')).length, 0, 'none refused');
  t.equal(daemon.records.filter(isEvent('accept')).length, 200);
  const most = Math.max(
    ...daemon.records.filter(isEvent('queue')).map((r) => Number(r.queueLength)),
  );
  t.ok(most > 10, `the queue was used (${most} waited at once)`);
});

t.test('a source over its rate is refused alone; a denied peer costs no spawn', async (t) => {
  const conf = makeConfDir({
    'rated.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: ['/bin/echo', 'hi'],
      limits: { perSourceRate: { perSecond: 0.01, burst: 3 } },
    },
  });
  const mark = join(conf.dir, 'starts');
  // a root daemon runs this handler as nobody: it may pass through the dir and append to the mark
  chmodSync(conf.dir, 0o711);
  writeFileSync(mark, '');
  chmodSync(mark, 0o666);
  writeServices(conf.confDir, {
    'guarded.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: ['/bin/sh', '-c', 'echo started >> "$MARK"; echo hi'],
      env: { MARK: mark },
      access: { allow: ['127.0.0.0/8'], deny: ['127.0.0.2'] },
    },
  });
  const daemon = await DaemonUnderTest.start(conf.confDir);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });

  await t.test('a flood from 127.0.0.2 does not refuse 127.0.0.3', async (t) => {
    const flood = Array.from({ length: 10 }, () => openClient(daemon.tcp('rated'), '127.0.0.2'));
    const replies = await Promise.all(flood.map((c) => c.received));
    t.equal(replies.filter((r) => r === 'hi\n').length, 3, 'the burst is served');
    t.equal(replies.filter((r) => r === '').length, 7);
    await daemon.waitForCount(isEvent('refuse', 'rated'), 7);
    const refusals = daemon.records.filter(isEvent('refuse', 'rated'));
    t.same(new Set(refusals.map((r) => r.reason)), new Set(['rate']));
    // a slow machine refills a sliver of a token while the flood is being refused
    t.match(refusals[0]?.detail, /^limits\.perSourceRate: 0(\.\d+)? of 3 tokens, next in \d+ ms$/);
    const other = openClient(daemon.tcp('rated'), '127.0.0.3');
    t.equal(await other.received, 'hi\n', 'another source is served');
    t.equal(daemon.records.filter(isEvent('refuse', 'rated')).length, 7);
  });

  await t.test('5 denied connections: 5 refuse records, no accept, no handler start', async (t) => {
    const denied = Array.from({ length: 5 }, () => openClient(daemon.tcp('guarded'), '127.0.0.2'));
    t.same(await Promise.all(denied.map((c) => c.received)), Array(5).fill(''));
    await daemon.waitForCount(isEvent('refuse', 'guarded'), 5);
    const allowed = openClient(daemon.tcp('guarded'), '127.0.0.1');
    t.equal(await allowed.received, 'hi\n');
    const refusals = daemon.records.filter(isEvent('refuse', 'guarded'));
    t.same(
      refusals.map((r) => [r.reason, r.detail]),
      Array(5).fill([
        'denied',
        'access: deny 127.0.0.2/32 in access.deny, longer than 127.0.0.0/8 in access.allow',
      ]),
    );
    // the reply can reach the client before the daemon's `accept` line reaches this process
    await daemon.waitForCount(isEvent('accept', 'guarded'), 1);
    t.equal(daemon.records.filter(isEvent('accept', 'guarded')).length, 1);
    t.equal(readFileSync(mark, 'utf8'), 'started\n', 'one handler ever started');
  });
});

t.test('runtimeMaxSec ends a handler and its whole process group', async (t) => {
  const quick = { runtimeMaxSec: 0.3, killGraceSec: 0.5 };
  const conf = makeConfDir({
    'stubborn.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: [join(fixtures, 'ignore-term.sh')],
      limits: quick,
    },
    'family.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: [join(fixtures, 'spawn-grandchild.sh')],
      limits: { runtimeMaxSec: 0.3, killGraceSec: 30 },
    },
    'stubborn-family.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: ['/bin/sh', '-c', "trap '' TERM; sleep 1000 & echo $!; wait"],
      limits: quick,
    },
  });
  const daemon = await DaemonUnderTest.start(conf.confDir);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  const clients = ['stubborn', 'family', 'stubborn-family'].map((s) => openClient(daemon.tcp(s)));
  const output = await Promise.all(clients.map((c) => c.received));
  t.equal(output[0], 'ready\n');
  const grandchildren = [Number(output[1]), Number(output[2])];
  await daemon.waitForCount(isEvent('end'), 3);
  const endOf = (service: string): LogRecord | undefined =>
    daemon.records.find(isEvent('end', service));
  t.match(endOf('stubborn'), { signal: 'SIGKILL', timedOut: true, forced: true });
  t.match(endOf('family'), { signal: 'SIGTERM', timedOut: true, forced: false });
  t.match(endOf('stubborn-family'), { signal: 'SIGKILL', timedOut: true, forced: true });
  t.equal(daemon.records.filter(isEvent('timeout')).length, 3);
  t.match(daemon.records.find(isEvent('timeout', 'family')), {
    level: 'warn',
    runtimeMaxSec: 0.3,
    killGraceSec: 30,
  });
  await waitUntil(() => grandchildren.every((pid) => !isAlive(pid)), 5000, 'grandchildren gone');
  t.pass('the grandchildren ended with their groups');
});

t.test('check --peer prints the decision path, exit 0 either way', async (t) => {
  const conf = makeConfDir({
    'web.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: ['cat'],
      limits: { instances: 4, perSourceRate: { perSecond: 1, burst: 5 } },
      access: { allow: ['127.0.0.0/8', '10.0.0.0/8'], deny: ['10.1.0.0/16'] },
    },
  });
  t.teardown(conf.cleanup);
  const file = join(conf.confDir, 'web.json');
  const run = (...args: string[]): { code: number | null; stdout: string; stderr: string } => {
    const result = spawnSync(
      '/usr/bin/env',
      ['-i', ...envArgs(), process.execPath, cli, 'check', '--config-dir', conf.confDir, ...args],
      { encoding: 'utf8', timeout: 30000 },
    );
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  };
  t.same(run('--service', 'web', '--peer', '10.1.2.3:4567'), {
    code: 0,
    stderr: '',
    stdout: [
      `service: web (${file})`,
      'assumed: no handler running, nothing queued, every rate bucket full',
      'peer: tcp 10.1.2.3 (source 10.1.2.3)',
      'access.allow: 10.0.0.0/8 matches 10.1.2.3 (prefix /8)',
      'access.deny: 10.1.0.0/16 matches 10.1.2.3 (prefix /16)',
      'access: deny 10.1.0.0/16 in access.deny, longer than 10.0.0.0/8 in access.allow',
      'decision: refuse (denied)',
      '',
    ].join('\n'),
  });
  t.same(run('--service', 'web', '--peer', '::ffff:127.0.0.9'), {
    code: 0,
    stderr: '',
    stdout: [
      `service: web (${file})`,
      'assumed: no handler running, nothing queued, every rate bucket full',
      'peer: tcp 127.0.0.9 (source 127.0.0.9)',
      'access.allow: 127.0.0.0/8 matches 127.0.0.9 (prefix /8)',
      'access.deny: no match',
      'access: allow 127.0.0.0/8 in access.allow',
      'access.times: not set (any time)',
      'limits.maxLoad: not set',
      'limits.rate: not set',
      'limits.perSourceRate: 5 of 5 tokens',
      'limits.instances: 0 of 4 running',
      'limits.perSource: not set (0 running)',
      'global cap: not set (0 running)',
      'decision: admit',
      '',
    ].join('\n'),
  });
  t.same(run('--service', 'nope', '--peer', '127.0.0.1'), {
    code: 100,
    stdout: '',
    stderr: `socketeer: fatal: no service "nope" in ${conf.confDir} (services: web)\n`,
  });
  t.same(run('--service', 'web', '--peer', 'localhost'), {
    code: 100,
    stdout: '',
    stderr:
      'socketeer: fatal: --peer "localhost": not an IPv4 or IPv6 address with an optional :PORT (see socketeer check --help)\n',
  });
});

function envArgs(): string[] {
  return Object.entries(cleanEnv()).map(([k, v]) => `${k}=${v ?? ''}`);
}

t.test('serve --max-connections caps handlers across services', async (t) => {
  const conf = makeConfDir({
    'one.json': { listen: 'tcp:127.0.0.1:0', exec: lineHandler },
    'two.json': { listen: 'tcp:127.0.0.1:0', exec: lineHandler },
  });
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--max-connections', '1']);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  const held = openClient(daemon.tcp('one'));
  await daemon.waitForLog(isEvent('accept', 'one'));
  const over = openClient(daemon.tcp('two'));
  t.equal(await over.received, '');
  t.match(await daemon.waitForLog(isEvent('refuse', 'two')), {
    reason: 'instances',
    detail: 'global cap: 1 of 1 running (full)',
  });
  held.socket.end('x\n');
  t.equal(await held.received, 'got x\n');
  await daemon.waitForLog(isEvent('end', 'one'));
  const after = openClient(daemon.tcp('two'));
  after.socket.end('y\n');
  t.equal(await after.received, 'got y\n', 'the slot is free again');
});

/** An EventLog that keeps every record, fields of its children included. */
function recordingLog(records: LogRecord[], bound: LogFields = {}): EventLog {
  return {
    log: (level, event, fields = {}) => void records.push({ ...bound, ...fields, level, event }),
    child: (fields) => recordingLog(records, { ...bound, ...fields }),
  };
}

t.test(
  'runners sharing one table: global cap, a slot freed across services, counters',
  async (t) => {
    const conf = makeConfDir({
      'a.json': { listen: 'tcp:127.0.0.1:0', exec: lineHandler },
      'b.json': { listen: 'tcp:127.0.0.1:0', exec: lineHandler, limits: { onLimit: 'queue' } },
    });
    const loaded = loadConfig(conf.confDir);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const records: LogRecord[] = [];
    const shared = createSharedLimits({ globalMax: 2 });
    const [a, b] = loaded.config.services.map(
      (spec) =>
        new ServiceRunner(spec, {
          spawner: portableSpawner,
          log: recordingLog(records),
          now: Date.now,
          shared,
        }),
    );
    if (a === undefined || b === undefined) throw new Error('two services expected');
    await a.bind();
    await b.bind();
    t.teardown(async () => {
      await Promise.all([a, b].map((r) => r.closeListeners()));
      await Promise.all([a, b].map((r) => r.terminateAll(1000)));
      conf.cleanup();
    });
    const target = (runner: ServiceRunner): { host: string; port: number } => {
      const port = Number(/:(\d+)$/.exec(runner.boundAddresses[0] ?? '')?.[1]);
      return { host: '127.0.0.1', port };
    };
    const count = (event: string, service: string): number =>
      records.filter((r) => r.event === event && r.service === service).length;
    const until = (what: string, test: () => boolean): Promise<void> =>
      waitUntil(test, 10000, what);

    const first = openClient(target(a));
    const second = openClient(target(b));
    await until('two handlers', () => count('accept', 'a') + count('accept', 'b') === 2);
    const overA = openClient(target(a));
    t.equal(await overA.received, '', 'a is over the global cap: closed');
    t.match(
      records.find((r) => r.event === 'refuse'),
      {
        service: 'a',
        reason: 'instances',
        detail: 'global cap: 2 of 2 running (full)',
      },
    );
    t.same(a.refusedCounts(), {
      denied: 0,
      time: 0,
      load: 0,
      rate: 0,
      instances: 1,
      'per-source': 0,
      'queue-full': 0,
      'queue-timeout': 0,
      'queue-gone': 0,
      'proxy-header': 0,
      'source-port': 0,
      'send-queue': 0,
    });
    const overB = openClient(target(b));
    await until('b queued', () => b.queueLength === 1);
    t.equal(shared.table.countAll(), 2);

    first.socket.end('one\n');
    t.equal(await first.received, 'got one\n');
    await until("b's waiter started", () => b.queueLength === 0 && b.handlers.size === 2);
    t.equal(count('accept', 'b'), 2, "a's exit started b's queued connection");
    t.equal(a.handlers.size, 0);
    second.socket.end('two\n');
    overB.socket.end('three\n');
    t.same(await Promise.all([second.received, overB.received]), ['got two\n', 'got three\n']);
    await until('all ended', () => shared.table.countAll() === 0);
    t.equal(b.refusedCounts().instances, 0);
  },
);
