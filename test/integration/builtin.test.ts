// inetd's built-ins served by the daemon itself, over TCP, a Unix socket and UDP, each checked
// byte-exact against its RFC (862 echo, 863 discard, 864 chargen, 867 daytime, 868 time); a
// chargen client that does not read leaves the daemon's memory bounded; the UDP reflection guard
// (source port < 1024, rate, access), 1000 back-to-back echo datagrams all answered; Debian's
// xinetd INTERNAL echo file served as it is.
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import {
  DaemonUnderTest,
  exchange,
  isAlive,
  isEvent,
  isRoot,
  makeConfDir,
  runCli,
  withDeadline,
  type LogRecord,
} from '../helpers/daemon.js';
import { freeTcpPort, freeUdpPort, missing } from '../helpers/compat.js';

const local = ['tcp:127.0.0.1:0', 'udp:127.0.0.1:0'];
const roomy = { rate: { perSecond: 100000, burst: 5000 } };
const conf = makeConfDir({
  'echo.json': { listen: local, builtin: 'echo', limits: roomy },
  'discard.json': { listen: local, builtin: 'discard', limits: roomy },
  'chargen.json': { listen: local, builtin: 'chargen', limits: roomy },
  'daytime.json': { listen: local, builtin: 'daytime', limits: roomy },
  'time.json': { listen: local, builtin: 'time', limits: roomy },
  'rated.json': {
    listen: 'udp:127.0.0.1:0',
    builtin: 'echo',
    limits: { rate: { perSecond: 0.001, burst: 5 } },
  },
  'denied.json': { listen: local, builtin: 'echo', access: { deny: ['127.0.0.0/8'] } },
  'capped.json': { listen: 'tcp:127.0.0.1:0', builtin: 'discard', limits: { runtimeMaxSec: 1 } },
});
const unixPath = join(conf.dir, 'echo.sock');
writeFileSync(
  join(conf.confDir, 'unixecho.json'),
  JSON.stringify({ listen: `unix:${unixPath}`, builtin: 'echo' }),
);
t.teardown(conf.cleanup);

/** The RFC 864 line `n` (0-based), without its CRLF. */
function chargenLine(n: number): string {
  const printable = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');
  const start = n % 95;
  return (printable + printable).slice(start, start + 72);
}

function udpAddress(daemon: DaemonUnderTest, service: string): { host: string; port: number } {
  const address = daemon.addresses.get(service)?.find((a) => a.startsWith('udp:')) ?? '';
  const m = /^udp:([^:]+):(\d+)$/.exec(address);
  if (m === null) throw new Error(`no udp address for ${service}: ${address}`);
  return { host: m[1] ?? '', port: Number(m[2]) };
}

/** A UDP client socket (bound to `port` if given) collecting what it receives. */
async function udpClient(port = 0): Promise<{ socket: UdpSocket; got: Buffer[] }> {
  // room for 1000 answers arriving while this process is busy sending
  const socket = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
  const got: Buffer[] = [];
  socket.on('message', (m: Buffer) => got.push(m));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => resolve());
  });
  return { socket, got };
}

/** Resolves once `client` holds `count` datagrams. */
async function received(client: { socket: UdpSocket; got: Buffer[] }, count: number) {
  await withDeadline(
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (client.got.length >= count) {
          client.socket.off('message', check);
          resolve();
        }
      };
      client.socket.on('message', check);
      check();
    }),
    30000,
    `${count} datagrams`,
  );
  return client.got;
}

function send(socket: UdpSocket, to: { host: string; port: number }, data: Buffer | string) {
  socket.send(data, to.port, to.host);
}

const refusals = (daemon: DaemonUnderTest, service: string, reason: string) => (r: LogRecord) =>
  isEvent('refuse', service)(r) && r.reason === reason;

function vmRssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

interface Status {
  name: string;
  counters: { refused: Record<string, number> };
  connections: { pid: number | null; peer: string }[];
}

