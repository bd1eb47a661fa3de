// accept: false with real daemons that take their sockets: lighttpd (TCP and a Unix socket),
// systemd-socket-proxyd chained in front of a socketeer echo, and a python fixture that checks
// LISTEN_PID and LISTEN_FDNAMES.
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  DaemonUnderTest,
  cleanEnv,
  exchange,
  fixtures,
  isEvent,
  makeConfDir,
  runCli,
  withDeadline,
  type LogRecord,
} from '../helpers/daemon.js';
import { curl, lighttpd, lighttpdSite, requestLoop } from '../helpers/lighttpd.js';

const proxyd = '/lib/systemd/systemd-socket-proxyd';
const python = '/usr/bin/python3';

/**
 * Writes `text` and reads until it came back whole, then closes: systemd-socket-proxyd does not
 * pass a half-close on, so the client cannot wait for EOF.
 */
function echoBack(target: { host: string; port: number }, text: string): Promise<string> {
  return withDeadline(
    new Promise((resolve, reject) => {
      const socket = connect(target.port, target.host);
      let got = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        got += chunk;
        if (got.length >= text.length) {
          socket.destroy();
          resolve(got);
        }
      });
      socket.once('error', reject);
      socket.once('connect', () => socket.write(text));
    }),
    20000,
    'an echo through the proxy',
  );
}

/** What an abstract socket says until EOF, read by python3 (Node pads abstract names). */
function readAbstract(name: string): Promise<string> {
  const script =
    'import socket,sys\n' +
    's=socket.socket(socket.AF_UNIX)\n' +
    's.connect(b"\\0"+sys.argv[1].encode())\n' +
    'print(s.makefile().read(), end="")';
  return new Promise((resolve) => {
    execFile(python, ['-c', script, name], { timeout: 20000 }, (error, stdout, stderr) =>
      resolve(error === null ? stdout : `python3 failed: ${stderr}`),
    );
  });
}

const activations = (daemon: DaemonUnderTest, service: string): LogRecord[] =>
  daemon.records.filter(isEvent('activate', service));

const noLighttpd = existsSync(lighttpd)
  ? false
  : 'lighttpd is not installed (apt-get install lighttpd)';
const noProxyd = existsSync(proxyd) ? false : 'systemd-socket-proxyd is not installed (systemd)';

