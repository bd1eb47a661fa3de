// `upgrade` with `accept: false` services: the process keeps running and serving across the
// hand-over, the new daemon adopts it (same pid, uptime and restarts go on), applies the restart
// policy when it ends (seen in /proc, exit status unknown) and ends it on quiesce; a failed
// hand-over leaves the old daemon, the process and the sockets exactly as they were.
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  DaemonUnderTest,
  exchange,
  fixtures,
  isAlive,
  isEvent,
  makeConfDir,
  runCli,
  withDeadline,
  writeServices,
  type LogRecord,
} from '../helpers/daemon.js';
import { curl, lighttpd, lighttpdSite, requestLoop } from '../helpers/lighttpd.js';

const python = '/usr/bin/python3';
const fixture = join(fixtures, 'listen-fds.py');

type Target = { host: string; port: number } | { path: string };

/** The pid of the fixture process that answered one connection. */
async function answeredBy(target: Target): Promise<number> {
  const line = (await exchange(target, null, { ms: 20000 })).toString();
  const m = /^pid=(\d+) listenpid=ok fds=\d+ names=\S+ fd=\d+\n$/.exec(line);
  if (m === null) throw new Error(`unexpected answer ${JSON.stringify(line)}`);
  return Number(m[1]);
}

/** Clients asking in a loop until `stop`; every answer's pid, every failure's message. */
function requestLoops(targets: readonly Target[]) {
  const pids = new Set<number>();
  const failures: string[] = [];
  let done = 0;
  let isLooping = true;
  const loop = async (target: Target): Promise<void> => {
    while (isLooping) {
      await answeredBy(target).then(
        (pid) => pids.add(pid),
        (error: Error) =>
          failures.push(`${(error as NodeJS.ErrnoException).code ?? ''} ${error.message}`),
      );
      done += 1;
    }
  };
  const loops = targets.map(loop);
  return {
    pids,
    failures,
    get done() {
      return done;
    },
    async stop(): Promise<void> {
      isLooping = false;
      await Promise.all(loops);
    },
  };
}

/** Resolves once `test` holds, checked as requests complete (never a fixed sleep). */
async function until(test: () => boolean, what: string): Promise<void> {
  await withDeadline(
    (async () => {
      while (!test()) await new Promise((resolve) => setTimeout(resolve, 20));
    })(),
    60000,
    what,
  );
}

type ProcessView = { pid: number | null; restarts: number; phase: string; uptimeSec: number };

async function processOf(control: string, service: string) {
  const r = await runCli(['status', service, '--json', '--control', control]);
  const status = JSON.parse(r.stdout) as { pid: number; services: { process: ProcessView }[] };
  const process = status.services[0]?.process;
  if (process === undefined) throw new Error(`no process in ${r.stdout}`);
  return { daemon: status.pid, process };
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/**
 * Waits until `count` `stderr` records of `pid` are logged (the fixture's `answered N`, one per
 * connection) and checks that they are exactly 1 to `count`: none lost, none twice.
 */
async function assertStderrLines(
  t: Test,
  daemon: DaemonUnderTest,
  expected: { readonly pid: number; readonly count: number },
): Promise<void> {
  const { pid, count } = expected;
  const isLine = (r: LogRecord): boolean => isEvent('stderr', 'held')(r) && r.pid === pid;
  await daemon.waitForCount(isLine, count);
  const lines = daemon.records
    .filter(isLine)
    .map((r) => Number(/^answered (\d+)$/.exec(String(r.line))?.[1]));
  t.same(
    lines.sort((a, b) => a - b),
    Array.from({ length: count }, (_, i) => i + 1),
    `its ${count} stderr lines are logged, each once`,
  );
}

const activations = (daemon: DaemonUnderTest, service: string): LogRecord[] =>
  daemon.records.filter(isEvent('activate', service));

/**
 * The process a daemon under test handed over to shares its stderr: wait for its `exit`, the
 * `exits`-th (one per daemon of the chain).
 */
async function stopSuccessor(
  daemon: DaemonUnderTest,
  last: { readonly pid: number | null; readonly exits: number },
): Promise<void> {
  if (last.pid === null || !isAlive(last.pid)) return;
  process.kill(last.pid, 'SIGTERM');
  await daemon.waitForCount(isEvent('exit'), last.exits, 30000);
}

function services(dir: string): Record<string, Record<string, unknown>> {
  return {
    'held.json': {
      listen: [`unix:${join(dir, 'held.sock')}`, 'tcp:127.0.0.1:0'],
      exec: [python, fixture],
      accept: false,
      env: { FIXTURE_STDERR: '1' },
      stderrRate: { perSecond: 100_000_000, burst: 100_000_000 },
    },
    'early.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: [python, fixture],
      accept: false,
      start: 'at-start',
      restart: 'always',
    },
    'always.json': {
      listen: 'tcp:127.0.0.1:0',
      exec: [python, fixture],
      accept: false,
      restart: 'always',
    },
  };
}

