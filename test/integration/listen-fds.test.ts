// accept: false, the spawn side: passFds on 3, 4, … and LISTEN_PID in the child, with both
// spawners; the addon's one-shot readable watch and its dupFd/closeFd.
import { spawn as spawnChild } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import * as fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import t, { type Test } from 'tap';

import {
  loadNativeAddon,
  probeNativeAddon,
  type NativeAddon,
} from '../../src/spawn/native-addon.js';
import { createNativeSpawner } from '../../src/spawn/native-spawner.js';
import { portableSpawner } from '../../src/spawn/portable-spawner.js';
import type { SpawnedHandler, SpawnPlan, Spawner } from '../../src/model/spawn.js';
import { basePlan } from '../helpers/spawn-plan.js';
import { readAll, within } from '../helpers/wait.js';
import { loadUnixBindAddon, type UnixBindAddon } from '../../src/listen/unix-native.js';

const addon = loadNativeAddon();
const unix = loadUnixBindAddon();
const python = '/usr/bin/python3';
/** Above any fd limit: never open (a number just closed could be reused by another thread). */
const notOpen = 1 << 30;
const builtAddon = fileURLToPath(
  new URL('../../build/Release/socketeer_native.node', import.meta.url),
);
const swapFixture = fileURLToPath(new URL('../fixtures/listen-fds-swap.mjs', import.meta.url));

/**
 * The daemon: prints its LISTEN_PID, its pid, LISTEN_FDS, how many LISTEN_PID its environment
 * has and its open fds on stderr (fd 1 made
 * a copy of it for good first: a redirection of one command makes dash save the fd at 10), then
 * (python) answers one connection on each of fd 3 .. 2 + LISTEN_FDS with that fd's number.
 */
const daemonScript = `exec 1>&2; echo "pid $LISTEN_PID $$ fds $LISTEN_FDS $(env | grep -c ^LISTEN_PID=)"; ls /proc/$$/fd; exec ${python} -c "$1"`;
const answerProgram = [
  'import os, socket',
  'for fd in range(3, 3 + int(os.environ["LISTEN_FDS"])):',
  '    with socket.socket(fileno=fd) as s:',
  '        s.setblocking(True)',
  '        c, _ = s.accept()',
  '        c.sendall(b"fd %d" % fd)',
  '        c.close()',
].join('\n');

const handleFd = (handle: unknown): number => (handle as { _handle: { fd: number } })._handle.fd;

/** A dgram socket's fd (its `_handle` getter is deprecated: DEP0112). */
function udpFd(socket: dgram.Socket): number {
  const state = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  return handleFd({
    _handle: (socket as unknown as Record<symbol, { handle: unknown }>)[state ?? Symbol()]?.handle,
  });
}

/** What a server at `to` says to a new connection, until it closes. */
function ask(to: net.NetConnectOpts): Promise<string> {
  const client = net.connect(to);
  client.on('error', () => {}); // the deadline reports it
  return readAll(client);
}

/** A daemon left waiting by a failed test is killed at its teardown. */
function killUnlessEnded(t: Test, handler: SpawnedHandler): void {
  let ended = false;
  void handler.outcome.then(() => (ended = true));
  t.teardown(() => {
    if (!ended && handler.pid !== null) process.kill(handler.pid, 'SIGKILL');
  });
}

/** A few turns of the event loop (poll phases included): a ready watch would fire in them. */
async function turns(count = 3): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

if (addon === null || unix === null) {
  t.plan(0, `native addon not built: ${probeNativeAddon().reason}`);
} else {
  defineTests(addon, unix);
}

interface Listeners {
  readonly tcpFd: number;
  readonly port: number;
  readonly unixFd: number;
  readonly unixPath: string;
}