t.test(
  'lighttpd on TCP and a Unix socket, started by the first requests',
  { skip: noLighttpd },
  async (t) => {
    const conf = makeConfDir({});
    const sock = join(conf.dir, 'web.sock');
    writeFileSync(
      join(conf.confDir, 'web.json'),
      JSON.stringify({
        listen: ['tcp:127.0.0.1:0', `unix:${sock}`],
        exec: [lighttpd, '-D', '-f', lighttpdSite(conf.dir)],
        accept: false,
        // lighttpd's graceful stop: it finishes the requests it has accepted, then exits
        killSignal: 'SIGINT',
        socket: { mode: '0660' },
      }),
    );
    const control = join(conf.dir, 'control.sock');
    const daemon = await DaemonUnderTest.start(conf.confDir, ['--control', control]);
    t.teardown(async () => {
      await daemon.stop();
      conf.cleanup();
    });
    const listen = await daemon.waitForLog((r) => r.event === 'listen' && r.service === 'web');
    const tcp = daemon.tcp('web');
    t.equal(listen.address, `tcp:127.0.0.1:${tcp.port}`, 'the bound port, from the listen record');
    t.equal(statSync(sock).mode & 0o777, 0o660);
    t.same(activations(daemon, 'web'), [], 'nothing runs before a connection');

    // a burst of 20 before the daemon runs: all wait in the backlog, one start serves them all
    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, i) => curl(i % 2 === 0 ? tcp : { path: sock })),
    );
    t.same(
      burst,
      Array.from({ length: 20 }, () => 'hello from lighttpd\n'),
    );
    const started = activations(daemon, 'web');
    t.equal(started.length, 1);
    t.match(started[0], {
      trigger: 'demand',
      fds: [`3=tcp:127.0.0.1:${tcp.port}`, `4=unix:${sock}`],
    });
    const pid = started[0]?.pid as number;

    const status = await runCli(['status', 'web', '--json', '--control', control]);
    const web = (JSON.parse(status.stdout) as { services: Record<string, unknown>[] }).services[0];
    t.match(web, {
      state: 'running',
      connections: [],
      process: { pid, restarts: 0, phase: 'running' },
    });

    // killed while idle: socketeer restarts it, and the next request is answered
    process.kill(pid, 'SIGKILL');
    await daemon.waitForLog(
      (r) => isEvent('end', 'web')(r) && r.signal === 'SIGKILL' && r.pid === pid,
    );
    await daemon.waitForLog(isEvent('restart-scheduled', 'web'));
    t.equal(await curl(tcp), 'hello from lighttpd\n');
    await daemon.waitForCount(isEvent('activate', 'web'), 2);
    t.match(activations(daemon, 'web')[1], { trigger: 'restart' });
    const after = await runCli(['status', 'web', '--json', '--control', control]);
    t.match(JSON.parse(after.stdout), {
      services: [{ process: { restarts: 1, lastExit: { exitCode: null, signal: 'SIGKILL' } } }],
    });

    // quiesce under a loop of requests: the process ends, the next request starts a new one
    const requests = requestLoop([tcp, { path: sock }]);
    const quiesced = await runCli(['quiesce', 'web', '--control', control]);
    t.equal(quiesced.code, 0, quiesced.stderr);
    await daemon.waitForCount(isEvent('activate', 'web'), 3);
    const before = requests.served();
    await withDeadline(
      (async () => {
        while (requests.served() < before + 20) await curl(tcp);
      })(),
      60000,
      'requests after the quiesce',
    );
    await requests.stop();
    // lighttpd gets one SIGINT, its graceful stop: it closes its listening fds and answers what
    // it has accepted, and the next request starts a new one. (A second SIGINT, which the
    // process tracking used to send, made that an immediate stop that dropped an accepted
    // connection: curl's "Couldn't connect", about one run in seven.)
    t.same(requests.failures, [], 'no request failed across the quiesce');
    t.match(activations(daemon, 'web')[2], { trigger: 'demand' });

    // stop: the process ends and the sockets close; start binds them again
    const stopped = await runCli(['stop', 'web', '--control', control]);
    t.equal(stopped.code, 0, stopped.stderr);
    t.match(await curl(tcp), /^curl failed: .*(Connection refused|Couldn't connect)/);
    t.notOk(existsSync(sock), 'the Unix path is gone');
    const restarted = await runCli(['start', 'web', '--control', control]);
    t.equal(restarted.code, 0, restarted.stderr);
    t.equal(await curl({ path: sock }), 'hello from lighttpd\n');
  },
);

t.test(
  'systemd-socket-proxyd behind socketeer, in front of a socketeer echo',
  { skip: noProxyd },
  async (t) => {
    const conf = makeConfDir({});
    chmodSync(conf.dir, 0o755); // the proxy runs as nobody under a root daemon
    const echo = join(conf.dir, 'echo.sock');
    writeFileSync(
      join(conf.confDir, 'echo.json'),
      JSON.stringify({ listen: `unix:${echo}`, exec: ['/bin/cat'], socket: { mode: '0666' } }),
    );
    writeFileSync(
      join(conf.confDir, 'proxy.json'),
      JSON.stringify({ listen: 'tcp:127.0.0.1:0', exec: [proxyd, echo], accept: false }),
    );
    const daemon = await DaemonUnderTest.start(conf.confDir);
    t.teardown(async () => {
      await daemon.stop();
      conf.cleanup();
    });
    const proxy = daemon.tcp('proxy');
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) => echoBack(proxy, `ping ${i}\n`)),
    );
    t.same(
      answers,
      Array.from({ length: 5 }, (_, i) => `ping ${i}\n`),
    );
    t.equal(activations(daemon, 'proxy').length, 1);
    await daemon.waitForCount(isEvent('end', 'echo'), 5);
  },
);

