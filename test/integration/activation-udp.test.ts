// accept: false on UDP (inetd's `dgram wait`): the real in.tftpd on fd 0 driven by tftp, and a
// python fixture on fd 3 that checks it was given a datagram socket. The first datagram starts
// the process and stays queued for it.
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  DaemonUnderTest,
  fixtures,
  isEvent,
  makeConfDir,
  runCli,
  withDeadline,
} from '../helpers/daemon.js';

const tftpd = '/usr/sbin/in.tftpd';
const tftp = '/usr/bin/tftp';
const python = '/usr/bin/python3';

/** The host and port of a `udp:` address from the readiness line. */
function udpTarget(daemon: DaemonUnderTest, service: string): { host: string; port: number } {
  const address = daemon.addresses.get(service)?.[0] ?? '';
  const m = /^udp:(?:\[(.+)\]|([^:]+)):(\d+)$/.exec(address);
  if (m === null) throw new Error(`no udp address for ${service}: ${address}`);
  return { host: m[1] ?? m[2] ?? '', port: Number(m[3]) };
}

/** Sends one datagram and waits for the one answer. */
function ask(target: { host: string; port: number }, text: string): Promise<string> {
  const socket = createSocket(target.host.includes(':') ? 'udp6' : 'udp4');
  const answer = new Promise<string>((resolve, reject) => {
    socket.once('message', (message) => resolve(message.toString()));
    socket.once('error', reject);
  });
  socket.send(text, target.port, target.host);
  return withDeadline(answer, 20000, `an answer to ${text}`).finally(() => socket.close());
}

/** `tftp -m binary HOST PORT -c get NAME LOCAL`: its output, or what went wrong. */
function tftpGet(target: { host: string; port: number }, name: string, local: string) {
  const args = ['-m', 'binary', target.host, String(target.port), '-c', 'get', name, local];
  return new Promise<string>((resolve) => {
    execFile(tftp, args, { timeout: 30000 }, (error, stdout, stderr) =>
      resolve(error === null ? `ok ${stdout}${stderr}` : `tftp failed: ${stderr || error.message}`),
    );
  });
}

/** A daemon on `conf`, stopped (and `conf` removed) at the end of the test `t`. */
async function startIn(t: Test, conf: ReturnType<typeof makeConfDir>): Promise<DaemonUnderTest> {
  const daemon = await DaemonUnderTest.start(conf.confDir);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  return daemon;
}

const sha256 = (path: string): string =>
  createHash('sha256').update(readFileSync(path)).digest('hex');

t.test('a python fixture gets the datagram socket on fd 3 and the first datagram', async (t) => {
  const conf = makeConfDir({
    'dgram.json': {
      listen: 'udp:127.0.0.1:0',
      exec: [python, join(fixtures, 'listen-dgram.py')],
      accept: false,
    },
    'dgram6.json': {
      listen: 'udp:[::1]:0',
      exec: [python, join(fixtures, 'listen-dgram.py'), 'stdin'],
      accept: false,
      listenerOn: 'stdin',
    },
  });
  const daemon = await startIn(t, conf);
  const listen = await daemon.waitForLog((r) => r.event === 'listen' && r.service === 'dgram');
  t.match(listen.address, /^udp:127\.0\.0\.1:[1-9]\d*$/, 'the real port');
  t.equal(daemon.addresses.get('dgram')?.[0], listen.address);
  t.same(daemon.records.filter(isEvent('activate', 'dgram')), [], 'on demand: nothing yet');

  const target = udpTarget(daemon, 'dgram');
  const first = await ask(target, 'one');
  const started = await daemon.waitForLog(isEvent('activate', 'dgram'));
  t.match(started, { trigger: 'demand' });
  t.equal(
    first,
    `pid=${started.pid as number} listenpid=ok fds=1 names=dgram fd=3 type=dgram got=one\n`,
  );
  // it answered and exited 0: the socket stays held, the next datagram starts it again
  await daemon.waitForLog((r) => isEvent('end', 'dgram')(r) && r.pid === started.pid);
  const second = await ask(target, 'two');
  await daemon.waitForCount(isEvent('activate', 'dgram'), 2);
  t.match(second, /^pid=\d+ listenpid=ok fds=1 names=dgram fd=3 type=dgram got=two\n$/);
  t.not(second, first.replace('one', 'two'), 'a new process');

  const six = udpTarget(daemon, 'dgram6');
  t.equal(six.host, '::1');
  const answered = await ask(six, 'six');
  const stdin = await daemon.waitForLog(isEvent('activate', 'dgram6'));
  t.equal(
    answered,
    `pid=${stdin.pid as number} listenpid=ok fds=0 names=- fd=0 type=dgram got=six\n`,
  );
  await daemon.waitForLog((r) => isEvent('end', 'dgram6')(r) && r.pid === stdin.pid);
});

