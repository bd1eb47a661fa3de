// socket.proxyProtocol behind a real haproxy (send-proxy and send-proxy-v2), and direct clients
// that write headers themselves: the client's address reaches access rules, per-source limits,
// the handler's environment and the records; anything else is refused `proxy-header`.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import {
  DaemonUnderTest,
  isEvent,
  makeConfDir,
  runCli,
  withDeadline,
  type LogRecord,
} from '../helpers/daemon.js';
import { encodeProxyHeader, proxyV2Signature } from '../../src/model/proxy-header.js';

const haproxyBin = '/usr/sbin/haproxy';
const isCi = process.env.CI === 'true';
const skip = existsSync(haproxyBin) || isCi ? false : `not installed: ${haproxyBin}`;

/** Prints what the handler was told, then echoes stdin: the payload must come exactly. */
const handler = [
  '/bin/sh',
  '-c',
  'echo "$TCPREMOTEIP $TCPREMOTEPORT $REMOTE_ADDR $REMOTE_PORT $TCPLOCALIP $TCPLOCALPORT"; exec cat',
];

/** A `status --json` connection row. */
interface StatusRow {
  readonly instance: string;
  readonly peer: string;
}

interface Talk {
  /** The client socket's own address and port. */
  readonly address: string;
  readonly port: number;
  readonly reply: string;
}

/**
 * Connects from `from` (a loopback address of its own), writes each chunk (waiting `gapMs`
 * between them, with Nagle off so that they leave apart), half-closes unless `hold`, and
 * collects the reply until EOF (a reset counts as EOF).
 */
function talk(
  port: number,
  options: { from: string; chunks: (Buffer | string)[]; gapMs?: number; hold?: boolean },
): { done: Promise<Talk>; socket: Socket; connected: Promise<void> } {
  const socket = connect({ host: '127.0.0.1', port, localAddress: options.from });
  socket.setNoDelay(true);
  const chunks: Buffer[] = [];
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const done = withDeadline(
    new Promise<Talk>((resolve) => {
      const finish = (): void =>
        resolve({
          address: options.from,
          port: socket.localPort ?? -1,
          reply: Buffer.concat(chunks).toString('latin1'),
        });
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', finish);
      socket.on('error', finish);
      socket.on('close', finish);
    }),
    30000,
    'reply',
  );
  void connected.then(async () => {
    const port = socket.localPort; // kept: the socket forgets it once closed
    Object.defineProperty(socket, 'localPort', { value: port });
    for (const [i, chunk] of options.chunks.entries()) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, options.gapMs ?? 0));
      socket.write(chunk);
    }
    if (options.hold !== true) socket.end();
  });
  return { done, socket, connected };
}

/** A free port on 127.0.0.1 (bound, then closed); haproxy cannot bind port 0 and tell us. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address !== null ? address.port : 0;
}

/** Whether something accepts on `port` now. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

interface Haproxy {
  readonly child: ChildProcess;
  /** Frontends: v1 (send-proxy) and v2 (send-proxy-v2). */
  readonly v1: number;
  readonly v2: number;
}

/**
 * haproxy in the foreground (-db) in front of `target`, on two free ports; started again on
 * other ports when a port was taken meanwhile (it exits: cannot bind).
 */