t.test('a fixture daemon sees LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES', async (t) => {
  const conf = makeConfDir({});
  const fixture = join(fixtures, 'listen-fds.py');
  writeFileSync(
    join(conf.confDir, 'two.json'),
    JSON.stringify({
      listen: ['tcp:127.0.0.1:0', 'unix:@socketeer-test-two-' + process.pid],
      exec: [python, fixture],
      accept: false,
      start: 'at-start',
      fdName: 'api',
    }),
  );
  writeFileSync(
    join(conf.confDir, 'wait.json'),
    JSON.stringify({
      listen: 'tcp:127.0.0.1:0',
      exec: [python, fixture, 'stdin'],
      accept: false,
      listenerOn: 'stdin',
      restart: 'no',
    }),
  );
  const daemon = await DaemonUnderTest.start(conf.confDir);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  const started = await daemon.waitForLog(isEvent('activate', 'two'));
  t.equal(started.trigger, 'start', 'at-start: before any connection');
  const line = (await exchange(daemon.tcp('two'), null)).toString();
  t.equal(line, `pid=${started.pid as number} listenpid=ok fds=2 names=api:api fd=3\n`);
  const abstract = await readAbstract(`socketeer-test-two-${process.pid}`);
  t.match(abstract, /^pid=\d+ listenpid=ok fds=2 names=api:api fd=4\n$/);

  t.same(activations(daemon, 'wait'), []);
  const waited = (await exchange(daemon.tcp('wait'), null)).toString();
  const stdin = await daemon.waitForLog(isEvent('activate', 'wait'));
  t.equal(waited, `pid=${stdin.pid as number} listenpid=ok fds=1 names=- fd=0\n`);
  t.same(stdin.fds, [
    `0=${daemon.addresses.get('wait')?.[0] ?? ''}`,
    `1=${daemon.addresses.get('wait')?.[0] ?? ''}`,
  ]);

  // quiesce under a loop: the fixture answers the connection it took, the next one starts anew
  const control = join(conf.dir, 'control.sock');
  const two = daemon.tcp('two');
  let isLooping = true;
  const failures: string[] = [];
  const loop = async (): Promise<void> => {
    while (isLooping) {
      const got = (await exchange(two, null).catch((e: Error) => e.message)).toString();
      if (!/^pid=\d+ listenpid=ok fds=2 names=api:api fd=3\n$/.test(got)) failures.push(got);
    }
  };
  const loops = [loop(), loop()];
  for (let round = 1; round <= 3; round++) {
    const quiesced = await runCli(['quiesce', 'two', '--control', control]);
    t.equal(quiesced.code, 0, quiesced.stderr);
    await daemon.waitForCount(isEvent('activate', 'two'), round + 1);
  }
  isLooping = false;
  await Promise.all(loops);
  t.same(failures, [], 'no connection failed across three quiesces');
  t.match(activations(daemon, 'two')[3], { trigger: 'demand' });

  // kill: SIGTERM is a clean end, not restarted; the next connection starts it again
  const killed = await runCli(['kill', 'two', '--control', control]);
  t.equal(killed.code, 0, killed.stderr);
  await daemon.waitForLog(
    (r) => isEvent('end', 'two')(r) && r.pid === activations(daemon, 'two')[3]?.pid,
  );
  t.same(daemon.records.filter(isEvent('restart-scheduled', 'two')), []);
  t.match((await exchange(two, null)).toString(), /^pid=\d+ listenpid=ok/);
  t.match(activations(daemon, 'two')[4], { trigger: 'demand' });

  // reload refuses what this version cannot do, saying so (upgrade: activation-upgrade.test.ts)
  const waitFile = join(conf.confDir, 'wait.json');
  writeFileSync(waitFile, JSON.stringify({ listen: 'tcp:127.0.0.1:0', exec: ['/bin/cat'] }));
  const reload = await runCli(['reload', '--control', control]);
  t.same(
    { code: reload.code, stderr: reload.stderr },
    {
      code: 100,
      stderr:
        `${waitFile}: /accept: a reload cannot change accept of a loaded service (remove it in one reload and add it back in the next)\n` +
        'socketeer: fatal: reload refused: 1 problem; the running configuration is unchanged\n',
    },
  );

  // drain: the sockets close, the process gets SIGTERM and is waited for
  const drained = await runCli(['drain', 'two', '--control', control]);
  t.equal(drained.code, 0, drained.stderr);
  const status = await runCli(['status', 'two', '--json', '--control', control]);
  t.match(JSON.parse(status.stdout), {
    services: [{ state: 'stopped', process: { pid: null, phase: 'closed', restarts: 4 } }],
  });
});

