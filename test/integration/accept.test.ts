import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, readlinkSync, writeSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { ExitCode, FatalError } from '../../src/model/errors.js';
import { handleFd } from '../../src/listen/incoming.js';
import { bindListener } from '../../src/listen/listener.js';
import { loadNativeAddon } from '../../src/spawn/native-addon.js';
import {
  DaemonUnderTest,
  cleanEnv,
  exchange,
  isEvent,
  makeConfDir,
  withDeadline,
} from '../helpers/daemon.js';

const addon = loadNativeAddon();
const noAddon = addon === null ? 'the native addon is not built' : false;
/**
 * The handler runs as nobody under a root daemon: prefer the system python3, since one found
 * on PATH may live under /root (pyenv shims), out of nobody's reach.
 */
const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const hasPython = spawnSync(python, ['-c', '']).status === 0;

interface Accepted {
  fd: number;
  remoteAddress: string | null;
  remotePort: number | null;
  localAddress: string | null;
  localPort: number | null;
}

/**
 * The addon's accept loop on a new listener, Node's server closed once the addon holds its own
 * copy (as the daemon does); connections come out of `next()`. Stopped at teardown.
 */
async function acceptOn(t: Test, listenOptions: object, tcp: boolean) {
  const server = createServer();
  server.listen(listenOptions);
  await once(server, 'listening');
  const serverFd = handleFd(server);
  if (serverFd === null) throw new Error('the server has no fd');
  const info = server.address();
  const port = typeof info === 'object' && info !== null ? info.port : 0;
  const accepted: Accepted[] = [];
  const errors: Error[] = [];
  let wake: () => void = () => {};
  const fd = addon!.acceptStart(
    serverFd,
    { tcp, noDelay: false, keepAlive: false, localEnds: true },
    (connFd, remoteAddress, remotePort, localAddress, localPort) => {
      accepted.push({ fd: connFd, remoteAddress, remotePort, localAddress, localPort });
      wake();
    },
    (error) => errors.push(error),
  );
  t.teardown(() => addon!.acceptStop(fd));
  server.close(); // the socket stays bound through the watch's copy
  const next = (): Promise<Accepted> =>
    withDeadline(
      new Promise<Accepted>((resolve) => {
        const take = (): void => {
          const item = accepted.shift();
          if (item) resolve(item);
          else wake = take;
        };
        take();
      }),
      5000,
      'an accepted connection',
    );
  return { serverFd, port, fd, next, errors };
}

function readAll(socket: Socket): Promise<string> {
  let text = '';
  socket.setEncoding('utf8').on('data', (c: string) => (text += c));
  return new Promise((resolve) => socket.on('end', () => resolve(text)));
}

t.test(
  'the addon accepts: each connection is an fd with its addresses',
  { skip: noAddon },
  async (t) => {
    const watch = await acceptOn(t, { host: '127.0.0.1', port: 0 }, true);
    const { port } = watch;
    t.not(watch.fd, watch.serverFd, 'the watch holds its own copy of the listening socket');

    const client = connect(port, '127.0.0.1');
    const reply = readAll(client);
    await once(client, 'connect');
    const got = await watch.next();
    t.same(
      { ...got, fd: typeof got.fd },
      {
        fd: 'number',
        remoteAddress: '127.0.0.1',
        remotePort: client.localPort,
        localAddress: '127.0.0.1',
        localPort: port,
      },
    );
    writeSync(got.fd, 'straight to the fd\n');
    closeSync(got.fd);
    t.equal(await reply, 'straight to the fd\n');

    t.equal(addon!.acceptStop(watch.fd), true);
    t.equal(addon!.acceptStop(watch.fd), false, 'a second stop finds no watch');
    t.same(watch.errors, []);
    const refused = connect(port, '127.0.0.1');
    const [error] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    t.equal(error.code, 'ECONNREFUSED', 'stop closed the last copy of the listening socket');
  },
);

t.test(
  'a dual-stack wildcard gives mapped IPv4 peers and asks for the local end',
  { skip: noAddon },
  async (t) => {
    const wildcard = await acceptOn(t, { host: '::', port: 0, ipv6Only: false }, true);
    const { port } = wildcard;
    const client = connect(port, '127.0.0.1');
    client.on('error', () => {});
    await once(client, 'connect');
    const got = await wildcard.next();
    t.same(
      [got.remoteAddress, got.remotePort, got.localAddress, got.localPort],
      ['::ffff:127.0.0.1', client.localPort, '::ffff:127.0.0.1', port],
    );
    closeSync(got.fd);
    client.destroy();
  },
);

t.test('a Unix listener gives no addresses', { skip: noAddon }, async (t) => {
  // abstract: closing Node's server would unlink a path it bound
  const path = `\0socketeer-accept-test-${process.pid}`;
  const watch = await acceptOn(t, { path }, false);
  const client = connect(path);
  const reply = readAll(client);
  const got = await watch.next();
  t.same(
    [got.remoteAddress, got.remotePort, got.localAddress, got.localPort],
    [null, null, null, null],
  );
  t.match(readlinkSync(`/proc/self/fd/${got.fd}`), /^socket:\[\d+\]$/);
  writeSync(got.fd, 'unix\n');
  closeSync(got.fd);
  t.equal(await reply, 'unix\n');
});