for (const spawner of ['native', 'portable'] as const) {
  t.test(
    `upgrade hands the sockets over and leaves the process running (${spawner} spawner)`,
    async (t) => {
      const conf = makeConfDir({});
      writeServices(conf.confDir, services(conf.dir));
      const control = join(conf.dir, 'control.sock');
      const daemon = await DaemonUnderTest.start(conf.confDir, [
        '--control',
        control,
        '--spawner',
        spawner,
      ]);
      let successor: number | null = null;
      let last = { pid: null as number | null, exits: 2 };
      t.teardown(async () => {
        await stopSuccessor(daemon, last);
        await daemon.stop();
        conf.cleanup();
      });
      const held = daemon.tcp('held', 1);
      const heldPath = { path: join(conf.dir, 'held.sock') };
      const first = await answeredBy(held);
      const early = (await daemon.waitForLog(isEvent('activate', 'early'))).pid as number;
      const always = await answeredBy(daemon.tcp('always'));
      t.equal(await answeredBy(heldPath), first, 'one process serves both sockets');
      const before = await processOf(control, 'held');

      const loops = requestLoops([held, held, heldPath]);
      await until(() => loops.done >= 50, '50 requests before the upgrade');
      const upgrade = await runCli(['upgrade', '--control', control]);
      t.same({ code: upgrade.code, stderr: upgrade.stderr }, { code: 0, stderr: '' });
      t.match(upgrade.stdout, /^handed over to pid \d+; 3 running handlers left running\n$/);
      successor = Number(/pid (\d+)/.exec(upgrade.stdout)?.[1]);
      last = { pid: successor, exits: 2 };
      t.not(successor, daemon.pid);
      t.same(await withDeadline(daemon.exited, 30000, 'the old daemon exit'), {
        code: 0,
        signal: null,
      });
      const atExit = loops.done;
      await until(() => loops.done >= atExit + 50, '50 requests after the old daemon exited');
      await loops.stop();
      t.same(loops.failures, [], `no request failed in ${loops.done} across the upgrade`);
      t.same([...loops.pids], [first], 'the same process answered every request');
      // its stderr pipe came along: what it wrote after the old daemon exited is logged too
      await assertStderrLines(t, daemon, { pid: first, count: 2 + loops.done });

      const after = await processOf(control, 'held');
      t.equal(after.daemon, successor, 'status comes from the new daemon');
      t.match(after.process, { pid: first, restarts: 0, phase: 'running' });
      t.ok(after.process.uptimeSec >= before.process.uptimeSec, 'its uptime goes on');
      t.match((await processOf(control, 'early')).process, { pid: early, restarts: 0 });
      t.equal(activations(daemon, 'held').length, 1, 'the new daemon started no second process');
      t.equal(activations(daemon, 'early').length, 1, 'not even for start: at-start');
      t.ok(isAlive(first) && isAlive(early) && isAlive(always));

      // SIGKILL: the new daemon sees the end (exit status unknown), the next request starts anew
      process.kill(first, 'SIGKILL');
      const end = await daemon.waitForLog((r) => isEvent('end', 'held')(r) && r.pid === first);
      t.match(end, { exitCode: null, signal: null, forced: false });
      const second = await answeredBy(held);
      t.not(second, first);
      t.match(activations(daemon, 'held')[1], { pid: second, trigger: 'demand' });
      t.equal(parentOf(second), successor, "the new process is the new daemon's child");
      t.match((await processOf(control, 'held')).process, { pid: second, restarts: 1 });

      // restart: always, exit status unknown: started again by itself
      process.kill(always, 'SIGKILL');
      const restarted = await daemon
        .waitForCount(isEvent('activate', 'always'), 2)
        .then(() => activations(daemon, 'always')[1]);
      t.match(restarted, { trigger: 'restart' });
      const alwaysNow = restarted?.pid as number;
      t.equal(await answeredBy(daemon.tcp('always')), alwaysNow);

      // a second upgrade carries held's process (the first successor's child) and its stderr on;
      // a service gone from the files has its process ended by the next daemon, as a reload would
      rmSync(join(conf.confDir, 'always.json'));
      const again = await runCli(['upgrade', '--control', control]);
      t.same({ code: again.code, stderr: again.stderr }, { code: 0, stderr: '' });
      const third = Number(/pid (\d+)/.exec(again.stdout)?.[1]);
      last = { pid: third, exits: 3 };
      await daemon.waitForCount(isEvent('exit'), 2);
      t.equal(await answeredBy(heldPath), second);
      const carriedTwice = await processOf(control, 'held');
      t.equal(carriedTwice.daemon, third);
      t.match(carriedTwice.process, { pid: second, restarts: 1, phase: 'running' });
      await assertStderrLines(t, daemon, { pid: second, count: 2 });
      await until(() => !isAlive(alwaysNow), "the removed service's process to end");
      t.equal(activations(daemon, 'held').length, 2, 'no start by the third daemon');

      // quiesce ends the carried process (an end asked for: not restarted, even with always)
      const quiesced = await runCli(['quiesce', 'early', '--control', control]);
      t.equal(quiesced.code, 0, quiesced.stderr);
      await daemon.waitForLog((r) => isEvent('end', 'early')(r) && r.pid === early);
      t.notOk(isAlive(early), 'the carried process ended');
      t.match((await processOf(control, 'early')).process, { pid: null, phase: 'waiting' });
      t.equal(activations(daemon, 'early').length, 1, 'not restarted after a quiesce');
      const fresh = await answeredBy(daemon.tcp('early'));
      t.match(activations(daemon, 'early')[1], { pid: fresh, trigger: 'demand' });

      // drain: the sockets close, the carried process (second, carried twice) gets SIGTERM
      const drained = await runCli(['drain', 'held', '--control', control]);
      t.equal(drained.code, 0, drained.stderr);
      await daemon.waitForLog((r) => isEvent('end', 'held')(r) && r.pid === second);
      t.notOk(isAlive(second));
      t.match((await processOf(control, 'held')).process, { pid: null, phase: 'closed' });
    },
  );
}

