// proxy services against real backends on Unix sockets: lighttpd, socat, small node servers in
// this process, and an `accept: false` service of the same daemon; with the addon's splice copy
// and, with --spawner portable, with the Node streams fallback.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  DaemonUnderTest,
  fdCount,
  fixtures,
  isAlive,
  isEvent,
  makeConfDir,
  runCli,
  withDeadline,
  writeServices,
  type LogRecord,
} from '../helpers/daemon.js';
import {
  answerAtEof,
  connectTo,
  curlSha256,
  echo,
  sendAndReadToEnd,
  sha256,
  startBackend,
  startUnixServer,
  waitForClose,
} from '../helpers/proxy-backends.js';

const isCi = process.env.CI === 'true';
const missing = ['/usr/sbin/lighttpd', '/usr/bin/socat', '/usr/bin/curl'].filter(
  (p) => !existsSync(p),
);
const skip = missing.length === 0 || isCi ? false : `not installed: ${missing.join(', ')}`;

const conf = makeConfDir({});
const sock = (name: string): string => join(conf.dir, `${name}.sock`);
const bigFile = randomBytes(50 * 1000 * 1000);
const servers: Server[] = [];
const children: ChildProcess[] = [];

/** What a proxyProtocol backend read before the client's bytes, as hex, per connection. */
const headers: string[] = [];

/** A TCP port nobody listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address !== null ? address.port : 0;
}

/** Keeps writing until the peer goes away. */
function flood(socket: Socket): void {
  const chunk = Buffer.alloc(1 << 20, 0x61);
  const write = (): void => {
    while (!socket.destroyed && socket.write(chunk));
  };
  socket.on('drain', write);
  socket.on('error', () => socket.destroy());
  write();
}

/** Reads the header (up to the first byte of `PING`), then echoes the rest. */
function recordHeader(socket: Socket): void {
  let got = Buffer.alloc(0);
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => (got = Buffer.concat([got, chunk])));
  socket.on('end', () => {
    const at = got.indexOf('PING');
    headers.push(got.subarray(0, at).toString('hex'));
    socket.end(got.subarray(at));
  });
}

async function startBackends(): Promise<void> {
  const www = join(conf.dir, 'www');
  mkdirSync(www);
  writeFileSync(join(www, 'big.bin'), bigFile);
  const lighttpdConf = join(conf.dir, 'lighttpd.conf');
  writeFileSync(
    lighttpdConf,
    `server.document-root = "${www}"\nserver.bind = "${sock('lighttpd')}"\n`,
  );
  children.push(await startBackend(['lighttpd', '-D', '-f', lighttpdConf], sock('lighttpd')));
  children.push(
    await startBackend(['socat', `UNIX-LISTEN:${sock('socat')},fork`, 'EXEC:cat'], sock('socat')),
  );
  servers.push(await startUnixServer(sock('half'), answerAtEof));
  servers.push(await startUnixServer(sock('many'), echo));
  servers.push(await startUnixServer(sock('flood'), flood));
  servers.push(await startUnixServer(sock('header'), recordHeader));
  // socat binds the name's exact length (Node pads an abstract name with NULs to 108 bytes)
  const abstract = spawn('socat', [`ABSTRACT-LISTEN:${abstractName},fork`, 'EXEC:cat']);
  children.push(abstract);
  await waitForAbstract(abstractName);
  children.push(await startBackend(['python3', '-c', neverAccepts, sock('full')], sock('full')));
}

const abstractName = `socketeer-proxy-test-${process.pid}`;

