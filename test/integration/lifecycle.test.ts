import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import {
  DaemonUnderTest,
  childrenOf,
  exchange,
  makeConfDir,
  withDeadline,
  writeServices,
  isEvent,
  isAlive,
  runCli,
  type CliResult,
} from '../helpers/daemon.js';

type Target = { host: string; port: number } | { path: string };

/** `ping` through an echo handler: null when it came back whole, else what went wrong. */
async function echoOnce(target: Target): Promise<string | null> {
  try {
    const back = await exchange(target, 'ping\n', { ms: 10000 });
    return back.toString() === 'ping\n' ? null : `got ${JSON.stringify(back.toString())}`;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

/**
 * The TCP ports a process listens on: its fds' socket inodes matched against /proc/net/tcp{,6}
 * in LISTEN state (a freed port may be taken at once by another process's port 0: asking the
 * port itself would not tell whose it is).
 */
function listeningPortsOf(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1] !== undefined) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6'])
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const [local, state, inode] = [f[1], f[3], f[9]];
      if (state === '0A' && inode !== undefined && inodes.has(inode) && local !== undefined)
        ports.push(parseInt(local.split(':')[1] ?? '', 16));
    }
  return ports;
}

/** Opens a connection whose handler prints its pid first; resolves with it and the socket. */
function openPidConnection(target: { host: string; port: number }) {
  return withDeadline(
    new Promise<{ pid: number; socket: ReturnType<typeof connect>; ended: Promise<void> }>(
      (resolve, reject) => {
        const socket = connect(target.port, target.host);
        let text = '';
        const ended = new Promise<void>((done) => socket.once('end', () => done()));
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => {
          text += chunk;
          const nl = text.indexOf('\n');
          if (nl !== -1) resolve({ pid: Number(text.slice(0, nl)), socket, ended });
        });
        socket.once('error', reject);
      },
    ),
    10000,
    'the handler pid',
  );
}

const tcpOf = (address: string): { host: string; port: number } => {
  const m = /^tcp:([^:]+):(\d+)$/.exec(address);
  if (m === null) throw new Error(`not a tcp address: ${address}`);
  return { host: m[1] ?? '', port: Number(m[2]) };
};