t.test('quiesce is never a failure: no restart, no growing delay, however often', async (t) => {
  const conf = makeConfDir({});
  writeFileSync(
    join(conf.confDir, 'again.json'),
    JSON.stringify({
      listen: 'tcp:127.0.0.1:0',
      exec: [python, join(fixtures, 'listen-fds.py')],
      accept: false,
      restart: 'always',
    }),
  );
  const daemon = await DaemonUnderTest.start(conf.confDir);
  t.teardown(async () => {
    await daemon.stop();
    conf.cleanup();
  });
  const control = join(conf.dir, 'control.sock');
  const rounds = 8;
  for (let round = 1; round <= rounds; round++) {
    const got = (await exchange(daemon.tcp('again'), null)).toString();
    t.match(got, /^pid=\d+ listenpid=ok fds=1 names=again fd=3\n$/, `round ${round} answered`);
    const quiesced = await runCli(['quiesce', 'again', '--control', control]);
    t.equal(quiesced.code, 0, quiesced.stderr);
    await daemon.waitForCount(isEvent('end', 'again'), round);
  }
  t.same(daemon.records.filter(isEvent('restart-scheduled', 'again')), [], 'never restarted');
  t.same(
    activations(daemon, 'again').map((r) => r.trigger),
    Array.from({ length: rounds }, () => 'demand'),
    'each start was a connection',
  );
});

/**
 * Six rounds of quiesce and kill with SIGINT on the count-signals fixture: what each of its two
 * processes (the leader and a child in its group) says it got, per round.
 */
async function countStopSignals(t: Test, tracking: 'auto' | 'subreaper'): Promise<string[]> {
  const conf = makeConfDir({});
  writeFileSync(
    join(conf.confDir, 'count.json'),
    JSON.stringify({
      listen: 'tcp:127.0.0.1:0',
      exec: [python, join(fixtures, 'count-signals.py')],
      accept: false,
      start: 'at-start',
      killSignal: 'SIGINT',
    }),
  );
  const control = join(conf.dir, 'control.sock');
  const env = cleanEnv({ SOCKETEER_PROCESS_TRACKING: tracking });
  const daemon = await DaemonUnderTest.start(conf.confDir, ['--control', control], env);
  const clients: Socket[] = [];
  t.teardown(async () => {
    for (const client of clients) client.destroy();
    await daemon.stop();
    conf.cleanup();
  });
  const said = (r: LogRecord, what: string): boolean =>
    isEvent('stderr', 'count')(r) && String(r.line).includes(what);
  for (let round = 0; round < 6; round++) {
    const verb = round % 2 === 0 ? ['quiesce', 'count'] : ['kill', 'count', '--signal', 'SIGINT'];
    await daemon.waitForCount(isEvent('activate', 'count'), round + 1);
    await daemon.waitForCount((r) => said(r, ' spinning'), 2 * (round + 1));
    const done = await runCli([...verb, '--control', control]);
    t.equal(done.code, 0, done.stderr);
    await daemon.waitForCount(isEvent('end', 'count'), round + 1);
    // a quiesce or a clean exit leaves the socket waiting: a connection starts it again
    clients.push(connect(daemon.tcp('count').port, '127.0.0.1').on('error', () => undefined));
  }
  await daemon.waitForCount((r) => said(r, ' deliveries='), 12);
  return daemon.records.filter((r) => said(r, ' deliveries=')).map((r) => String(r.line));
}

t.test('quiesce and kill deliver the stop signal once to each process', async (t) => {
  // A second SIGINT turns lighttpd's graceful stop into an immediate one, which drops the
  // connections it has accepted: the lighttpd quiesce test's lost request (issue 16). The
  // fixture's processes spin on a CPU, so that a second kill would mostly be a delivery of its
  // own (on a busy machine the two may still merge while pending: six rounds, for that).
  const once = Array.from({ length: 6 }, () => [
    'child deliveries=1',
    'leader deliveries=1',
  ]).flat();
  for (const tracking of ['auto', 'subreaper'] as const) {
    const said = await countStopSignals(t, tracking);
    t.same(
      [...said].sort(),
      [...once].sort(),
      `${tracking} tracking: one SIGINT per process, per quiesce and per kill`,
    );
  }
});