async function statusOf(daemon: DaemonUnderTest, service: string): Promise<Status> {
  const control = join(conf.dir, 'control.sock');
  const result = await runCli(['status', service, '--json', '--control', control]);
  const parsed = JSON.parse(result.stdout) as { services: Status[] };
  const found = parsed.services.find((s) => s.name === service);
  if (found === undefined) throw new Error(`no ${service} in ${result.stdout}`);
  return found;
}

t.test('built-ins over TCP, Unix and UDP', async (t) => {
  const daemon = await DaemonUnderTest.start(conf.confDir);
  t.teardown(() => daemon.stop());

  t.test('echo (RFC 862) over TCP: 10 MB full duplex, then the half-close', async (t) => {
    const data = randomBytes(10 * 1000 * 1000);
    const { host, port } = daemon.tcp('echo');
    const socket = connect(port, host);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise<void>((resolve) => socket.on('end', () => resolve()));
    // written while reading: the daemon reads only as fast as it can write back
    socket.end(data);
    await withDeadline(ended, 60000, 'echo EOF');
    const back = Buffer.concat(chunks);
    t.equal(back.length, data.length);
    t.equal(
      createHash('sha256').update(back).digest('hex'),
      createHash('sha256').update(data).digest('hex'),
    );
    const end = await daemon.waitForLog(isEvent('end', 'echo'));
    t.match(end, {
      pid: null,
      builtin: 'echo',
      bytesFromClient: data.length,
      bytesToClient: data.length,
      timedOut: false,
      closed: false,
    });
    const accept = await daemon.waitForLog(isEvent('accept', 'echo'));
    t.match(accept, { builtin: 'echo', peer: /^127\.0\.0\.1:\d+$/ });
  });

  t.test('echo over a Unix socket', async (t) => {
    t.equal((await exchange({ path: unixPath }, 'over unix\n')).toString(), 'over unix\n');
  });

  t.test('discard (RFC 863) over TCP: everything read, nothing sent', async (t) => {
    const back = await exchange(daemon.tcp('discard'), Buffer.alloc(1 << 20, 0x78));
    t.equal(back.length, 0);
    const end = await daemon.waitForLog(isEvent('end', 'discard'));
    t.match(end, { pid: null, bytesFromClient: 1 << 20, bytesToClient: 0 });
  });

  t.test('daytime (RFC 867) over TCP: one line, then FIN', async (t) => {
    const before = Math.floor(Date.now() / 1000);
    const text = (await exchange(daemon.tcp('daytime'), null, { halfClose: false })).toString();
    const after = Math.ceil(Date.now() / 1000);
    const m =
      /^(Sunday|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday), ([A-Z][a-z]+) (\d{1,2}), (\d{4}) (\d\d):(\d\d):(\d\d)-UTC\r\n$/.exec(
        text,
      );
    t.ok(m, `the RFC 867 line: ${JSON.stringify(text)}`);
    if (m === null) return;
    const at = Date.parse(`${m[2]} ${m[3]}, ${m[4]} ${m[5]}:${m[6]}:${m[7]} UTC`) / 1000;
    t.ok(at >= before - 1 && at <= after + 1, `${at} within [${before}, ${after}]`);
    t.equal(
      m[1],
      new Date(at * 1000).toLocaleDateString('en-US', { weekday: 'long', timeZone: 'UTC' }),
    );
  });

  t.test('time (RFC 868) over TCP: 4 bytes, seconds since 1900, then FIN', async (t) => {
    const back = await exchange(daemon.tcp('time'), null, { halfClose: false });
    t.equal(back.length, 4);
    const expected = Date.now() / 1000 + 2208988800;
    t.ok(Math.abs(back.readUInt32BE(0) - expected) < 5, `${back.readUInt32BE(0)} ~ ${expected}`);
  });

  t.test('chargen (RFC 864) over TCP: the first lines exact', async (t) => {
    const { host, port } = daemon.tcp('chargen');
    const socket = connect(port, host);
    let text = '';
    await withDeadline(
      new Promise<void>((resolve) => {
        socket.on('data', (c: Buffer) => {
          text += c.toString('latin1');
          if (text.length >= 200 * 74) resolve();
        });
      }),
      30000,
      'chargen lines',
    );
    socket.destroy();
    const lines = text.split('\r\n').slice(0, 200);
    t.same(
      lines,
      Array.from({ length: 200 }, (_, i) => chargenLine(i)),
    );
    t.equal(
      chargenLine(0),
      ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg',
    );
    // the client's close ends it, while the daemon writes
    t.match(await daemon.waitForLog(isEvent('end', 'chargen')), {
      pid: null,
      builtin: 'chargen',
      code: /^(EPIPE|ECONNRESET)$/,
      syscall: /^(read|write)$/,
    });
  });

  t.test('chargen to a client that does not read: memory bounded, closable', async (t) => {
    const { host, port } = daemon.tcp('chargen');
    const before = vmRssKb(daemon.pid);
    const socket = connect(port, host);
    socket.pause();
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const ends = daemon.records.filter(isEvent('end', 'chargen')).length;
    // the client reads nothing for 3 s while the daemon would write if it did not wait
    let peak = before;
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      peak = Math.max(peak, vmRssKb(daemon.pid));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    t.ok(peak - before < 50 * 1024, `VmRSS ${before} kB before, ${peak} kB at most after`);
    // in status like a proxied connection: a slot, no pid
    const status = await statusOf(daemon, 'chargen');
    t.match(status.connections, [{ pid: null, peer: /^127\.0\.0\.1:\d+$/ }]);
    const control = join(conf.dir, 'control.sock');
    const text = await runCli(['status', 'chargen', '--control', control]);
    t.match(text.stdout, /\n +\S+ +- +127\.0\.0\.1:\d+ +\S+\n/, 'text: `-` for no process');
    // it still serves the lines in order when the client reads again
    const first = await withDeadline(
      new Promise<Buffer>((resolve) => {
        socket.once('data', resolve);
        socket.resume();
      }),
      30000,
      'chargen data',
    );
    t.equal(first.subarray(0, 74).toString('latin1'), `${chargenLine(0)}\r\n`);
    socket.destroy();
    await daemon.waitForCount(isEvent('end', 'chargen'), ends + 1);
  });

  t.test('limits.runtimeMaxSec closes a builtin connection', async (t) => {
    const back = await exchange(daemon.tcp('capped'), 'never ends', { halfClose: false });
    t.equal(back.length, 0, 'closed by the daemon, nothing sent');
    t.match(await daemon.waitForLog(isEvent('timeout', 'capped')), { pid: null, runtimeMaxSec: 1 });
    t.match(await daemon.waitForLog(isEvent('end', 'capped')), {
      pid: null,
      builtin: 'discard',
      bytesFromClient: 10,
      timedOut: true,
      closed: true,
    });
  });

  t.test('UDP: echo, discard, chargen, daytime, time answer each datagram', async (t) => {
    const client = await udpClient();
    t.teardown(() => client.socket.close());
    send(client.socket, udpAddress(daemon, 'discard'), 'dropped');
    send(client.socket, udpAddress(daemon, 'echo'), 'hello datagram');
    const [echoed] = await received(client, 1);
    t.equal(echoed?.toString(), 'hello datagram', 'discard answered nothing, echo the same bytes');
    client.got.length = 0;
    send(client.socket, udpAddress(daemon, 'time'), '');
    const [time] = await received(client, 1);
    t.equal(time?.length, 4);
    t.ok(Math.abs((time?.readUInt32BE(0) ?? 0) - (Date.now() / 1000 + 2208988800)) < 5);
    client.got.length = 0;
    send(client.socket, udpAddress(daemon, 'daytime'), 'x');
    const [daytime] = await received(client, 1);
    t.match(
      daytime?.toString(),
      /^[A-Z][a-z]+day, [A-Z][a-z]+ \d{1,2}, \d{4} \d\d:\d\d:\d\d-UTC\r\n$/,
    );
    client.got.length = 0;
    for (let i = 0; i < 20; i++) send(client.socket, udpAddress(daemon, 'chargen'), 'x');
    const answers = await received(client, 20);
    const cycle = Array.from({ length: 95 }, (_, i) => `${chargenLine(i)}\r\n`).join('');
    answers.forEach((answer, i) => {
      t.ok(answer.length <= 512, `datagram ${i}: ${answer.length} <= 512 characters`);
      const start = (i % 95) * 74;
      const expected = (cycle + cycle).slice(start, start + answer.length);
      t.equal(answer.toString('latin1'), expected, `datagram ${i} from line ${i}`);
    });
  });

  t.test('UDP: 1000 back-to-back echo datagrams, 1000 answers', async (t) => {
    const client = await udpClient();
    t.teardown(() => client.socket.close());
    const to = udpAddress(daemon, 'echo');
    for (let i = 0; i < 1000; i++) send(client.socket, to, `request ${i}`);
    const answers = await received(client, 1000);
    t.same(
      answers.map((a) => a.toString()).sort(),
      Array.from({ length: 1000 }, (_, i) => `request ${i}`).sort(),
    );
  });

  t.test('UDP rate limit: answers stop past the burst, each refusal counted', async (t) => {
    const client = await udpClient();
    t.teardown(() => client.socket.close());
    const to = udpAddress(daemon, 'rated');
    for (let i = 0; i < 10; i++) send(client.socket, to, `r${i}`);
    await daemon.waitForCount(refusals(daemon, 'rated', 'rate'), 5);
    // every datagram has been read and decided: 5 answered, 5 refused
    await received(client, 5);
    t.same(
      client.got.map((a) => a.toString()),
      ['r0', 'r1', 'r2', 'r3', 'r4'],
    );
    const status = await statusOf(daemon, 'rated');
    t.equal(status.counters.refused.rate, 5);
  });

  t.test('access rules refuse a denied peer over TCP and UDP', async (t) => {
    const back = await exchange(daemon.tcp('denied'), null, { halfClose: false });
    t.equal(back.length, 0);
    const client = await udpClient();
    t.teardown(() => client.socket.close());
    send(client.socket, udpAddress(daemon, 'denied'), 'x');
    await daemon.waitForCount(refusals(daemon, 'denied', 'denied'), 2);
    t.equal(client.got.length, 0);
    const status = await statusOf(daemon, 'denied');
    t.equal(status.counters.refused.denied, 2);
  });

  t.test(
    'UDP from a source port below 1024: no answer, counted',
    { skip: isRoot ? false : 'binding a source port below 1024 needs root' },
    async (t) => {
      const client = await udpClient(1023);
      t.teardown(() => client.socket.close());
      send(client.socket, udpAddress(daemon, 'echo'), 'bounce me');
      const refused = await daemon.waitForLog(refusals(daemon, 'echo', 'source-port'));
      t.match(refused, {
        peer: '127.0.0.1:1023',
        detail: 'source port 1023 is below 1024: no answer (reflection guard)',
      });
      // decided and refused: nothing was sent to port 1023
      t.equal(client.got.length, 0);
      const status = await statusOf(daemon, 'echo');
      t.equal(status.counters.refused['source-port'], 1);
    },
  );
});