// getsockopt on the handler's own fd 0: what the handler really got
const sockoptScript = [
  'import socket',
  's = socket.socket(fileno=0)',
  'nd = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)',
  'ka = s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)',
  'print(f"noDelay={int(bool(nd))} keepAlive={int(bool(ka))}", flush=True)',
].join('\n');

for (const spawner of ['native', 'portable'] as const) {
  t.test(
    `socket.noDelay and socket.keepAlive reach the handler's socket, and no other fd does (${spawner} spawner)`,
    {
      skip:
        (spawner === 'native' && noAddon) ||
        (hasPython ? false : 'needs python3 to read the options from inside a handler'),
    },
    async (t) => {
      const exec = [python, '-c', sockoptScript];
      const conf = makeConfDir({
        'plain.json': { listen: 'tcp:127.0.0.1:0', exec },
        'both.json': {
          listen: 'tcp:127.0.0.1:0',
          exec,
          socket: { noDelay: true, keepAlive: true },
        },
        'fds.json': { listen: 'tcp:127.0.0.1:0', exec: ['ls', '/proc/self/fd'], stderr: 'null' },
      });
      t.teardown(conf.cleanup);
      // the daemon inherits fd 7 without close-on-exec, as from a careless parent
      const daemon = await DaemonUnderTest.start(conf.confDir, ['--spawner', spawner], cleanEnv(), [
        'sh',
        '-c',
        'exec "$@" 7</dev/null',
        'sh',
      ]);
      t.teardown(() => daemon.stop());
      t.equal((await exchange(daemon.tcp('plain'), null)).toString(), 'noDelay=0 keepAlive=0\n');
      t.equal((await exchange(daemon.tcp('both'), null)).toString(), 'noDelay=1 keepAlive=1\n');
      // the daemon marks what it inherited close-on-exec through the addon (README, Spawners)
      const skip = noAddon && 'without the addon, inherited fds reach portable handlers';
      await t.test('the handler has no fd but 0, 1, 2', { skip }, async (t) => {
        t.equal(
          (await exchange(daemon.tcp('fds'), null)).toString(),
          '0\n1\n2\n3\n',
          'fds 0, 1, 2 and the dir fd of ls: no listener, reserve, inherited fd or other socket',
        );
      });
    },
  );
}

t.test(
  'out of fds with the native accept: accept(2) waits, every connection is served after',
  { skip: noAddon },
  async (t) => {
    const conf = makeConfDir({ 'hold.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
    t.teardown(conf.cleanup);
    // RLIMIT_NOFILE 64: each running `cat` holds the daemon's pidfd and stderr pipe
    const daemon = await DaemonUnderTest.start(conf.confDir, ['--spawner', 'native'], cleanEnv(), [
      'prlimit',
      '--nofile=64:64',
      '--',
    ]);
    t.teardown(() => daemon.stop());
    const { host, port } = daemon.tcp('hold');
    const clients = Array.from({ length: 80 }, (_, i) => {
      const socket = connect(port, host);
      socket.on('error', () => {});
      socket.write(`${i}\n`);
      return { socket, reply: readAll(socket) };
    });
    t.teardown(() => clients.forEach((c) => c.socket.destroy()));
    const exhausted = await daemon.waitForLog(isEvent('accept-failed', 'hold'), 15000);
    t.match(exhausted, {
      level: 'error',
      code: 'EMFILE',
      address: `tcp:${host}:${port}`,
      error: 'accept: too many open files (EMFILE)',
    });
    const running = daemon.records.filter(isEvent('accept', 'hold')).length;
    t.ok(running > 0 && running < 80, `${running} served, the rest wait in the backlog`);
    for (const c of clients) c.socket.end();
    const replies = await withDeadline(
      Promise.all(clients.map((c) => c.reply)),
      30000,
      'every reply',
    );
    t.same(
      replies,
      clients.map((_, i) => `${i}\n`),
      'every connection was served, none dropped',
    );
    t.same(daemon.records.filter(isEvent('spawn-failed', 'hold')), [], 'no spawn ran out of fds');
    t.equal(daemon.child.exitCode, null, 'the daemon is still running');
  },
);

t.test('a listener the addon cannot take is a bind failure (exit 111)', async (t) => {
  // the one thing not produced for real: fcntl(F_DUPFD) failing in acceptStart
  const failing = {
    acceptStart: (): number => {
      throw Object.assign(new Error('fcntl: too many open files (EMFILE)'), { code: 'EMFILE' });
    },
    acceptStop: (): boolean => false,
  };
  const address = { kind: 'tcp', host: '127.0.0.1', port: 0 } as const;
  const spec = {
    mode: 0o666,
    uid: null,
    gid: null,
    backlog: 16,
    noDelay: false,
    keepAlive: false,
    proxyHeader: null,
  };
  const events = {
    onConnection: () => t.fail('no connection'),
    onError: () => t.fail('no error'),
  };
  const request = { address, socket: spec, events, nativeAccept: failing };
  const error = await bindListener(request).then(
    () => null,
    (e: unknown) => e,
  );
  t.match(error, {
    message: 'unable to bind tcp:127.0.0.1:0: too many open files (EMFILE)',
    exitCode: ExitCode.temporary,
  });
  t.equal(error instanceof FatalError, true);
});
