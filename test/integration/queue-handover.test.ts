// Queued connections (limits.onLimit: queue) are not lost and waste no slot: a client that left
// while queued is closed unserved (queue-gone), and `upgrade` passes the queue to the new process.
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { loadNativeAddon } from '../../src/spawn/native-addon.js';
import {
  DaemonUnderTest,
  isAlive,
  isEvent,
  makeConfDir,
  runCli,
  withDeadline,
  writeServices,
  type LogRecord,
} from '../helpers/daemon.js';

const noAddon = loadNativeAddon() === null && 'the native addon is not built';
const lineHandler = ['/bin/sh', '-c', 'read line; echo "got $line"'];
/** The reply names the process that started the handler (its parent). */
const ppidHandler = ['/bin/sh', '-c', 'read line; echo "got $line from $PPID"'];
const queueLimits = { instances: 1, onLimit: 'queue', queueSize: 64, queueTimeoutSec: 120 };

interface Client {
  readonly socket: Socket;
  readonly connected: Promise<void>;
  /** Everything read until the connection closed, and the error code if it failed (a reset). */
  readonly received: Promise<{ text: string; error: string | null }>;
}

function openClient(target: { host: string; port: number } | { path: string }): Client {
  const socket = 'path' in target ? connect(target.path) : connect(target.port, target.host);
  const chunks: Buffer[] = [];
  let error: string | null = null;
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
  const received = withDeadline(
    new Promise<{ text: string; error: string | null }>((resolve) =>
      socket.on('close', () => resolve({ text: Buffer.concat(chunks).toString(), error })),
    ),
    60000,
    'client close',
  );
  const connected = new Promise<void>((resolve) => socket.on('connect', resolve));
  return { socket, connected, received };
}

const conns = (records: readonly LogRecord[]): unknown[] => records.map((r) => r.conn);

/**
 * Waits for `ends` end records (default: one per accept record), then checks that no handler
 * that an accept record names is still alive.
 */
async function assertHandlersGone(
  t: Test,
  daemon: DaemonUnderTest,
  service: string,
  ends?: number,
): Promise<void> {
  const accepts = daemon.records.filter(isEvent('accept', service));
  await daemon.waitForCount(isEvent('end', service), ends ?? accepts.length);
  const alive = accepts.map((r) => Number(r.pid)).filter(isAlive);
  t.same(alive, [], 'no handler process is left');
}