const activate = '/usr/bin/systemd-socket-activate';
t.test(
  'a UDP builtin served on a socket inherited with LISTEN_FDS',
  { skip: process.env.CI === 'true' ? false : missing(activate, 'systemd') },
  async (t) => {
    const port = await freeUdpPort();
    const own = makeConfDir({
      'echo.json': {
        listen: `udp:127.0.0.1:${port}`,
        builtin: 'echo',
        limits: { rate: { perSecond: 10, burst: 10 } },
      },
    });
    t.teardown(own.cleanup);
    const wrapper = [activate, '--datagram', '-l', `127.0.0.1:${port}`, '--fdname=echo'];
    const client = await udpClient();
    t.teardown(() => client.socket.close());
    // systemd-socket-activate starts the daemon on the first datagram, which stays queued for
    // it; sent again until answered (the first may come before the socket is bound)
    const asking = setInterval(() => send(client.socket, { host: '127.0.0.1', port }, 'hi'), 250);
    const daemon = await DaemonUnderTest.start(own.confDir, [], undefined, wrapper).finally(() =>
      clearInterval(asking),
    );
    t.teardown(() => daemon.stop());
    t.match(await daemon.waitForLog(isEvent('listen', 'echo')), {
      address: `udp:127.0.0.1:${port}`,
      fd: 3,
    });
    await received(client, 1);
    t.equal(client.got[0]?.toString(), 'hi', 'the datagram that started it is answered');
  },
);