/** Resolves once an abstract socket `@name` is listed in /proc/net/unix. */
async function waitForAbstract(name: string): Promise<void> {
  const deadline = Date.now() + 20000;
  while (!readFileSync('/proc/net/unix', 'utf8').includes(` @${name}\n`)) {
    if (Date.now() > deadline) throw new Error(`@${name} did not appear`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
/** Listens with a backlog of 0 and never accepts: one connection fills it, the next gets EAGAIN. */
const neverAccepts = [
  'import socket, sys, time',
  's = socket.socket(socket.AF_UNIX)',
  's.bind(sys.argv[1])',
  's.listen(0)',
  'time.sleep(3600)',
].join('\n');

async function services(): Promise<Record<string, unknown>> {
  const local = 'tcp:127.0.0.1:0';
  const to = (name: string): string => `unix:${sock(name)}`;
  return {
    'web.json': { listen: local, proxy: to('lighttpd') },
    'echo.json': { listen: local, proxy: to('socat') },
    'half.json': { listen: local, proxy: to('half') },
    'gone.json': { listen: local, proxy: to('none') },
    'refused.json': { listen: local, proxy: `tcp:127.0.0.1:${await closedPort()}` },
    'many.json': { listen: local, proxy: to('many') },
    'reset.json': { listen: local, proxy: to('flood') },
    'v1.json': { listen: local, proxy: to('header'), proxyProtocol: 'v1' },
    'v2.json': { listen: local, proxy: to('header'), proxyProtocol: 'v2' },
    'front.json': { listen: local, proxy: to('back') },
    'abstract.json': { listen: local, proxy: `unix:@${abstractName}` },
    'full.json': { listen: local, proxy: to('full'), proxyConnectTimeoutSec: 1 },
    'idle.json': { listen: local, proxy: to('half'), proxyIdleTimeoutSec: 1 },
    'capped.json': { listen: local, proxy: to('half'), limits: { instances: 1 } },
    'back.json': {
      listen: to('back'),
      accept: false,
      exec: ['/usr/bin/python3', join(fixtures, 'listen-fds.py')],
    },
  };
}

t.before(async () => {
  if (skip !== false) return;
  await startBackends();
  writeServices(conf.confDir, await services());
});

t.teardown(async () => {
  for (const child of children) child.kill();
  for (const server of servers) server.close();
  conf.cleanup();
});

const ends = (daemon: DaemonUnderTest, service: string): LogRecord[] =>
  daemon.records.filter(isEvent('end', service));

/** The cases both copy engines must pass: the 50 MB file by curl, and the half-close. */
function commonCases(t: Test, daemon: () => DaemonUnderTest, engine: string): void {
  t.test(`${engine}: 50 MB from lighttpd through curl, sha256 exact`, async (t) => {
    const got = await curlSha256(daemon().tcp('web'), '/big.bin');
    t.equal(got, `${bigFile.length} ${sha256(bigFile)}`);
    const end = await daemon().waitForLog(isEvent('end', 'web'));
    t.ok((end.bytesToClient as number) > bigFile.length, 'the body and the response head');
    t.match(end, { pid: null, proxy: `unix:${sock('lighttpd')}`, timedOut: false });
    const accept = await daemon().waitForLog(isEvent('accept', 'web'));
    t.equal(accept.engine, engine);
  });

  t.test(`${engine}: request, shutdown(SHUT_WR), the full answer`, async (t) => {
    const { received } = await sendAndReadToEnd(daemon().tcp('half'), 'GET /x');
    t.equal(received.toString(), 'answer:GET /x');
    const end = await daemon().waitForLog(isEvent('end', 'half'));
    t.match(end, { bytesFromClient: 6, bytesToClient: 13, pid: null });
    t.notOk('code' in end);
  });
}

t.test('with the addon (splice)', { skip }, async (t) => {
  const daemon = await DaemonUnderTest.start(conf.confDir);
  t.teardown(() => daemon.stop());
  commonCases(t, () => daemon, 'splice');
  caseDuplex(t, daemon);
  caseDown(t, daemon);
  caseMany(t, daemon);
  caseReset(t, daemon);
  caseActivation(t, daemon);
  caseProxyProtocol(t, daemon);
  caseLifecycle(t, daemon);
  caseTimeouts(t, daemon);
  caseCapped(t, daemon);
});

t.test('with Node streams (--spawner portable)', { skip }, async (t) => {
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--spawner', 'portable']);
  t.teardown(() => daemon.stop());
  commonCases(t, () => daemon, 'streams');
  caseDown(t, daemon);
  caseDuplex(t, daemon);
});

function caseDuplex(t: Test, daemon: DaemonUnderTest): void {
  t.test('socat echo: 10 MB both ways at once, then EOF', async (t) => {
    const data = randomBytes(10 * 1000 * 1000);
    const { received } = await sendAndReadToEnd(daemon.tcp('echo'), data);
    t.equal(received.length, data.length);
    t.equal(sha256(received), sha256(data));
    const end = await daemon.waitForLog(isEvent('end', 'echo'));
    t.match(end, { bytesFromClient: data.length, bytesToClient: data.length });
  });
}

function caseDown(t: Test, daemon: DaemonUnderTest): void {
  t.test('backend down: the client is closed, proxy-failed says why', async (t) => {
    t.same(await waitForClose(daemon.tcp('gone')), { data: '', error: null });
    const gone = await daemon.waitForLog(isEvent('proxy-failed', 'gone'));
    t.match(gone, { level: 'error', code: 'ENOENT', syscall: 'connect' });
    t.equal(gone.error, `unable to connect to unix:${sock('none')} (ENOENT)`);
    t.same(await waitForClose(daemon.tcp('refused')), { data: '', error: null });
    t.match(await daemon.waitForLog(isEvent('proxy-failed', 'refused')), {
      code: 'ECONNREFUSED',
    });
    t.equal(ends(daemon, 'gone').length, 0);
  });
}

function caseMany(t: Test, daemon: DaemonUnderTest): void {
  t.test('500 proxied connections at once all complete', async (t) => {
    const data = randomBytes(4096);
    const results = await Promise.all(
      Array.from({ length: 500 }, () => sendAndReadToEnd(daemon.tcp('many'), data)),
    );
    t.equal(results.filter((r) => r.received.equals(data)).length, 500);
    await daemon.waitForCount(isEvent('end', 'many'), 500);
    t.equal(ends(daemon, 'many').filter((e) => e.bytesToClient === 4096).length, 500);
  });
}

function caseReset(t: Test, daemon: DaemonUnderTest): void {
  t.test('a client reset mid-transfer leaves no fd behind', async (t) => {
    const before = fdCount(daemon.pid);
    await withDeadline(
      new Promise<void>((resolve) => {
        const socket = connectTo(daemon.tcp('reset'));
        let got = 0;
        socket.on('data', (chunk: Buffer) => {
          got += chunk.length;
          if (got < 4 << 20) return;
          socket.resetAndDestroy();
          resolve();
        });
      }),
      60000,
      '4 MiB from the flood backend',
    );
    const end = await daemon.waitForLog(isEvent('end', 'reset'));
    t.match(end.code, /^(ECONNRESET|EPIPE)$/);
    t.equal(fdCount(daemon.pid), before);
  });
}

function caseActivation(t: Test, daemon: DaemonUnderTest): void {
  t.test(
    'the target is an accept: false service of the same daemon, started on demand',
    async (t) => {
      t.equal(daemon.records.filter(isEvent('activate', 'back')).length, 0);
      const { received } = await sendAndReadToEnd(daemon.tcp('front'), '');
      t.match(received.toString(), /^pid=\d+ listenpid=ok fds=1 names=back fd=3\n$/);
      t.match(await daemon.waitForLog(isEvent('activate', 'back')), { trigger: 'demand' });
    },
  );
}

function caseProxyProtocol(t: Test, daemon: DaemonUnderTest): void {
  t.test('proxyProtocol v1 and v2: the backend reads the client address first', async (t) => {
    headers.length = 0;
    const v1 = await sendAndReadToEnd(daemon.tcp('v1'), 'PING');
    t.equal(v1.received.toString(), 'PING');
    const port = daemon.tcp('v1').port;
    const line = `PROXY TCP4 127.0.0.1 127.0.0.1 ${v1.localPort} ${port}\r\n`;
    t.equal(Buffer.from(headers[0] ?? '', 'hex').toString(), line);
    const v2 = await sendAndReadToEnd(daemon.tcp('v2'), 'PING');
    t.equal(v2.received.toString(), 'PING');
    const ports = Buffer.alloc(4);
    ports.writeUInt16BE(v2.localPort ?? 0, 0);
    ports.writeUInt16BE(daemon.tcp('v2').port, 2);
    const expected =
      '0d0a0d0a000d0a515549540a' + '2111000c' + '7f000001' + '7f000001' + ports.toString('hex');
    t.equal(headers[1], expected);
    const end = await daemon.waitForLog(isEvent('end', 'v2'));
    t.match(end, { bytesFromClient: 4, bytesToClient: 4 });
  });
}

/** Opens a connection to `half` (whose backend waits for EOF) and resolves once it is accepted. */
async function openHalf(
  daemon: DaemonUnderTest,
  accepted: number,
): Promise<{ closed: Promise<unknown> }> {
  const socket = connectTo(daemon.tcp('half'));
  socket.on('error', () => socket.destroy());
  const closed = new Promise((resolve) => socket.once('close', resolve));
  await daemon.waitForCount(isEvent('accept', 'half'), accepted);
  return { closed };
}

function caseLifecycle(t: Test, daemon: DaemonUnderTest): void {
  t.test('status lists a proxied connection; kill and quiesce close it', async (t) => {
    const control = join(conf.dir, 'control.sock');
    const before = daemon.records.filter(isEvent('accept', 'half')).length;
    const killed = await openHalf(daemon, before + 1);
    const status = await runCli(['status', 'half', '--json', '--control', control]);
    const rows = (JSON.parse(status.stdout) as { services: { connections: unknown[] }[] })
      .services[0]?.connections;
    t.match(rows, [{ pid: null, peer: /^127\.0\.0\.1:\d+$/, inherited: false }]);
    const text = await runCli(['status', 'half', '--control', control]);
    t.match(text.stdout, /\n +\S+ +- +127\.0\.0\.1:\d+ +\S+\n/, 'text: `-`, no process');
    const kill = await runCli(['kill', 'half', '--control', control]);
    t.match(kill.stdout, /^half@\S+ closed \(a proxied connection\)\n$/);
    await withDeadline(killed.closed, 10000, 'the killed connection to close');
    const quiesced = await openHalf(daemon, before + 2);
    t.equal((await runCli(['quiesce', 'half', '--control', control])).code, 0);
    await withDeadline(quiesced.closed, 10000, 'the quiesced connection to close');
    await daemon.waitForCount((r) => isEvent('end', 'half')(r) && r.closed === true, 2);
    t.equal(ends(daemon, 'half').filter((e) => e.closed === true).length, 2);
  });
}

function caseTimeouts(t: Test, daemon: DaemonUnderTest): void {
  t.test('abstract target; connect and idle timeouts', async (t) => {
    const { received } = await sendAndReadToEnd(daemon.tcp('abstract'), 'to @name');
    t.equal(received.toString(), 'to @name');
    // one connection fills the backlog of 0; the proxied one gets EAGAIN until its deadline
    const filler = connectTo({ path: sock('full') });
    filler.on('error', () => filler.destroy());
    await new Promise((resolve) => filler.once('connect', resolve));
    t.same(await waitForClose(daemon.tcp('full')), { data: '', error: null });
    t.match(await daemon.waitForLog(isEvent('proxy-failed', 'full')), {
      code: 'ETIMEDOUT',
      syscall: 'connect',
    });
    filler.destroy();
    const idle = connectTo(daemon.tcp('idle'));
    idle.on('error', () => idle.destroy());
    await withDeadline(
      new Promise((resolve) => idle.once('close', resolve)),
      20000,
      'the idle connection to be closed',
    );
    t.match(await daemon.waitForLog(isEvent('end', 'idle')), {
      code: 'ETIMEDOUT',
      syscall: 'idle',
      bytesFromClient: 0,
      bytesToClient: 0,
    });
  });
}

function caseCapped(t: Test, daemon: DaemonUnderTest): void {
  t.test('a proxied connection holds a slot: limits.instances 1 refuses the second', async (t) => {
    const first = connectTo(daemon.tcp('capped'));
    first.on('error', () => first.destroy());
    await daemon.waitForLog(isEvent('accept', 'capped'));
    t.same(await waitForClose(daemon.tcp('capped')), { data: '', error: null });
    t.match(await daemon.waitForLog(isEvent('refuse', 'capped')), { reason: 'instances' });
    first.end('done');
    await daemon.waitForLog(isEvent('end', 'capped'));
    const { received } = await sendAndReadToEnd(daemon.tcp('capped'), 'again');
    t.equal(received.toString(), 'answer:again', 'the slot is free once it ended');
  });
}

t.test(
  'upgrade: a proxied connection is copied by the old process until it ends',
  { skip },
  async (t) => {
    const own = makeConfDir({
      'half.json': { listen: 'tcp:127.0.0.1:0', proxy: `unix:${sock('half')}` },
    });
    const control = join(own.dir, 'control.sock');
    const daemon = await DaemonUnderTest.start(own.confDir);
    let successor: number | null = null;
    t.teardown(async () => {
      if (successor !== null && isAlive(successor)) process.kill(successor, 'SIGTERM');
      await daemon.waitForCount(isEvent('exit'), 2, 20000);
      await daemon.stop();
      own.cleanup();
    });
    const socket = connectTo(daemon.tcp('half'));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise((resolve) => socket.once('end', resolve));
    await daemon.waitForLog(isEvent('accept', 'half'));
    const upgrade = await runCli(['upgrade', '--control', control]);
    t.match(upgrade.stdout, /^handed over to pid \d+; 1 running handler left running\n$/);
    successor = Number(/pid (\d+)/.exec(upgrade.stdout)?.[1]);
    socket.end('after the upgrade');
    await withDeadline(ended, 20000, 'the answer through the old process');
    t.equal(Buffer.concat(chunks).toString(), 'answer:after the upgrade');
    t.same(await withDeadline(daemon.exited, 20000, 'the old process exit'), {
      code: 0,
      signal: null,
    });
    t.match(daemon.records.find(isEvent('end', 'half')), { bytesFromClient: 17, closed: false });
  },
);