for (const spawner of ['native', 'portable'] as const) {
  t.test(
    `queued clients that left take no slot (${spawner} accept)`,
    { skip: noAddon },
    async (t) => {
      const conf = makeConfDir({});
      const unixPath = join(conf.dir, 'queue.sock');
      writeServices(conf.confDir, {
        'gone.json': { listen: 'tcp:127.0.0.1:0', exec: lineHandler, limits: queueLimits },
        'silent.json': { listen: 'tcp:127.0.0.1:0', exec: lineHandler, limits: queueLimits },
        'unix.json': { listen: `unix:${unixPath}`, exec: lineHandler, limits: queueLimits },
        'full.json': {
          listen: 'tcp:127.0.0.1:0',
          exec: lineHandler,
          limits: { ...queueLimits, queueSize: 5 },
        },
      });
      const control = join(conf.dir, 'control.sock');
      // The test reads every queue and refuse record: a burst above the default 20 (the queue
      // records of 22 clients) keeps the log limiter from summing some of them up.
      const daemon = await DaemonUnderTest.start(conf.confDir, [
        '--spawner',
        spawner,
        '--log-burst',
        '100',
      ]);
      t.teardown(async () => {
        await daemon.stop();
        conf.cleanup();
      });

      await t.test('20 hung up: the live client is served next, 20 queue-gone', async (t) => {
        const target = daemon.tcp('gone');
        const queued = (n: number): Promise<void> =>
          daemon.waitForCount(isEvent('queue', 'gone'), n);
        const holder = openClient(target);
        await holder.connected;
        await daemon.waitForCount(isEvent('accept', 'gone'), 1);
        const leavers = Array.from({ length: 20 }, () => openClient(target));
        await Promise.all(leavers.map((c) => c.connected));
        await queued(20);
        for (const c of leavers) c.socket.destroy();
        await Promise.all(leavers.map((c) => c.received));
        // sent a request, then shut down writing: it waits for its answer and gets it
        const half = openClient(target);
        await half.connected;
        half.socket.end('half\n');
        await queued(21);
        const live = openClient(target);
        await live.connected;
        live.socket.write('live\n');
        await queued(22);

        holder.socket.end('hold\n');
        t.same(await holder.received, { text: 'got hold\n', error: null });
        t.same(await half.received, { text: 'got half\n', error: null });
        t.same(await live.received, { text: 'got live\n', error: null });
        await daemon.waitForCount(isEvent('accept', 'gone'), 3);
        await daemon.waitForCount((r) => r.event === 'refuse' && r.reason === 'queue-gone', 20);
        const queue = daemon.records.filter(isEvent('queue', 'gone'));
        const accepts = daemon.records.filter(isEvent('accept', 'gone'));
        t.same(
          conns(accepts).slice(1),
          conns(queue.slice(20)),
          'after the holder: the half-closed client, then the live one; no handler for the 20',
        );
        const gone = daemon.records.filter(isEvent('refuse', 'gone'));
        t.same(conns(gone), conns(queue.slice(0, 20)), 'the 20 that hung up, in their order');
        t.ok(
          gone.every(
            (r) =>
              r.reason === 'queue-gone' &&
              /^the peer left while queued \(waited \d+ ms\)$/.test(String(r.detail)),
          ),
          'each refuse record says queue-gone and how long it waited',
        );
        const status = await runCli(['status', 'gone', '--json', '--control', control]);
        const counters = (
          JSON.parse(status.stdout) as { services: { counters: { refused: unknown } }[] }
        ).services[0]?.counters;
        t.same(counters?.refused, { 'queue-gone': 20 });
        await assertHandlersGone(t, daemon, 'gone');
      });

      await t.test('a client that half-closed having sent nothing is taken as gone', async (t) => {
        const target = daemon.tcp('silent');
        const holder = openClient(target);
        await holder.connected;
        await daemon.waitForCount(isEvent('accept', 'silent'), 1);
        const silent = openClient(target);
        await silent.connected;
        await daemon.waitForCount(isEvent('queue', 'silent'), 1);
        silent.socket.end();
        const live = openClient(target);
        await live.connected;
        live.socket.write('live\n');
        await daemon.waitForCount(isEvent('queue', 'silent'), 2);

        holder.socket.end('hold\n');
        t.same(await silent.received, { text: '', error: null }, 'closed without a handler');
        t.same(await live.received, { text: 'got live\n', error: null });
        await daemon.waitForCount(isEvent('accept', 'silent'), 2);
        const queue = daemon.records.filter(isEvent('queue', 'silent'));
        t.same(conns(daemon.records.filter(isEvent('refuse', 'silent'))), [queue[0]?.conn]);
        t.same(conns(daemon.records.filter(isEvent('accept', 'silent'))).slice(1), [
          queue[1]?.conn,
        ]);
        await assertHandlersGone(t, daemon, 'silent');
      });

      await t.test('Unix peers that closed (having sent a line) are gone too', async (t) => {
        const target = { path: unixPath };
        const holder = openClient(target);
        await holder.connected;
        await daemon.waitForCount(isEvent('accept', 'unix'), 1);
        const leavers = Array.from({ length: 3 }, () => openClient(target));
        await Promise.all(leavers.map((c) => c.connected));
        await daemon.waitForCount(isEvent('queue', 'unix'), 3);
        for (const c of leavers) c.socket.end('bye\n', () => c.socket.destroy());
        await Promise.all(leavers.map((c) => c.received));
        const live = openClient(target);
        await live.connected;
        live.socket.write('live\n');
        await daemon.waitForCount(isEvent('queue', 'unix'), 4);
        holder.socket.end('hold\n');
        t.same(await live.received, { text: 'got live\n', error: null });
        await daemon.waitForCount(isEvent('accept', 'unix'), 2);
        const refusals = daemon.records.filter(isEvent('refuse', 'unix'));
        t.same(
          refusals.map((r) => r.reason),
          Array(3).fill('queue-gone'),
        );
        await assertHandlersGone(t, daemon, 'unix');
      });

      await t.test('a queue full of clients that left takes a live one', async (t) => {
        const target = daemon.tcp('full');
        const holder = openClient(target);
        await holder.connected;
        await daemon.waitForCount(isEvent('accept', 'full'), 1);
        const leavers = Array.from({ length: 5 }, () => openClient(target));
        await Promise.all(leavers.map((c) => c.connected));
        await daemon.waitForCount(isEvent('queue', 'full'), 5);
        for (const c of leavers) c.socket.destroy();
        await Promise.all(leavers.map((c) => c.received));
        const live = openClient(target);
        await live.connected;
        live.socket.write('live\n');
        await daemon.waitForCount(isEvent('queue', 'full'), 6);
        holder.socket.end('hold\n');
        t.same(await holder.received, { text: 'got hold\n', error: null });
        t.same(await live.received, { text: 'got live\n', error: null }, 'queued, then served');
        await daemon.waitForCount(isEvent('accept', 'full'), 2);
        const refusals = daemon.records.filter(isEvent('refuse', 'full'));
        t.same(
          refusals.map((r) => r.reason),
          Array(5).fill('queue-gone'),
          'the 5 that left were closed to make room; no queue-full',
        );
        await assertHandlersGone(t, daemon, 'full');
      });
    },
  );

  t.test(
    `upgrade passes the queued connections to the new process (${spawner} accept)`,
    { skip: noAddon },
    async (t) => {
      const conf = makeConfDir({
        'q.json': { listen: 'tcp:127.0.0.1:0', exec: ppidHandler, limits: queueLimits },
      });
      const control = join(conf.dir, 'control.sock');
      const daemon = await DaemonUnderTest.start(conf.confDir, ['--spawner', spawner]);
      let successor: number | null = null;
      t.teardown(async () => {
        if (successor !== null && isAlive(successor)) {
          process.kill(successor, 'SIGTERM');
          await daemon.waitForCount(isEvent('exit'), 2, 20000);
        }
        await daemon.stop();
        conf.cleanup();
      });
      const target = daemon.tcp('q');
      const holder = openClient(target);
      await holder.connected;
      await daemon.waitForCount(isEvent('accept', 'q'), 1);
      const clients = Array.from({ length: 10 }, () => openClient(target));
      await Promise.all(clients.map((c) => c.connected));
      clients.forEach((c, i) => c.socket.write(`line-${i}\n`));
      await daemon.waitForCount(isEvent('queue', 'q'), 10);

      const upgrade = await runCli(['upgrade', '--control', control]);
      t.equal(upgrade.stderr, '');
      t.match(upgrade.stdout, /^handed over to pid \d+; 1 running handler left running\n$/);
      t.equal(upgrade.code, 0);
      successor = Number(/pid (\d+)/.exec(upgrade.stdout)?.[1]);
      t.same(await withDeadline(daemon.exited, 20000, 'the old process exit'), {
        code: 0,
        signal: null,
      });
      const record = await daemon.waitForLog(isEvent('upgrade'));
      t.same([record.handlers, record.queued], [1, 10]);

      // the holder's handler is the old process's; its exit frees the slot in the new one
      holder.socket.end('hold\n');
      t.same(await holder.received, { text: `got hold from ${daemon.pid}\n`, error: null });
      const replies = await Promise.all(clients.map((c) => c.received));
      t.same(
        replies,
        clients.map((_, i) => ({ text: `got line-${i} from ${successor}\n`, error: null })),
        'every queued client is answered by a handler of the new process; none reset',
      );
      await daemon.waitForCount(isEvent('accept', 'q'), 11);
      const accepts = daemon.records.filter(isEvent('accept', 'q')).slice(1);
      t.same(conns(accepts), conns(daemon.records.filter(isEvent('queue', 'q'))), 'FIFO kept');
      t.ok(
        accepts.every((r) => typeof r.waitedMs === 'number'),
        'their accept records say how long they waited, across both processes',
      );
      t.equal(daemon.records.filter(isEvent('queue-dropped')).length, 0);
      // the holder's handler was the old process's: the new one logs no `end` for it
      await assertHandlersGone(t, daemon, 'q', 10);
    },
  );
}