async function startHaproxy(dir: string, target: number): Promise<Haproxy> {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const v1 = await freePort();
    const v2 = await freePort();
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      [
        'global',
        '  maxconn 100',
        'defaults',
        '  mode tcp',
        '  timeout connect 5s',
        '  timeout client 30s',
        '  timeout server 30s',
        'frontend fe_v1',
        `  bind 127.0.0.1:${v1}`,
        '  default_backend be_v1',
        'frontend fe_v2',
        `  bind 127.0.0.1:${v2}`,
        '  default_backend be_v2',
        'backend be_v1',
        `  server socketeer 127.0.0.1:${target} send-proxy`,
        'backend be_v2',
        `  server socketeer 127.0.0.1:${target} send-proxy-v2`,
        '',
      ].join('\n'),
    );
    const child = spawn(haproxyBin, ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<'exited'>((resolve) => child.once('exit', () => resolve('exited')));
    // ready once both frontends accept (each try is a real connection, not a timed sleep)
    const ready = (async (): Promise<'ready'> => {
      while (!((await accepts(v1)) && (await accepts(v2)))) {
        if (child.exitCode !== null) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return 'ready';
    })();
    const result = await withDeadline(Promise.race([ready, exited]), 30000, 'haproxy');
    if (result === 'ready' && child.exitCode === null) return { child, v1, v2 };
    if (!/bind|address already in use/i.test(stderr)) throw new Error(`haproxy: ${stderr}`);
  }
  throw new Error('haproxy found no free ports in 5 tries');
}