t.test('in.tftpd as inetd runs it (dgram wait on fd 0) serves a 1 MB file twice', async (t) => {
  const conf = makeConfDir({});
  const root = join(conf.dir, 'tftp');
  mkdirSync(root);
  chmodSync(conf.dir, 0o755); // in.tftpd drops to nobody after its chroot
  writeFileSync(join(root, 'blob'), randomBytes(1 << 20), { mode: 0o644 });
  writeFileSync(
    join(conf.confDir, 'tftp.json'),
    JSON.stringify({
      listen: 'udp:127.0.0.1:0',
      // root for the chroot (-s); in.tftpd then drops to nobody (-u); -t 1: exits after 1 s idle
      exec: [tftpd, '-s', root, '-u', 'nobody', '-t', '1'],
      user: 'root',
      accept: false,
      listenerOn: 'stdin',
    }),
  );
  const daemon = await startIn(t, conf);
  const target = udpTarget(daemon, 'tftp');
  const want = sha256(join(root, 'blob'));
  const local = (n: number): string => join(conf.dir, `got-${n}`);

  t.match(await tftpGet(target, 'blob', local(1)), /^ok/);
  t.equal(sha256(local(1)), want, 'the first get: same sha256');
  const first = await daemon.waitForLog(isEvent('activate', 'tftp'));
  const bound = daemon.addresses.get('tftp')?.[0] ?? '';
  t.match(first, { trigger: 'demand' });
  t.same(first.fds, [`0=${bound}`, `1=${bound}`], 'inetd dgram wait: the socket on fd 0 and 1');
  // in.tftpd exits after its idle timeout; the next request starts it again
  await daemon.waitForLog((r) => isEvent('end', 'tftp')(r) && r.pid === first.pid);
  t.match(await tftpGet(target, 'blob', local(2)), /^ok/);
  t.equal(sha256(local(2)), want, 'the second get: same sha256');
  await daemon.waitForCount(isEvent('activate', 'tftp'), 2);
  t.same(daemon.records.filter(isEvent('restart-scheduled', 'tftp')), []);
});

t.test(
  'check refuses udp on an accept: true service and shows the fd of an accept: false one',
  async (t) => {
    const conf = makeConfDir({
      'bad.json': { listen: ['tcp:127.0.0.1:1', 'udp:127.0.0.1:69'], exec: ['/bin/cat'] },
      'bad-one.json': { listen: 'udp:[::1]:69', exec: ['/bin/cat'] },
    });
    t.teardown(conf.cleanup);
    const bad = await runCli(['check', '--config-dir', conf.confDir]);
    t.equal(bad.code, 100);
    const message =
      'udp needs accept: false or builtin: a handler per connection (accept: true) needs a stream socket, and UDP has no connections';
    t.equal(
      bad.stderr,
      [
        `${join(conf.confDir, 'bad-one.json')}: /listen: ${message}`,
        `${join(conf.confDir, 'bad.json')}: /listen/1: ${message}`,
        `socketeer: fatal: 2 problems in ${conf.confDir}; nothing was started`,
        '',
      ].join('\n'),
    );
    const good = makeConfDir({
      'tftp.json': {
        listen: 'udp:[::1]:69',
        exec: ['/bin/cat'],
        accept: false,
        listenerOn: 'stdin',
      },
    });
    t.teardown(good.cleanup);
    const shown = await runCli(['check', '--config-dir', good.confDir]);
    t.equal(shown.code, 0, shown.stderr);
    t.same(
      (JSON.parse(shown.stdout) as { services: Record<string, { passes: unknown }> }).services.tftp
        ?.passes,
      {
        fds: [
          { fd: 0, address: 'udp:[::1]:69' },
          { fd: 1, address: 'udp:[::1]:69' },
        ],
        env: { NOTIFY_SOCKET: '@socketeer-notify/<daemon pid>/<random>/tftp' },
      },
    );
  },
);