t.test('check refuses what cannot work with accept: false and shows the fds', async (t) => {
  const conf = makeConfDir({
    'bad.json': {
      listen: ['tcp:127.0.0.1:1', 'tcp:127.0.0.1:2'],
      exec: ['/bin/cat'],
      accept: false,
      listenerOn: 'stdin',
      stderr: 'socket',
      limits: { instances: 1 },
      access: { allow: ['127.0.0.1'] },
    },
  });
  t.teardown(conf.cleanup);
  const bad = await runCli(['check', '--config-dir', conf.confDir]);
  t.equal(bad.code, 100);
  const file = join(conf.confDir, 'bad.json');
  t.equal(
    bad.stderr,
    [
      `${file}: /limits/instances: cannot work with accept: false (the process accepts its connections itself)`,
      `${file}: /access: cannot work with accept: false (the process accepts its connections itself: socketeer sees no peer to decide on)`,
      `${file}: /stderr: cannot work with accept: false (there is no connection to write it to; use log or null)`,
      `${file}: /listenerOn: cannot work with accept: false (stdin holds one listening socket and listen has 2)`,
      `socketeer: fatal: 4 problems in ${conf.confDir}; nothing was started`,
      '',
    ].join('\n'),
  );
  const good = makeConfDir({
    'web.json': { listen: ['tcp:127.0.0.1:80', 'unix:@web'], exec: ['/bin/cat'], accept: false },
  });
  t.teardown(good.cleanup);
  const shown = await runCli(['check', '--config-dir', good.confDir]);
  t.equal(shown.code, 0, shown.stderr);
  t.same(
    (JSON.parse(shown.stdout) as { services: Record<string, { passes: unknown }> }).services.web
      ?.passes,
    {
      fds: [
        { fd: 3, address: 'tcp:127.0.0.1:80' },
        { fd: 4, address: 'unix:@web' },
      ],
      env: {
        LISTEN_FDS: '2',
        LISTEN_FDNAMES: 'web:web',
        NOTIFY_SOCKET: '@socketeer-notify/<daemon pid>/<random>/web',
      },
    },
  );
  // the fd store: where its fds start, how many; refused where it cannot work
  const store = makeConfDir({
    'keep.json': { listen: 'tcp:127.0.0.1:80', exec: ['/bin/cat'], accept: false, fdStoreMax: 16 },
  });
  t.teardown(store.cleanup);
  const kept = await runCli(['check', '--config-dir', store.confDir]);
  t.equal(kept.code, 0, kept.stderr);
  t.same(
    (JSON.parse(kept.stdout) as { services: Record<string, { passes: { fdStore: unknown } }> })
      .services.keep?.passes.fdStore,
    { max: 16, firstFd: 4 },
  );
  const noStore = makeConfDir({
    'each.json': { listen: 'tcp:127.0.0.1:80', exec: ['/bin/cat'], fdStoreMax: 1 },
    'wait.json': {
      listen: 'tcp:127.0.0.1:81',
      exec: ['/bin/cat'],
      accept: false,
      listenerOn: 'stdin',
      fdStoreMax: 1,
    },
  });
  t.teardown(noStore.cleanup);
  const refused = await runCli(['check', '--config-dir', noStore.confDir]);
  t.equal(refused.code, 100);
  t.equal(
    refused.stderr,
    [
      `${join(noStore.confDir, 'each.json')}: /fdStoreMax: needs accept: false: the fd store keeps fds for the one process of a service that takes its sockets, and handlers per connection have none`,
      `${join(noStore.confDir, 'wait.json')}: /fdStoreMax: cannot work with accept: false (listenerOn stdin passes no LISTEN_FDS to give stored fds back in; use fd3 or fdStoreMax 0)`,
      `socketeer: fatal: 2 problems in ${noStore.confDir}; nothing was started`,
      '',
    ].join('\n'),
  );
});
