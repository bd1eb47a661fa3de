import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import t, { type Test } from 'tap';
import { DaemonUnderTest, makeConfDir, runCli, withDeadline } from '../helpers/daemon.js';

/** The daemon's control limits (src/control/server.ts defaults). */
const maxConnections = 32;
const idleTimeoutMs = 5000;
/** Node's timers may fire up to a millisecond early; nothing else closes a connection sooner. */
const slackMs = 50;

interface IdleConnection {
  readonly socket: Socket;
  readonly openedAt: number;
  /** Resolves once the daemon has closed it, with how long it was open and what it received. */
  readonly closed: Promise<{ openMs: number; received: string }>;
  readonly connected: Promise<void>;
}

/** A connection that never sends a whole request. */
function openIdle(path: string, onClose: () => void = () => undefined): IdleConnection {
  const socket = connect(path);
  const openedAt = performance.now();
  let received = '';
  socket.on('error', () => undefined); // an eviction may reset it; 'close' follows
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
  const closed = new Promise<{ openMs: number; received: string }>((resolve) =>
    socket.once('close', () => {
      onClose();
      resolve({ openMs: performance.now() - openedAt, received });
    }),
  );
  const connected = new Promise<void>((resolve) => socket.once('connect', resolve));
  return { socket, openedAt, closed, connected };
}

async function startDaemon(t: Test): Promise<string> {
  const conf = makeConfDir({ 'echo.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
  const control = join(conf.dir, 'control.sock');
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--control', control]);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  return control;
}

t.test('40 connections held open by the owner uid do not lock the owner out', async (t) => {
  const control = await startDaemon(t);
  // Each one completes a request every 500 ms, so that no idle timeout ever frees a slot for
  // the CLI: it gets in only if the daemon closes the longest-idle connection to make room.
  const flood = Array.from({ length: 40 }, () => openIdle(control));
  const lastSent = new Map<Socket, number>();
  const ask = (socket: Socket): void => {
    if (socket.destroyed) return;
    socket.write('{"id":1,"cmd":"status"}\n');
    lastSent.set(socket, performance.now());
  };
  for (const { socket } of flood) socket.once('connect', () => ask(socket));
  const refresh = setInterval(() => flood.forEach((c) => ask(c.socket)), 500);
  t.teardown(() => {
    clearInterval(refresh);
    flood.forEach((c) => c.socket.destroy());
  });
  await withDeadline(
    Promise.all(flood.map((c) => Promise.race([c.connected, c.closed]))),
    30000,
    '40 connections',
  );
  const status = await runCli(['status', '--control', control]);
  clearInterval(refresh);
  const stillOpen = flood.filter((c) => !c.socket.destroyed && c.socket.readyState === 'open');
  t.equal(status.stderr, '');
  t.equal(status.code, 0);
  t.match(status.stdout, /^socketeer pid \d+, up since .+\n\nSERVICE +STATE .*\necho +running /);
  t.ok(
    stillOpen.length >= maxConnections - 8,
    `${stillOpen.length} of the 40 were still open when status was answered`,
  );

  // Left idle, each is closed no sooner than idleTimeoutMs after its last request was answered.
  for (const connection of stillOpen) {
    const end = await withDeadline(
      connection.closed,
      idleTimeoutMs + 20000,
      'an idle connection to be closed',
    );
    const closedAt = connection.openedAt + end.openMs;
    const idleMs = closedAt - (lastSent.get(connection.socket) ?? Infinity);
    t.ok(
      idleMs >= idleTimeoutMs - slackMs,
      `closed ${Math.round(idleMs)} ms after its last request`,
    );
  }
});

t.test(
  'idle connections are closed: at the limit the oldest first, the rest on time',
  async (t) => {
    const control = await startDaemon(t);
    const idle = Array.from({ length: 40 }, () => openIdle(control));
    t.teardown(() => idle.forEach((c) => c.socket.destroy()));
    const ends = await withDeadline(
      Promise.all(idle.map((c) => c.closed)),
      idleTimeoutMs + 20000,
      'every idle connection to be closed',
    );
    t.same(
      ends.filter((end) => end.received !== ''),
      [],
      'none got a reply (no busy refusal)',
    );
    const onTime = ends.filter((end) => end.openMs >= idleTimeoutMs - slackMs).length;
    t.ok(onTime >= maxConnections, `${onTime} closed by the idle timeout, the others made room`);
  },
);

t.test('bytes that are not a whole request do not keep a connection open', async (t) => {
  const control = await startDaemon(t);
  // One sends a request a byte at a time and never ends it; the other sends empty lines.
  const trickles = [['{"id":1,', ' '], ['\n']].map((pieces) => {
    const connection = openIdle(control);
    let sent = 0;
    const timer = setInterval(() => {
      connection.socket.write(pieces[Math.min(sent, pieces.length - 1)] ?? '');
      sent += 1;
    }, 300);
    t.teardown(() => {
      clearInterval(timer);
      connection.socket.destroy();
    });
    return { connection, timer, sent: () => sent };
  });
  for (const { connection, timer, sent } of trickles) {
    const end = await withDeadline(
      connection.closed,
      idleTimeoutMs + 20000,
      'the daemon to close a trickling connection',
    );
    clearInterval(timer);
    t.ok(sent() >= 2, `it sent ${sent()} times`);
    t.ok(end.openMs >= idleTimeoutMs - slackMs, `closed after ${Math.round(end.openMs)} ms`);
    t.equal(end.received, '', 'and got no reply');
  }
});