const debianEcho = '/etc/xinetd.d/echo';
t.test(
  "Debian's xinetd INTERNAL echo file (enabled) served as a builtin",
  { skip: process.env.CI === 'true' ? false : missing(debianEcho, 'xinetd') },
  async (t) => {
    const own = makeConfDir({});
    t.teardown(own.cleanup);
    const dir = join(own.confDir, 'xinetd.d');
    mkdirSync(dir);
    const [tcpPort, udpPort] = [await freeTcpPort(), await freeUdpPort()];
    // as shipped, enabled, and on free ports (port 7 needs root and may be taken)
    const text = readFileSync(debianEcho, 'utf8')
      .replace(/disable\s*=\s*yes/g, 'disable = no')
      .replace(/(protocol\s*=\s*tcp)/, `$1\n\tport = ${tcpPort}\n\tbind = 127.0.0.1`)
      .replace(/(protocol\s*=\s*udp)/, `$1\n\tport = ${udpPort}\n\tbind = 127.0.0.1`)
      .replace(/(type\s*=\s*INTERNAL)/g, '$1 UNLISTED');
    writeFileSync(join(dir, 'echo'), text);
    const daemon = await DaemonUnderTest.start(own.confDir);
    t.teardown(() => daemon.stop());
    const back = await exchange({ host: '127.0.0.1', port: tcpPort }, 'from xinetd.d\n');
    t.equal(back.toString(), 'from xinetd.d\n');
    const client = await udpClient();
    t.teardown(() => client.socket.close());
    send(client.socket, { host: '127.0.0.1', port: udpPort }, 'udp too');
    t.same(
      (await received(client, 1)).map((b) => b.toString()),
      ['udp too'],
    );
    t.match(await daemon.waitForLog(isEvent('end', 'echo-stream')), { pid: null, builtin: 'echo' });
  },
);