function defineTests(addon: NativeAddon, unix: UnixBindAddon): void {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'socketeer-listen-fds-'));
  const devNull = fs.openSync('/dev/null', 'r+');
  // as the daemon does at start: fds this process inherited reach no portable handler
  addon.closeOnExecFrom(3);
  t.teardown(() => {
    fs.closeSync(devNull);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  let sockets = 0;

  /** A TCP listener that outlives its net.Server (dupFd) and a Unix one, closed at teardown. */
  async function listeners(t: Test): Promise<Listeners> {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const tcpFd = addon.dupFd(handleFd(server));
    const { port } = server.address() as net.AddressInfo;
    server.close();
    const unixPath = path.join(tmp, `s${++sockets}`);
    const opts = { mode: 0o600, uid: -1, gid: -1, backlog: 16, replace: false };
    const { fd: unixFd } = unix.unixBind(unixPath, opts);
    t.teardown(() => {
      addon.closeFd(tcpFd);
      addon.closeFd(unixFd);
    });
    return { tcpFd, port, unixFd, unixPath };
  }

  const plan = (passFds: number[]): SpawnPlan => ({
    ...basePlan,
    file: '/bin/sh',
    argv: ['sh', '-c', daemonScript, 'sh', answerProgram],
    env: ['PATH=/usr/bin:/bin', 'LISTEN_FDS=2', 'LISTEN_PID=1'],
    stderr: 'log',
    passFds,
    setListenPid: true,
  });

  /** The daemon's report: "pid LISTEN_PID $$ fds N count" and its fds, one a line. */
  function checkReport(t: Test, report: string, pid: number | null): void {
    const [first = '', ...fds] = report.trim().split('\n');
    t.equal(first, `pid ${pid} ${pid} fds 2 1`, 'LISTEN_PID is the process itself, once');
    t.same(fds, ['0', '1', '2', '3', '4'], 'fds 0..4 and no other');
  }

  const spawners: Spawner[] = [createNativeSpawner(addon), portableSpawner];
  for (const spawner of spawners) {
    void t.test(`${spawner.name}: passFds on 3 and 4, LISTEN_PID its own pid`, async (t) => {
      const { tcpFd, port, unixFd, unixPath } = await listeners(t);
      const handler = spawner.spawn(plan([tcpFd, unixFd]), devNull);
      killUnlessEnded(t, handler);
      t.not(handler.stderr, null);
      const report = readAll(handler.stderr as NodeJS.ReadableStream);
      const answers = Promise.all([ask({ port, host: '127.0.0.1' }), ask({ path: unixPath })]);
      t.same(await within(answers, 10_000, 'answers'), ['fd 3', 'fd 4']);
      t.same(await within(handler.outcome, 10_000, 'exit'), {
        kind: 'exit',
        exitCode: 0,
        signal: null,
      });
      checkReport(t, await report, handler.pid);
    });

    void t.test(`${spawner.name}: passFds [4, 3], each the other's target`, async (t) => {
      const { tcpFd, port, unixFd, unixPath } = await listeners(t);
      // the fixture's fd 3 is the TCP listener, 4 the Unix one: its daemon gets them swapped
      const child = spawnChild(
        process.execPath,
        [swapFixture, spawner.name, JSON.stringify(plan([4, 3]))],
        { stdio: ['ignore', 'pipe', 'inherit', tcpFd, unixFd] },
      );
      t.teardown(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      });
      const report = readAll(child.stdout as NodeJS.ReadableStream);
      const answers = Promise.all([ask({ port, host: '127.0.0.1' }), ask({ path: unixPath })]);
      t.same(await within(answers, 10_000, 'answers'), ['fd 4', 'fd 3']);
      const [code] = (await within(once(child, 'exit'), 10_000, 'exit')) as [number | null];
      t.equal(code, 0);
      const text = await report;
      const pid = /^pid (\d+) /.exec(text)?.[1] ?? 'none';
      checkReport(t, text, Number(pid));
    });
  }

  void t.test('native: a passFd that is not open fails the spawn (dup)', async (t) => {
    const handler = createNativeSpawner(addon).spawn(plan([3, notOpen]), devNull);
    const outcome = await within(handler.outcome, 10_000, 'outcome');
    t.same(outcome, {
      kind: 'spawn-failed',
      error: { code: 'EBADF', message: 'dup: bad file descriptor' },
    });
  });

  void t.test('native: malformed passFds are a bug reported as EINVAL', async (t) => {
    const handler = createNativeSpawner(addon).spawn(plan([3, -1]), devNull);
    t.same(await handler.outcome, {
      kind: 'spawn-failed',
      error: { code: 'EINVAL', message: 'spawn /bin/sh: options.passFds must be an array of fds' },
    });
  });

  void t.test('watchReadable: once, on a pending connection, nothing accepted', async (t) => {
    const { tcpFd, port } = await listeners(t);
    let calls = 0;
    const fired = new Promise<void>((resolve) =>
      addon.watchReadable(tcpFd, () => {
        calls++;
        resolve();
      }),
    );
    t.throws(() => addon.watchReadable(tcpFd, () => {}), { code: 'EEXIST' });
    await turns();
    t.equal(calls, 0, 'not before a connection');
    const client = net.connect(port, '127.0.0.1');
    t.teardown(() => client.destroy());
    await within(fired, 5000, 'readable');
    t.equal(calls, 1);
    // one-shot: the watch is gone (no EEXIST), and the connection is still waiting (it fires
    // again at once), while the first callback is not called again
    const again = new Promise<void>((resolve) => addon.watchReadable(tcpFd, resolve));
    await within(again, 5000, 'readable again');
    await turns();
    t.equal(calls, 1);
    t.equal(unix.unixPending(tcpFd), true, 'the connection is in the backlog');
  });

  void t.test('unwatchReadable: no call after it; a no-op without a watch', async (t) => {
    const first = await listeners(t);
    const second = await listeners(t);
    let calls = 0;
    addon.watchReadable(first.unixFd, () => calls++);
    addon.unwatchReadable(first.unixFd);
    addon.unwatchReadable(first.unixFd);
    const fired = new Promise<void>((resolve) => addon.watchReadable(second.unixFd, resolve));
    const clients = [net.connect(first.unixPath), net.connect(second.unixPath)];
    t.teardown(() => clients.forEach((client) => client.destroy()));
    await within(fired, 5000, 'the second watch');
    await turns();
    t.equal(calls, 0);
  });

  void t.test('watchReadable on a UDP socket fires on a datagram', async (t) => {
    const socket = dgram.createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    const fd = addon.dupFd(udpFd(socket));
    const { port } = socket.address();
    socket.close();
    t.teardown(() => addon.closeFd(fd));
    let calls = 0;
    const fired = new Promise<void>((resolve) =>
      addon.watchReadable(fd, () => {
        calls++;
        resolve();
      }),
    );
    await turns();
    t.equal(calls, 0, 'not before a datagram');
    const sender = dgram.createSocket('udp4');
    t.teardown(() => sender.close());
    sender.send('hello', port, '127.0.0.1');
    await within(fired, 5000, 'readable');
    t.equal(calls, 1);
  });

  void t.test('a watch still set when its worker ends is stopped, its fd closed', async (t) => {
    const { tcpFd } = await listeners(t);
    const socketLink = fs.readlinkSync(`/proc/self/fd/${tcpFd}`);
    const copies = () =>
      fs.readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`) === socketLink;
        } catch {
          return false; // the directory's own fd
        }
      }).length;
    const code = `
      const addon = require(${JSON.stringify(builtAddon)});
      const { parentPort, workerData } = require('node:worker_threads');
      addon.watchReadable(workerData, () => parentPort.postMessage('called'));
      parentPort.postMessage('watching');`;
    const worker = new Worker(code, { eval: true, workerData: tcpFd });
    const [message] = (await within(once(worker, 'message'), 5000, 'the watch')) as [string];
    t.equal(message, 'watching');
    t.equal(copies(), 2, "the watch's own copy");
    await worker.terminate();
    t.equal(copies(), 1, 'closed at the teardown');
  });

  void t.test('dupFd and closeFd: close-on-exec copies, system errors', (t) => {
    const copy = addon.dupFd(devNull);
    t.ok(copy >= 3);
    const flags = /^flags:\s*(\d+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${copy}`, 'utf8'));
    t.ok((parseInt(flags?.[1] ?? '0', 8) & 0o2000000) !== 0, 'O_CLOEXEC');
    t.equal(fs.readlinkSync(`/proc/self/fd/${copy}`), '/dev/null');
    addon.closeFd(copy);
    t.throws(() => addon.closeFd(notOpen), { code: 'EBADF', syscall: 'close' });
    t.throws(() => addon.dupFd(notOpen), { code: 'EBADF', syscall: 'fcntl' });
    t.throws(() => addon.watchReadable(notOpen, () => {}), { code: 'EBADF', syscall: 'fcntl' });
    t.throws(() => addon.dupFd(-1), { code: 'ERR_INVALID_ARG_TYPE' });
    t.end();
  });
}
