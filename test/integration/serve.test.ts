import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, statSync, unlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { loadNativeAddon } from '../../src/spawn/native-addon.js';
import {
  DaemonUnderTest,
  childrenOf,
  cleanEnv,
  exchange,
  fdCount,
  fixtures,
  isRoot,
  makeConfDir,
  parseEnv,
  withDeadline,
  isEvent,
  isAlive,
} from '../helpers/daemon.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
t.test('bytes flow between client and handler, never through the daemon', async (t) => {
  const conf = makeConfDir({
    'echo.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] },
    'late.json': { listen: 'tcp:127.0.0.1:0', exec: ['/bin/sh', '-c', 'sleep 0.3; exec cat'] },
    'reply.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: ['/bin/sh', '-c', 'read line; echo "got $line"'],
    },
  });
  const daemon = await DaemonUnderTest.start(conf.confDir);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });

  await t.test('50 MB echoed through cat arrive whole, with a half-close', async (t) => {
    const payload = randomBytes(50 * 1024 * 1024);
    const back = await exchange(daemon.tcp('echo'), payload, { ms: 60000 });
    t.equal(back.length, payload.length);
    t.equal(sha256(back), sha256(payload));
  });

  await t.test('data sent before the handler starts is not lost', async (t) => {
    const back = await exchange(daemon.tcp('late'), 'sent before the handler ran\n');
    t.equal(back.toString(), 'sent before the handler ran\n');
  });

  await t.test('the handler exit gives the client EOF while the daemon is stopped', async (t) => {
    const { host, port } = daemon.tcp('reply');
    const socket = connect(port, host);
    const received: Buffer[] = [];
    socket.on('data', (c: Buffer) => received.push(c));
    const ended = new Promise<void>((resolve) => socket.on('end', resolve));
    await new Promise<void>((resolve) => socket.on('connect', resolve));
    await daemon.waitForLog(isEvent('accept', 'reply'));
    process.kill(daemon.pid, 'SIGSTOP');
    try {
      socket.write('ping\n');
      await withDeadline(ended, 5000, 'EOF from the handler');
    } finally {
      process.kill(daemon.pid, 'SIGCONT');
    }
    socket.destroy();
    t.equal(Buffer.concat(received).toString(), 'got ping\n');
  });
});

t.test('stderr goes to the log, the socket, or nowhere', async (t) => {
  const handler = join(fixtures, 'stderr-lines.sh');
  const conf = makeConfDir({
    'to-log.json': { listen: 'tcp:127.0.0.1:0', exec: [handler] },
    'to-socket.json': { listen: 'tcp:127.0.0.1:0', exec: [handler], stderr: 'socket' },
    'to-null.json': { listen: 'tcp:127.0.0.1:0', exec: [handler], stderr: 'null' },
  });
  const daemon = await DaemonUnderTest.start(conf.confDir);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  t.equal((await exchange(daemon.tcp('to-log'), null)).toString(), 'out\n');
  await daemon.waitForCount(isEvent('stderr', 'to-log'), 2);
  const lines = daemon.records.filter(isEvent('stderr', 'to-log'));
  t.same(
    lines.map((r) => r.line),
    ['first line', 'bell\\x07here'],
  );
  const accept = daemon.records.find(isEvent('accept', 'to-log'));
  t.equal(lines[0]?.conn, accept?.conn, 'stderr lines carry the connection id');
  t.equal(
    (await exchange(daemon.tcp('to-socket'), null)).toString(),
    'first line\nbell\x07here\nout\n',
  );
  t.equal((await exchange(daemon.tcp('to-null'), null)).toString(), 'out\n');
  await daemon.waitForCount(isEvent('end'), 3);
  t.equal(daemon.records.filter(isEvent('stderr')).length, 2, 'only the log service logged stderr');
});