t.test('a failed upgrade leaves the process and its sockets as they were', async (t) => {
  const conf = makeConfDir({});
  writeServices(conf.confDir, services(conf.dir));
  const control = join(conf.dir, 'control.sock');
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--control', control]);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  const held = daemon.tcp('held', 1);
  const heldPath = { path: join(conf.dir, 'held.sock') };
  const first = await answeredBy(held);
  const early = (await daemon.waitForLog(isEvent('activate', 'early'))).pid as number;
  let answered = 1;

  // the new process fails before it is prepared (a bad file), then after the old one stopped
  // starting processes and sent its state (held's TCP address moved to a port in use)
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const busyPort = (blocker.address() as AddressInfo).port;
  const held2 = { listen: [`unix:${heldPath.path}`, `tcp:127.0.0.1:${busyPort}`] };
  const failures = [
    { files: { 'broken.json': '{ "listen": 1 }' }, code: 100 },
    { files: { 'held.json': { ...services(conf.dir)['held.json'], ...held2 } }, code: 111 },
  ];
  for (const { files, code } of failures) {
    writeServices(conf.confDir, files);
    const loops = requestLoops([held, heldPath]);
    await until(() => loops.done >= 20, '20 requests before the upgrade');
    const upgrade = await runCli(['upgrade', '--control', control]);
    t.equal(upgrade.code, 111);
    t.match(
      upgrade.stderr,
      new RegExp(
        `^socketeer: fatal: hand-over to pid \\d+ failed: it exited \\(code ${code}\\)\n$`,
      ),
    );
    const atFailure = loops.done;
    await until(() => loops.done >= atFailure + 20, '20 requests after the failed upgrade');
    await loops.stop();
    t.same(loops.failures, [], `no request failed in ${loops.done}`);
    t.same([...loops.pids], [first], 'the same process answered every request');
    answered += loops.done;
    rmSync(join(conf.confDir, 'broken.json'), { force: true });
  }
  t.ok(existsSync(heldPath.path), 'the Unix path is still there');
  await assertStderrLines(t, daemon, { pid: first, count: answered });

  const status = await processOf(control, 'held');
  t.equal(status.daemon, daemon.pid, 'the old daemon serves on');
  t.match(status.process, { pid: first, restarts: 0, phase: 'running' });
  t.match((await processOf(control, 'early')).process, { pid: early, restarts: 0 });
  t.equal(activations(daemon, 'held').length, 1);
  t.equal(activations(daemon, 'early').length, 1);

  // still its own child: a SIGKILL is a failure it sees (restarted by on-failure)
  process.kill(first, 'SIGKILL');
  const end = await daemon.waitForLog((r) => isEvent('end', 'held')(r) && r.pid === first);
  t.match(end, { exitCode: null, signal: 'SIGKILL' });
  const second = await answeredBy(heldPath);
  t.not(second, first);
  t.match(activations(daemon, 'held')[1], { pid: second, trigger: 'restart' });
  t.equal(await answeredBy(held), second);

  // its activation watches are back: an end asked for leaves the start to the next request
  const quiesced = await runCli(['quiesce', 'held', '--control', control]);
  t.equal(quiesced.code, 0, quiesced.stderr);
  await daemon.waitForLog((r) => isEvent('end', 'held')(r) && r.pid === second);
  const third = await answeredBy(held);
  t.match(activations(daemon, 'held')[2], { pid: third, trigger: 'demand' });
});