// native: the addon accepts (a bare fd); portable: a paused net.Socket whose fd is read the same
for (const spawner of ['native', 'portable'] as const) {
  t.test(`behind haproxy and direct (${spawner} spawner)`, { skip }, async (t) => {
    const conf = makeConfDir({
      'pp.json': {
        listen: 'tcp:127.0.0.1:0',
        exec: handler,
        socket: { proxyProtocol: true, proxyTrusted: ['127.0.0.1'], proxyHeaderTimeoutSec: 1 },
        access: { deny: ['127.0.0.3'] },
        limits: { perSource: 1 },
      },
      // for the stop test: a header timeout no busy machine reaches before the stop arrives
      'ppstop.json': {
        listen: 'tcp:127.0.0.1:0',
        exec: handler,
        socket: { proxyProtocol: true, proxyTrusted: ['127.0.0.1'], proxyHeaderTimeoutSec: 600 },
      },
    });
    t.teardown(conf.cleanup);
    const daemon = await DaemonUnderTest.start(conf.confDir, ['--spawner', spawner]);
    const control = join(conf.dir, 'control.sock');
    t.teardown(() => daemon.stop());
    t.teardown(() => {
      if (!t.passing()) t.comment(daemon.records.map((r) => JSON.stringify(r)).join('\n'));
    });
    const target = daemon.tcp('pp').port;
    const haproxy = await startHaproxy(conf.dir, target);
    t.teardown(() => void haproxy.child.kill('SIGTERM'));
    /** The record of one client, by its exact address and port (a port alone is reused). */
    const recordOf = (
      event: string,
      client: { readonly address: string; readonly port: number },
    ): Promise<LogRecord> =>
      daemon.waitForLog(
        (r) => isEvent(event, 'pp')(r) && r.peer === `${client.address}:${client.port}`,
      );

    for (const [version, port] of [
      ['send-proxy', haproxy.v1],
      ['send-proxy-v2', haproxy.v2],
    ] as const) {
      await t.test(`haproxy ${version}: the handler and the records see the client`, async (t) => {
        const client = await talk(port, { from: '127.0.0.2', chunks: ['payload\n'] }).done;
        t.equal(
          client.reply,
          `127.0.0.2 ${client.port} 127.0.0.2 ${client.port} 127.0.0.1 ${port}\npayload\n`,
        );
        const accept = await recordOf('accept', client);
        t.equal(accept.peer, `127.0.0.2:${client.port}`);
        t.match(accept.via, /^127\.0\.0\.1:\d+$/, 'the balancer, in via');
        t.match(
          accept.conn,
          new RegExp(`-127\\.0\\.0\\.1:${port}-127\\.0\\.0\\.2:${client.port}$`),
        );
        const end = await daemon.waitForLog(
          (r) => isEvent('end', 'pp')(r) && r.conn === accept.conn,
        );
        t.equal(end.via, accept.via);
      });

      await t.test(`haproxy ${version}: access rules decide on the client`, async (t) => {
        const client = await talk(port, { from: '127.0.0.3', chunks: ['x\n'] }).done;
        t.equal(client.reply, '', 'refused: nothing from a handler');
        const refuse = await recordOf('refuse', client);
        t.equal(refuse.reason, 'denied');
        t.match(refuse.detail, /127\.0\.0\.3/);
      });

      await t.test(`haproxy ${version}: per-source limits count the client`, async (t) => {
        const held = talk(port, { from: '127.0.0.4', chunks: ['held\n'], hold: true });
        await held.connected;
        const heldPort = held.socket.localPort ?? -1;
        const heldAccept = await recordOf('accept', { address: '127.0.0.4', port: heldPort });
        const status = await runCli(['status', 'pp', '--json', '--control', control]);
        const rows = (JSON.parse(status.stdout) as { services: { connections: StatusRow[] }[] })
          .services[0]?.connections;
        t.same(
          rows?.map((row) => [row.instance, row.peer]),
          [[heldAccept.conn, `127.0.0.4:${heldPort}`]],
          'status: the client',
        );
        // with a byte to deliver: a client that half-closes at once may be dropped by haproxy
        // before it connects to the backend at all (seen once in ten runs)
        const second = await talk(port, { from: '127.0.0.4', chunks: ['second\n'] }).done;
        t.equal(second.reply, '', 'refused: nothing from a handler');
        const refuse = await recordOf('refuse', second);
        t.equal(refuse.reason, 'per-source');
        const other = await talk(port, { from: '127.0.0.5', chunks: ['other\n'] }).done;
        t.match(other.reply, /^127\.0\.0\.5 .*\nother\n$/, 'another client of the same balancer');
        held.socket.end();
        t.match((await held.done).reply, /^127\.0\.0\.4 .*\nheld\n$/);
      });
    }

    const direct = (chunks: (Buffer | string)[], options: { from?: string; gapMs?: number } = {}) =>
      talk(target, { from: options.from ?? '127.0.0.1', chunks, gapMs: options.gapMs ?? 0 }).done;
    /** A client a header names: one address per test (perSource is 1, and a handler that has
     * answered may not have been reaped yet when the next test connects). */
    const fakePeer = (n: number) => ({
      kind: 'tcp' as const,
      remoteAddress: `192.0.2.${n}`,
      remotePort: 40001,
      localAddress: '198.51.100.1',
      localPort: 443,
    });

    await t.test('a direct connection without a header is refused proxy-header', async (t) => {
      const client = await direct(['GET / HTTP/1.0\r\n\r\n']);
      t.equal(client.reply, '');
      const refuse = await recordOf('refuse', client);
      t.equal(refuse.reason, 'proxy-header');
      t.match(refuse.detail, /does not start with a PROXY header/);
    });

    await t.test('a client that sends nothing is refused after the header timeout', async (t) => {
      const client = await direct([]);
      const refuse = await recordOf('refuse', client);
      t.equal(refuse.reason, 'proxy-header');
      t.match(refuse.detail, /closed before a complete PROXY header/);
      const silent = talk(target, { from: '127.0.0.1', chunks: [], hold: true });
      await silent.connected;
      const late = await recordOf('refuse', {
        address: '127.0.0.1',
        port: silent.socket.localPort ?? -1,
      });
      t.equal(late.detail, 'no complete PROXY header within 1 s');
      t.equal((await silent.done).reply, '');
    });

    for (const [i, version] of (['v1', 'v2'] as const).entries()) {
      await t.test(
        `${version}: header and payload in one write: stdin starts after it`,
        async (t) => {
          const header = encodeProxyHeader(version, fakePeer(10 + i));
          const payload = Buffer.from(
            'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n\0\r\n\r\nrest\n',
            'latin1',
          );
          const client = await direct([Buffer.concat([header, payload])]);
          t.equal(
            client.reply,
            `192.0.2.${10 + i} 40001 192.0.2.${10 + i} 40001 198.51.100.1 443\n${payload.toString('latin1')}`,
          );
          const accept = await daemon.waitForLog(
            (r) => isEvent('accept', 'pp')(r) && r.via === `127.0.0.1:${client.port}`,
          );
          t.equal(accept.peer, `192.0.2.${10 + i}:40001`);
        },
      );

      await t.test(`${version}: a header split across two writes`, async (t) => {
        const header = encodeProxyHeader(version, fakePeer(20 + i));
        const cut = version === 'v1' ? 9 : 14;
        const client = await direct(
          [header.subarray(0, cut), Buffer.concat([header.subarray(cut), Buffer.from('tail\n')])],
          {
            gapMs: 200,
          },
        );
        t.equal(
          client.reply,
          `192.0.2.${20 + i} 40001 192.0.2.${20 + i} 40001 198.51.100.1 443\ntail\n`,
        );
      });
    }

    await t.test('v2 LOCAL (a health check): the connection is its own client', async (t) => {
      const local = Buffer.concat([proxyV2Signature, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
      const client = await direct([Buffer.concat([local, Buffer.from('ping\n')])]);
      t.equal(
        client.reply,
        `127.0.0.1 ${client.port} 127.0.0.1 ${client.port} 127.0.0.1 ${target}\nping\n`,
      );
      const accept = await recordOf('accept', client);
      t.equal(accept.via, undefined);
    });

    await t.test(
      'a header from a sender not in proxyTrusted is refused proxy-header',
      async (t) => {
        const header = encodeProxyHeader('v1', fakePeer(30));
        const client = await direct([Buffer.concat([header, Buffer.from('x\n')])], {
          from: '127.0.0.6',
        });
        t.equal(client.reply, '');
        const refuse = await recordOf('refuse', client);
        t.equal(refuse.reason, 'proxy-header');
        t.equal(refuse.detail, '127.0.0.6 is not in socket.proxyTrusted');
        t.equal(
          refuse.peer,
          `127.0.0.6:${client.port}`,
          'the sender, since its header is not believed',
        );
      },
    );

    await t.test('malformed and oversized headers are refused proxy-header', async (t) => {
      const long = `PROXY UNKNOWN ${'x'.repeat(120)}\r\n`;
      const bad = Buffer.concat([
        proxyV2Signature,
        Buffer.from([0x21, 0x12, 0x00, 0x0c]),
        Buffer.alloc(12),
      ]);
      for (const [bytes, detail] of [
        [long, /longer than 107 bytes/],
        ['PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n', /port/],
        [bad, /family 0x12/],
      ] as const) {
        const client = await direct([bytes]);
        const refuse = await recordOf('refuse', client);
        t.equal(refuse.reason, 'proxy-header');
        t.match(refuse.detail, detail);
      }
    });

    await t.test('a service that stops refuses the connections it read no header of', async (t) => {
      const stopTarget = daemon.tcp('ppstop').port;
      const refusal = (client: { readonly address: string; readonly port: number }) =>
        daemon.waitForLog(
          (r) => isEvent('refuse', 'ppstop')(r) && r.peer === `${client.address}:${client.port}`,
        );
      const silent = talk(stopTarget, { from: '127.0.0.1', chunks: ['PROXY TCP4 '], hold: true });
      await silent.connected;
      const port = silent.socket.localPort ?? -1;
      // accept(2) takes connections in order: once a later one is refused, this one is being read
      const later = talk(stopTarget, { from: '127.0.0.1', chunks: ['not a header\r\n'], gapMs: 0 });
      t.equal((await refusal(await later.done)).reason, 'proxy-header');
      const stopped = await runCli(['stop', 'ppstop', '--control', control]);
      t.equal(stopped.code, 0, stopped.stderr);
      const refuse = await refusal({ address: '127.0.0.1', port });
      t.equal(refuse.reason, 'proxy-header');
      t.equal(refuse.detail, 'the service stopped before the PROXY header was read');
      t.equal((await silent.done).reply, '');
    });
  });
}