/** The process a daemon under test handed over to shares its stderr: wait for its `exit`. */
async function stopSuccessor(daemon: DaemonUnderTest, pid: number | null): Promise<void> {
  if (pid === null || !isAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  await daemon.waitForCount(isEvent('exit'), 2, 20000);
}

/** `echo $$` then cat: the client learns the handler's pid, then it echoes. */
const pidThenCat = ['/bin/sh', '-c', 'echo $$; exec cat'];

t.test('a client loop sees no failed connection across reloads and an upgrade', async (t) => {
  const conf = makeConfDir({});
  const unixPath = join(conf.dir, 'steady.sock');
  writeServices(conf.confDir, {
    'steady.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] },
    'steady-unix.json': { listen: `unix:${unixPath}`, exec: ['cat'] },
    'gone.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] },
    'changed.json': { listen: 'tcp:127.0.0.1:0', exec: ['/bin/echo', 'old'] },
  });
  const control = join(conf.dir, 'control.sock');
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--control', control]);
  let successor: number | null = null;
  let isLooping = true;
  let loops: Promise<void>[] = [];
  t.teardown(async () => {
    isLooping = false;
    await Promise.all(loops);
    await stopSuccessor(daemon, successor);
    await daemon.stop();
    conf.cleanup();
  });
  const steady = daemon.tcp('steady');
  const gone = daemon.tcp('gone');
  const changed = daemon.tcp('changed');

  const failures: string[] = [];
  let done = 0;
  let waiters: { count: number; resolve: () => void }[] = [];
  const loop = async (target: Target): Promise<void> => {
    while (isLooping) {
      const failure = await echoOnce(target);
      if (failure !== null) failures.push(failure);
      done += 1;
      waiters = waiters.filter((w) => (done >= w.count ? (w.resolve(), false) : true));
    }
  };
  loops = [loop(steady), loop(steady), loop({ path: unixPath }), loop({ path: unixPath })];
  /** Resolves once `more` further connections have completed. */
  const waitForMore = (more: number): Promise<void> =>
    withDeadline(
      new Promise<void>((resolve) => waiters.push({ count: done + more, resolve })),
      120000,
      `${more} more connections`,
    );

  await waitForMore(500);
  writeServices(conf.confDir, {
    'changed.json': { listen: 'tcp:127.0.0.1:0', exec: ['/bin/echo', 'new'] },
    'added.json': { listen: 'tcp:127.0.0.1:0', exec: ['/bin/echo', 'added'] },
  });
  rmSync(join(conf.confDir, 'gone.json'));
  const reload = await runCli(['reload', '--control', control]);
  t.equal(reload.stderr, '');
  t.equal(
    reload.stdout,
    'reloaded: 2 unchanged, 1 changed (changed), 1 added (added), 1 removed (gone)\n',
  );
  t.equal(reload.code, 0);
  t.same(failures, [], 'no failed connection during the reload');
  t.notOk(listeningPortsOf(daemon.pid).includes(gone.port), 'a removed service is closed');
  t.ok(listeningPortsOf(daemon.pid).includes(changed.port), 'what stays is still listening');
  t.equal((await exchange(changed, null)).toString(), 'new\n', 'same port, new definition');
  const status = JSON.parse(
    (await runCli(['status', 'added', '--json', '--control', control])).stdout,
  ) as {
    services: { listeners: string[] }[];
  };
  const added = tcpOf(status.services[0]?.listeners[0] ?? '');
  t.equal((await exchange(added, null)).toString(), 'added\n');

  await waitForMore(1000);
  const upgrade = await runCli(['upgrade', '--control', control]);
  t.equal(upgrade.stderr, '');
  t.match(upgrade.stdout, /^handed over to pid \d+; \d+ running handlers? left running\n$/);
  t.equal(upgrade.code, 0);
  successor = Number(/pid (\d+)/.exec(upgrade.stdout)?.[1]);
  t.not(successor, daemon.pid);
  t.same(await withDeadline(daemon.exited, 10000, 'the old process exit'), {
    code: 0,
    signal: null,
  });
  t.ok(existsSync(unixPath), 'the Unix path was never removed');
  t.same(failures, [], 'no failed connection during the upgrade');

  await waitForMore(1500);
  const second = await runCli(['reload', '--control', control]);
  t.equal(second.stdout, 'reloaded: 4 unchanged, 0 changed, 0 added, 0 removed\n');
  await waitForMore(500);
  isLooping = false;
  await Promise.all(loops);
  t.same(failures, [], `no failed connection in ${done}`);
  t.ok(done >= 3500, `${done} connections`);
  t.equal((await exchange(changed, null)).toString(), 'new\n', 'the successor serves it too');
});

t.test('stop, start, quiesce, drain, kill and status on a running daemon', async (t) => {
  const conf = makeConfDir({
    'held.json': { listen: 'tcp:127.0.0.1:0', exec: pidThenCat },
    'other.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] },
  });
  const control = join(conf.dir, 'control.sock');
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--control', control]);
  let successor: number | null = null;
  t.teardown(async () => {
    await stopSuccessor(daemon, successor);
    await daemon.stop();
    conf.cleanup();
  });
  const ctl = (...args: string[]): Promise<CliResult> => runCli([...args, '--control', control]);
  const statusOf = async (service: string) =>
    (
      JSON.parse((await ctl('status', service, '--json')).stdout) as {
        services: {
          state: string;
          listeners: string[];
          counters: { active: number; accepted: number };
          connections: { instance: string; pid: number }[];
        }[];
      }
    ).services[0];

  await t.test('status --json rows are the handler processes really running', async (t) => {
    const open = await Promise.all([1, 2, 3].map(() => openPidConnection(daemon.tcp('held'))));
    const service = await statusOf('held');
    const pids = open.map((o) => o.pid).sort();
    t.same(service?.connections.map((c) => c.pid).sort(), pids);
    t.same(
      childrenOf(daemon.pid)
        .filter((c) => c.state !== 'Z')
        .map((c) => c.pid)
        .sort(),
      pids,
      'the daemon has exactly these children',
    );
    t.equal(service?.counters.active, 3);
    for (const c of service?.connections ?? [])
      t.match(c.instance, /^\d+-127\.0\.0\.1:\d+-127\.0\.0\.1:\d+$/);
    const text = await ctl('status');
    t.match(text.stdout, /held +running +3 +3 +0 +0 +tcp:127\.0\.0\.1:\d+\n/);
    t.match(text.stdout, /held: 3 connections\n/);

    await t.test('kill SERVICE@INSTANCE signals that handler only', async (t) => {
      const victim = service?.connections[0];
      const result = await ctl('kill', `held@${victim?.instance ?? ''}`, '--signal', 'KILL');
      t.equal(result.stdout, `SIGKILL sent to held@${victim?.instance} (pid ${victim?.pid})\n`);
      t.equal(result.code, 0);
      await daemon.waitForLog((r) => r.event === 'end' && r.pid === victim?.pid);
      t.equal((await statusOf('held'))?.counters.active, 2);
      const unknown = await ctl('kill', 'held@9-nope');
      t.equal(unknown.stderr, 'socketeer: fatal: held has no running instance 9-nope\n');
      t.equal(unknown.code, 100);
    });

    await t.test('quiesce ends running handlers and keeps listening', async (t) => {
      const result = await ctl('quiesce', 'held');
      t.equal(result.stdout, 'quiesced held: ended 2 handlers; running\n');
      t.equal(result.code, 0);
      for (const o of open) await withDeadline(o.ended, 10000, 'EOF from a quiesced handler');
      t.notOk(open.some((o) => isAlive(o.pid)));
      const next = await openPidConnection(daemon.tcp('held'));
      t.notOk(pids.includes(next.pid), 'a new handler serves the next connection');
      next.socket.end();
      await next.ended;
    });
  });

  await t.test('stop refuses connections, even after a reload, until start', async (t) => {
    const before = daemon.tcp('other');
    const stop = await ctl('stop', 'other');
    t.equal(stop.stdout, 'stopped other: ended 0 handlers\n');
    t.equal(stop.code, 0);
    t.notOk(listeningPortsOf(daemon.pid).includes(before.port), 'its port is closed');
    t.equal((await statusOf('other'))?.state, 'stopped');
    writeServices(conf.confDir, {
      'other.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat', '-'] },
    });
    t.equal((await ctl('reload')).code, 0);
    t.equal((await statusOf('other'))?.state, 'stopped', 'still stopped after a reload');
    t.same((await statusOf('other'))?.listeners, []);
    t.notOk(listeningPortsOf(daemon.pid).includes(before.port), 'still closed');
    const start = await ctl('start', 'other');
    t.match(start.stdout, /^started other: tcp:127\.0\.0\.1:\d+\n$/);
    const now = tcpOf(start.stdout.trim().split(' ')[2] ?? '');
    t.equal(await echoOnce(now), null, 'served again');
    t.equal(
      (await ctl('start', 'other')).stdout,
      `other is already running: tcp:127.0.0.1:${now.port}\n`,
    );
  });

  await t.test('drain waits for a running handler, then reports stopped', async (t) => {
    const held = await openPidConnection(daemon.tcp('held'));
    const draining = ctl('drain', 'held', '--timeout', '60');
    await daemon.waitForLog(isEvent('drain', 'held'));
    t.equal((await statusOf('held'))?.state, 'draining');
    const { port } = daemon.tcp('held');
    t.notOk(listeningPortsOf(daemon.pid).includes(port), 'no longer accepting');
    t.ok(isAlive(held.pid), 'the running handler is left to finish');
    held.socket.end(); // cat sees EOF and exits by itself
    const result = await draining;
    t.equal(result.stdout, 'drained held: 1 handler finished; stopped\n');
    t.equal(result.code, 0);
    t.equal((await statusOf('held'))?.state, 'stopped');
  });

  await t.test('a reload with one broken file changes nothing', async (t) => {
    writeServices(conf.confDir, {
      'broken.json': '{ "listen": "tcp:127.0.0.1:0", "exec": ["cat"], "bogus": 1 }',
      'extra.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] },
    });
    const before = await ctl('status', '--json');
    const result = await ctl('reload');
    t.equal(
      result.stderr,
      `${join(conf.confDir, 'broken.json')}: /bogus: unknown key\n` +
        'socketeer: fatal: reload refused: 1 problem; the running configuration is unchanged\n',
    );
    t.equal(result.stdout, '');
    t.equal(result.code, 100);
    const after = await ctl('status', '--json');
    const names = (text: string) =>
      (JSON.parse(text) as { services: { name: string; listeners: string[] }[] }).services;
    t.same(names(after.stdout), names(before.stdout), 'same services, same listeners');
    await daemon.waitForLog(isEvent('reload-failed'));
    rmSync(join(conf.confDir, 'broken.json'));
    rmSync(join(conf.confDir, 'extra.json'));
  });

  await t.test('SIGHUP reloads, SIGUSR1 logs the whole state', async (t) => {
    writeServices(conf.confDir, { 'late.json': { listen: 'tcp:127.0.0.1:0', exec: ['cat'] } });
    process.kill(daemon.pid, 'SIGHUP');
    const reload = await daemon.waitForLog(
      (r) => r.event === 'reload' && (r.added as string[]).includes('late'),
    );
    t.same(reload.added, ['late']);
    process.kill(daemon.pid, 'SIGUSR1');
    const state = await daemon.waitForLog(isEvent('state'));
    const status = JSON.parse((await ctl('status', '--json')).stdout) as { services: unknown[] };
    const shape = (services: unknown) =>
      (services as { name: string; state: string; listeners: string[] }[]).map((s) => [
        s.name,
        s.state,
        s.listeners,
      ]);
    t.same(shape(state.services), shape(status.services));
    t.equal(state.pid, daemon.pid);
  });

  await t.test('an upgrade whose new process fails leaves this one serving', async (t) => {
    writeServices(conf.confDir, { 'broken.json': '{ "listen": 1 }' });
    const result = await ctl('upgrade');
    t.match(
      result.stderr,
      /^socketeer: fatal: hand-over to pid \d+ failed: it exited \(code 100\)\n$/,
    );
    t.equal(result.code, 111);
    rmSync(join(conf.confDir, 'broken.json'));
    const status = JSON.parse((await ctl('status', '--json')).stdout) as { pid: number };
    t.equal(status.pid, daemon.pid, 'the old process still answers on the control socket');
    t.equal(await echoOnce(tcpOf((await statusOf('other'))?.listeners[0] ?? '')), null);
  });

  await t.test('SIGUSR2 hands over; a stopped service stays stopped', async (t) => {
    const other = tcpOf((await statusOf('other'))?.listeners[0] ?? '');
    process.kill(daemon.pid, 'SIGUSR2');
    const upgrade = await daemon.waitForLog(isEvent('upgrade'));
    successor = upgrade.pid as number;
    t.same(await withDeadline(daemon.exited, 10000, 'the old process exit'), {
      code: 0,
      signal: null,
    });
    const status = JSON.parse((await ctl('status', '--json')).stdout) as {
      pid: number;
      services: { name: string; state: string }[];
    };
    t.equal(status.pid, successor);
    t.same(
      status.services.map((s) => [s.name, s.state]),
      [
        ['held', 'stopped'],
        ['late', 'running'],
        ['other', 'running'],
      ],
    );
    t.equal(await echoOnce(other), null, 'the same port, served by the new process');
  });
});