/** Sends one datagram and waits for the one answer. */
function askUdp(address: string, text: string): Promise<string> {
  const m = /^udp:(?:\[(.+)\]|([^:]+)):(\d+)$/.exec(address);
  if (m === null) throw new Error(`not a udp address: ${address}`);
  const host = m[1] ?? m[2] ?? '';
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const answer = new Promise<string>((resolve, reject) => {
    socket.once('message', (message) => resolve(message.toString()));
    socket.once('error', reject);
  });
  socket.send(text, Number(m[3]), host);
  return withDeadline(answer, 30000, `an answer to ${text}`).finally(() => socket.close());
}

t.test('udp: sockets are handed over: the same ports, started by the new daemon', async (t) => {
  const dgram = join(fixtures, 'listen-dgram.py');
  const conf = makeConfDir({
    'dgram.json': { listen: 'udp:127.0.0.1:0', exec: [python, dgram], accept: false },
    'dgram6.json': {
      listen: 'udp:[::1]:0',
      exec: [python, dgram, 'stdin'],
      accept: false,
      listenerOn: 'stdin',
    },
  });
  const control = join(conf.dir, 'control.sock');
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--control', control]);
  let successor: number | null = null;
  t.teardown(async () => {
    if (successor !== null && isAlive(successor)) process.kill(successor, 'SIGKILL');
    await daemon.stop();
    conf.cleanup();
  });
  const four = daemon.addresses.get('dgram')?.[0] ?? '';
  const six = daemon.addresses.get('dgram6')?.[0] ?? '';
  t.match(
    await askUdp(four, 'one'),
    /^pid=\d+ listenpid=ok fds=1 names=dgram fd=3 type=dgram got=one\n$/,
  );
  await daemon.waitForLog(isEvent('end', 'dgram'));

  const upgrade = await runCli(['upgrade', '--control', control]);
  t.equal(upgrade.code, 0, upgrade.stderr);
  successor = Number(/pid (\d+)/.exec(upgrade.stdout)?.[1]);
  await withDeadline(daemon.exited, 30000, 'the old daemon exit');
  t.match(
    daemon.records.find((r) => r.event === 'listen' && r.service === 'dgram' && r.fd !== undefined),
    { address: four },
    'the new daemon holds the same UDP socket',
  );
  const two = await askUdp(four, 'two');
  const started = daemon.records.filter(isEvent('activate', 'dgram'));
  t.equal(started.length, 2);
  t.equal(
    two,
    `pid=${started[1]?.pid as number} listenpid=ok fds=1 names=dgram fd=3 type=dgram got=two\n`,
  );
  const answered = await askUdp(six, 'six');
  t.match(answered, /^pid=\d+ listenpid=ok fds=0 names=- fd=0 type=dgram got=six\n$/);
  t.equal(
    (await runCli(['status', 'dgram', '--json', '--control', control])).code,
    0,
    'the new daemon answers',
  );
  process.kill(successor, 'SIGTERM');
  await daemon.waitForCount(isEvent('exit'), 2, 20000);
});