t.test(
  'upgrade hands a UDP built-in over: the same port answers from the new daemon',
  async (t) => {
    const own = makeConfDir({
      'echo.json': { listen: 'udp:127.0.0.1:0', builtin: 'echo', limits: roomy },
    });
    const control = join(own.dir, 'control.sock');
    const daemon = await DaemonUnderTest.start(own.confDir, ['--control', control]);
    let successor: number | null = null;
    t.teardown(async () => {
      if (successor !== null && isAlive(successor)) process.kill(successor, 'SIGKILL');
      await daemon.stop();
      own.cleanup();
    });
    const target = udpAddress(daemon, 'echo');
    const client = await udpClient();
    t.teardown(() => client.socket.close());
    send(client.socket, target, 'before');
    t.equal((await received(client, 1))[0]?.toString(), 'before');

    const upgrade = await runCli(['upgrade', '--control', control]);
    t.equal(upgrade.code, 0, upgrade.stderr);
    successor = Number(/pid (\d+)/.exec(upgrade.stdout)?.[1]);
    await withDeadline(daemon.exited, 30000, 'the old daemon exit');
    t.match(
      daemon.records.find(
        (r) => r.event === 'listen' && r.service === 'echo' && r.fd !== undefined,
      ),
      { address: `udp:127.0.0.1:${target.port}` },
      'the new daemon serves the inherited socket',
    );
    send(client.socket, target, 'after');
    t.equal((await received(client, 2))[1]?.toString(), 'after', 'answered by the new daemon');
    process.kill(successor, 'SIGTERM');
    await daemon.waitForCount(isEvent('exit'), 2, 20000);
  },
);