t.test('the handler environment is exactly the contract', async (t) => {
  const conf = makeConfDir({
    'v4.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: ['env'],
      env: { EXTRA: 'x y' },
      passEnv: ['PASSED', 'ABSENT'],
    },
    'v6.json': { listen: 'tcp:[::1]:0', exec: ['env'] },
    'dual.json': { listen: 'tcp:0', exec: ['env'] },
    'ipc.json': {
      listen: 'unix:' + '/tmp/socketeer-env-test-' + process.pid + '.sock',
      exec: ['env'],
    },
  });
  const daemon = await DaemonUnderTest.start(
    conf.confDir,
    [],
    cleanEnv({ PASSED: 'yes', LEAK_ME: 'no' }),
  );
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  const identity = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

  const v4 = daemon.tcp('v4');
  const env4 = parseEnv((await exchange(v4, null)).toString());
  const port4 = env4.TCPREMOTEPORT ?? '';
  t.same(Object.keys(env4).sort(), [
    'EXTRA',
    'HOME',
    'LOGNAME',
    'PASSED',
    'PATH',
    'PROTO',
    'REMOTE_ADDR',
    'REMOTE_HOST',
    'REMOTE_PORT',
    'SOCKETEER_INSTANCE',
    'SOCKETEER_SERVICE',
    'TCPCONNNUM',
    'TCPLOCALIP',
    'TCPLOCALPORT',
    'TCPREMOTEIP',
    'TCPREMOTEPORT',
    'USER',
  ]);
  t.match(env4, {
    ...identity,
    PROTO: 'TCP',
    TCPLOCALIP: '127.0.0.1',
    TCPLOCALPORT: String(v4.port),
    TCPREMOTEIP: '127.0.0.1',
    TCPCONNNUM: '1',
    REMOTE_ADDR: '127.0.0.1',
    REMOTE_PORT: port4,
    REMOTE_HOST: '127.0.0.1',
    SOCKETEER_SERVICE: 'v4',
    SOCKETEER_INSTANCE: `1-127.0.0.1:${v4.port}-127.0.0.1:${port4}`,
    EXTRA: 'x y',
    PASSED: 'yes',
  });

  const v6 = daemon.tcp('v6');
  const env6 = parseEnv((await exchange(v6, null)).toString());
  t.match(env6, {
    PROTO: 'TCP',
    TCPLOCALIP: '::1',
    TCPREMOTEIP: '::1',
    REMOTE_ADDR: '::1',
    TCPLOCALPORT: String(v6.port),
  });
  t.equal(env6.SOCKETEER_INSTANCE, `1-::1:${v6.port}-::1:${env6.TCPREMOTEPORT}`);

  const dual = daemon.tcp('dual');
  const envDual = parseEnv(
    (await exchange({ host: '127.0.0.1', port: dual.port }, null)).toString(),
  );
  t.equal(envDual.TCPREMOTEIP, '127.0.0.1', 'an IPv4 peer on a dual-stack listener shows as IPv4');
  t.equal(envDual.TCPLOCALIP, '127.0.0.1');

  const path = `/tmp/socketeer-env-test-${process.pid}.sock`;
  const envIpc = parseEnv((await exchange({ path }, null)).toString());
  t.match(envIpc, { PROTO: 'IPC', IPCLOCALPATH: path, IPCCONNNUM: '1', SOCKETEER_SERVICE: 'ipc' });
  t.notOk('TCPREMOTEIP' in envIpc);
  t.notOk('LEAK_ME' in envIpc, 'nothing inherited from the daemon unless passEnv names it');
});

t.test("TCPCONNNUM counts the service's running handlers for the peer address", async (t) => {
  const conf = makeConfDir({
    'count.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: ['/bin/sh', '-c', 'echo $TCPCONNNUM; exec cat >/dev/null'],
    },
  });
  const daemon = await DaemonUnderTest.start(conf.confDir);
  const clients: Socket[] = [];
  t.teardown(async () => {
    clients.forEach((c) => c.destroy());
    await daemon.stop();
    conf.cleanup();
  });
  const { host, port } = daemon.tcp('count');
  /** Connects from `localAddress` and returns the handler's first line. */
  const open = (localAddress: string): Promise<string> => {
    const socket = connect({ host, port, localAddress });
    clients.push(socket);
    return withDeadline(
      new Promise((resolve, reject) => {
        socket.setEncoding('utf8').once('data', (line: string) => resolve(line.trim()));
        socket.on('error', reject);
      }),
      10000,
      'TCPCONNNUM',
    );
  };
  const counts = [];
  for (let i = 0; i < 3; i += 1) counts.push(await open('127.0.0.1'));
  counts.push(await open('127.0.0.2'));
  t.same(counts, ['1', '2', '3', '1'], 'per address: 127.0.0.2 is another source');
  clients[0]?.end();
  await daemon.waitForCount(isEvent('end', 'count'), 1);
  t.equal(await open('127.0.0.1'), '3', 'an ended handler no longer counts');
});

t.test(
  'Unix socket mode and owner',
  { skip: isRoot ? false : 'needs root to chown a socket' },
  async (t) => {
    const path = `/tmp/socketeer-owner-test-${process.pid}.sock`;
    const conf = makeConfDir({
      'owned.json': {
        listen: `unix:${path}`,
        exec: ['true'],
        socket: { mode: '0640', user: 'nobody', group: 'nogroup' },
      },
    });
    const daemon = await DaemonUnderTest.start(conf.confDir);
    t.teardown(async () => {
      await daemon.stop();
      conf.cleanup();
    });
    const stat = statSync(path);
    t.equal(stat.mode & 0o7777, 0o640);
    t.equal(stat.uid, 65534);
    t.equal(stat.gid, 65534);
    t.ok(stat.isSocket());
  },
);

t.test('user and group drop', { skip: isRoot ? false : 'needs root to change user' }, async (t) => {
  const conf = makeConfDir({
    'dropped.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: ['/bin/sh', '-c', 'id -u; id -g; id -G; echo "$HOME $USER"'],
      user: 'nobody',
      group: 'nogroup',
    },
  });
  const daemon = await DaemonUnderTest.start(conf.confDir);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  t.equal(
    (await exchange(daemon.tcp('dropped'), null)).toString(),
    '65534\n65534\n65534\n/nonexistent nobody\n',
  );
});