const noLighttpd = existsSync(lighttpd)
  ? false
  : 'lighttpd is not installed (apt-get install lighttpd)';

t.test(
  'lighttpd keeps serving across an upgrade, then quiesce ends it',
  { skip: noLighttpd },
  async (t) => {
    const conf = makeConfDir({});
    const site = lighttpdSite(conf.dir);
    const sock = join(conf.dir, 'web.sock');
    writeServices(conf.confDir, {
      'web.json': {
        listen: ['tcp:127.0.0.1:0', `unix:${sock}`],
        exec: [lighttpd, '-D', '-f', site],
        accept: false,
        socket: { mode: '0666' },
      },
    });
    const control = join(conf.dir, 'control.sock');
    const daemon = await DaemonUnderTest.start(conf.confDir, ['--control', control]);
    let last = { pid: null as number | null, exits: 2 };
    t.teardown(async () => {
      await stopSuccessor(daemon, last);
      await daemon.stop();
      conf.cleanup();
    });
    const tcp = daemon.tcp('web');
    t.equal(await curl(tcp), 'hello from lighttpd\n');
    const pid = (await daemon.waitForLog(isEvent('activate', 'web'))).pid as number;

    const requests = requestLoop([tcp, { path: sock }]);
    await until(() => requests.served() >= 20, '20 requests before the upgrade');
    const upgrade = await runCli(['upgrade', '--control', control]);
    t.equal(upgrade.code, 0, upgrade.stderr);
    const successor = Number(/pid (\d+)/.exec(upgrade.stdout)?.[1]);
    last = { pid: successor, exits: 2 };
    await withDeadline(daemon.exited, 30000, 'the old daemon exit');
    const atExit = requests.served();
    await until(() => requests.served() >= atExit + 20, '20 requests after the old daemon exited');
    await requests.stop();
    t.same(requests.failures, [], `no request failed in ${requests.served()} across the upgrade`);
    const status = await processOf(control, 'web');
    t.same([status.daemon, status.process.pid], [successor, pid], 'the same lighttpd, adopted');
    t.equal(activations(daemon, 'web').length, 1);

    const quiesced = await runCli(['quiesce', 'web', '--control', control]);
    t.equal(quiesced.code, 0, quiesced.stderr);
    await daemon.waitForLog((r) => isEvent('end', 'web')(r) && r.pid === pid);
    t.notOk(isAlive(pid), 'quiesce ended the carried lighttpd');
    t.equal(await curl({ path: sock }), 'hello from lighttpd\n');
    t.match(activations(daemon, 'web')[1], { trigger: 'demand' });
    t.equal(parentOf(activations(daemon, 'web')[1]?.pid as number), successor);
  },
);