const hasNativeSpawner = loadNativeAddon() !== null;
const floods = [
  { spawner: 'portable', count: 1000 },
  { spawner: 'native', count: 20000 },
] as const;

for (const { spawner, count } of floods) {
  const skip = spawner === 'native' && !hasNativeSpawner ? 'the native addon is not built' : false;
  t.test(
    `${count} connections (${spawner} spawner) leave no fd and no zombie behind`,
    { skip },
    async (t) => {
      const conf = makeConfDir({
        'quick.json': { listen: 'tcp:127.0.0.1:0', exec: ['true'], stderr: 'null' },
      });
      const daemon = await DaemonUnderTest.start(conf.confDir, ['--spawner', spawner]);
      t.teardown(async () => {
        await daemon.stop();
        conf.cleanup();
      });
      const target = daemon.tcp('quick');
      for (let i = 0; i < 20; i += 1) await exchange(target, null);
      await daemon.waitForCount(isEvent('end'), 20);
      const before = fdCount(daemon.pid);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < count) {
          next += 1;
          await exchange(target, null);
        }
      };
      await Promise.all(Array.from({ length: 20 }, worker));
      await daemon.waitForCount(isEvent('end'), count + 20, 120000);
      // the last exit record can come a moment before that handler's pidfd is closed: allow one
      const after = fdCount(daemon.pid);
      t.ok(
        after <= before + 1,
        `fd count back where it started (${before} before, ${after} after)`,
      );
      t.same(
        childrenOf(daemon.pid).filter((c) => c.state === 'Z'),
        [],
        'no zombie',
      );
      t.equal(daemon.records.filter(isEvent('accept')).length, count + 20);
      t.equal(daemon.records.filter(isEvent('spawn-failed')).length, 0);
    },
  );
}

t.test('a failed spawn is logged, the connection closed, the daemon goes on', async (t) => {
  const programs = makeConfDir({});
  t.teardown(programs.cleanup);
  chmodSync(programs.dir, 0o755); // the handlers run as nobody under a root daemon
  const gone = join(programs.dir, 'gone');
  copyFileSync('/bin/true', gone);
  const noexec = `${gone}-noexec`;
  copyFileSync('/bin/true', noexec);
  const conf = makeConfDir({
    'gone.json': { listen: 'tcp:127.0.0.1:0', exec: [gone] },
    'noexec.json': { listen: 'tcp:127.0.0.1:0', exec: [noexec] },
    'fine.json': { listen: 'tcp:127.0.0.1:0', exec: ['echo', 'fine'] },
  });
  const daemon = await DaemonUnderTest.start(conf.confDir);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  unlinkSync(gone);
  chmodSync(noexec, 0o644);
  t.equal((await exchange(daemon.tcp('gone'), null)).toString(), '', 'client sees EOF');
  const missing = await daemon.waitForLog(isEvent('spawn-failed', 'gone'));
  t.equal(missing.code, 'ENOENT');
  t.equal(missing.level, 'error');
  t.equal((await exchange(daemon.tcp('noexec'), null)).toString(), '');
  const denied = await daemon.waitForLog(isEvent('spawn-failed', 'noexec'));
  t.equal(denied.code, 'EACCES');
  t.equal(
    (await exchange(daemon.tcp('fine'), null)).toString(),
    'fine\n',
    'the daemon still serves',
  );
});

t.test('SIGTERM ends every handler, its process group, and removes the socket path', async (t) => {
  const path = `/tmp/socketeer-term-test-${process.pid}.sock`;
  const conf = makeConfDir({
    'stubborn.json': { listen: 'tcp:127.0.0.1:0', exec: [join(fixtures, 'ignore-term.sh')] },
    'family.json': { listen: `unix:${path}`, exec: [join(fixtures, 'spawn-grandchild.sh')] },
  });
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--kill-grace', '1']);
  t.teardown(conf.cleanup);
  t.ok(existsSync(path));
  const firstLine = (target: { host: string; port: number } | { path: string }): Promise<string> =>
    withDeadline(
      new Promise((resolve, reject) => {
        const s = 'path' in target ? connect(target.path) : connect(target.port, target.host);
        s.setEncoding('utf8');
        let text = '';
        s.on('data', (c: string) => {
          text += c;
          if (text.includes('\n')) resolve(text.trim());
        });
        s.on('error', reject);
      }),
      5000,
      'first line',
    );
  t.equal(await firstLine(daemon.tcp('stubborn')), 'ready');
  const grandchild = Number(await firstLine({ path }));
  await daemon.waitForCount(isEvent('accept'), 2);
  const handlers = daemon.records.filter(isEvent('accept')).map((r) => Number(r.pid));
  const result = await daemon.stop();
  t.same(result, { code: 0, signal: null });
  for (const pid of [...handlers, grandchild]) t.notOk(isAlive(pid), `process ${pid} ended`);
  t.notOk(existsSync(path), 'socket path removed');
  const ends = daemon.records.filter(isEvent('end'));
  t.same(ends.map((r) => r.signal).sort(), ['SIGKILL', 'SIGTERM']);
  t.match(daemon.records.at(-1), { event: 'exit', code: 0 });
});
