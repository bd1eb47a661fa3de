import { existsSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import {
  DaemonUnderTest,
  cleanEnv,
  fixtures,
  isAlive,
  isEvent,
  isRoot,
  makeConfDir,
  runCli,
  withDeadline,
  type LogRecord,
} from '../helpers/daemon.js';
import { findCgroup2Mount, findOwnCgroup } from '../../src/spawn/cgroup.js';
import { parseStat } from '../../src/spawn/proc-scan.js';

const grandchild = join(fixtures, 'spawn-grandchild.sh');
const ignoreTerm = join(fixtures, 'ignore-term.sh');
const rootOnly = isRoot ? false : 'cgroups and process trees of other users need root';

type Client = { socket: Socket; firstLine: Promise<string> };

/** Connects and resolves `firstLine` with the handler's first line (a pid, or `ready`). */
function openClient(target: { host: string; port: number }): Client {
  const socket = connect(target.port, target.host);
  socket.on('error', () => undefined);
  const firstLine = withDeadline(
    new Promise<string>((resolve) => {
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        text += chunk;
        const nl = text.indexOf('\n');
        if (nl !== -1) resolve(text.slice(0, nl));
      });
    }),
    15000,
    'first line',
  );
  return { socket, firstLine };
}

/** Polls /proc until `test` holds; fails the wait after `ms` (a busy 2-core box: generous). */
async function waitUntil(test: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Every pid in `pids` that still runs. */
const survivors = (pids: readonly number[]): number[] => pids.filter((pid) => isAlive(pid));

/** Kills what a failing case left (the fixtures' grandchildren ignore SIGTERM). */
function killLeftovers(pids: readonly number[]): void {
  for (const pid of survivors(pids)) process.kill(pid, 'SIGKILL');
}

const ctl = (control: string, ...args: string[]) => runCli([...args, '--control', control]);

/** Runs control commands side by side; every one must succeed. */
async function ctlAll(t: Test, control: string, commands: string[][]): Promise<void> {
  const results = await Promise.all(commands.map((args) => ctl(control, ...args)));
  t.same(
    results.map((r) => r.code),
    commands.map(() => 0),
    commands.map((c) => c.join(' ')).join(', '),
  );
}

/** One service per verb and grandchild mode: `VERB-MODE`. */
function treeServices(verbs: readonly string[], modes: readonly string[]) {
  const services: Record<string, unknown> = {};
  for (const verb of verbs)
    for (const mode of modes)
      services[`${verb}-${mode}.json`] = {
        listen: 'tcp:127.0.0.1:0',
        exec: [grandchild, mode],
        user: 'root',
        ...(verb === 'runtime' ? { limits: { runtimeMaxSec: 0.5, killGraceSec: 0.5 } } : {}),
      };
  return services;
}

/**
 * Starts one handler per `VERB-MODE` service, returns the grandchildren's pids by service, and
 * checks they all run.
 */
async function startTrees(
  t: Test,
  daemon: DaemonUnderTest,
  names: readonly string[],
  clients: Client[],
): Promise<Map<string, number>> {
  const opened = names.map((name) => openClient(daemon.tcp(name)));
  clients.push(...opened);
  const pids = await Promise.all(opened.map((c) => c.firstLine.then(Number)));
  t.same(survivors(pids), pids, 'every grandchild runs');
  return new Map(names.map((name, i) => [name, pids[i] ?? -1]));
}

function cgroupOf(pid: number): string {
  try {
    return (
      readFileSync(`/proc/${pid}/cgroup`, 'utf8')
        .split('\n')
        .find((l) => l.startsWith('0::')) ?? ''
    );
  } catch {
    return '';
  }
}

function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

/** A daemon on `services` whose handlers' trees the test starts; torn down with them. */
async function startTreeDaemon(
  t: Test,
  services: Record<string, unknown>,
  options: { readonly args?: readonly string[]; readonly env?: NodeJS.ProcessEnv } = {},
): Promise<{ daemon: DaemonUnderTest; control: string; clients: Client[]; all: number[] }> {
  const conf = makeConfDir(services);
  const args = ['--kill-grace', '0.5', ...(options.args ?? [])];
  const daemon = await DaemonUnderTest.start(conf.confDir, args, options.env);
  const clients: Client[] = [];
  const all: number[] = [];
  t.teardown(async () => {
    for (const c of clients) c.socket.destroy();
    await daemon.stop();
    killLeftovers(all);
    conf.cleanup();
  });
  return { daemon, control: join(conf.dir, 'control.sock'), clients, all };
}

const modes = ['stubborn', 'session', 'orphan'];

t.test(
  'cgroups: stop, quiesce, runtimeMaxSec and shutdown end every descendant',
  { skip: rootOnly },
  async (t) => {
    const services = treeServices(['stop', 'quiesce', 'runtime', 'shutdown'], modes);
    const { daemon, control, clients, all } = await startTreeDaemon(t, services);
    const tracking = await daemon.waitForLog(isEvent('process-tracking'));
    if (tracking.mechanism !== 'cgroup') {
      t.comment(`no writable cgroup v2: ${String(tracking.reason)}`);
      return;
    }
    const root = String(tracking.cgroup);
    t.match(root, new RegExp(`/socketeer-${daemon.pid}$`));
    t.equal(tracking.reason, null);

    const names = ['stop', 'quiesce', 'runtime', 'shutdown'].flatMap((v) =>
      modes.map((m) => `${v}-${m}`),
    );
    const pids = await startTrees(t, daemon, names, clients);
    all.push(...pids.values());
    for (const [name, pid] of pids)
      t.match(
        cgroupOf(pid),
        new RegExp(`^0::.*/socketeer-${daemon.pid}/h\\d+$`),
        `${name}: in a handler cgroup`,
      );
    const of = (verb: string) => modes.map((m) => pids.get(`${verb}-${m}`) ?? -1);

    await ctlAll(
      t,
      control,
      modes.map((m) => ['stop', `stop-${m}`]),
    );
    await waitUntil(() => survivors(of('stop')).length === 0, 10000, 'stop: grandchildren gone');
    await ctlAll(
      t,
      control,
      modes.map((m) => ['quiesce', `quiesce-${m}`]),
    );
    await waitUntil(
      () => survivors(of('quiesce')).length === 0,
      10000,
      'quiesce: grandchildren gone',
    );
    await waitUntil(
      () => survivors(of('runtime')).length === 0,
      15000,
      'runtime: grandchildren gone',
    );
    t.pass('stop, quiesce and runtimeMaxSec ended the grandchildren: group, setsid and orphaned');
    t.same(
      survivors(of('shutdown')),
      of('shutdown'),
      'the other services\u2019 grandchildren run on',
    );

    t.equal((await daemon.stop()).code, 0);
    await waitUntil(
      () => survivors(of('shutdown')).length === 0,
      10000,
      'shutdown: grandchildren gone',
    );
    t.equal(existsSync(root), false, 'the daemon removed its cgroups at exit');
  },
);

t.test(
  'cgroups with the portable spawner: the handler is moved once spawned',
  { skip: rootOnly },
  async (t) => {
    const services = treeServices(['stop'], ['session', 'orphan']);
    const args = ['--spawner', 'portable'];
    const { daemon, control, clients, all } = await startTreeDaemon(t, services, { args });
    const tracking = await daemon.waitForLog(isEvent('process-tracking'));
    if (tracking.mechanism !== 'cgroup') {
      t.comment(`no writable cgroup v2: ${String(tracking.reason)}`);
      return;
    }
    const pids = await startTrees(t, daemon, ['stop-session', 'stop-orphan'], clients);
    all.push(...pids.values());
    for (const pid of pids.values()) t.match(cgroupOf(pid), `/socketeer-${daemon.pid}/h`);
    await ctlAll(
      t,
      control,
      [...pids.keys()].map((name) => ['stop', name]),
    );
    await waitUntil(() => survivors(all).length === 0, 10000, 'grandchildren gone');
    t.pass('stop ended them');
  },
);

t.test(
  'subreaper (SOCKETEER_PROCESS_TRACKING=subreaper): stop, quiesce, runtimeMaxSec, shutdown',
  { skip: rootOnly },
  async (t) => {
    // Without cgroups only what is still below the handler (or in its group) when it is signalled
    // is found: `orphan` grandchildren are adopted by the daemon and ended at shutdown.
    const services = {
      ...treeServices(['stop', 'quiesce', 'runtime'], ['stubborn', 'session']),
      ...treeServices(['shutdown'], ['stubborn', 'session', 'orphan']),
    };
    const env = cleanEnv({ SOCKETEER_PROCESS_TRACKING: 'subreaper' });
    const { daemon, control, clients, all } = await startTreeDaemon(t, services, { env });
    t.match(await daemon.waitForLog(isEvent('process-tracking')), {
      mechanism: 'subreaper',
      cgroup: null,
      reason: 'SOCKETEER_PROCESS_TRACKING=subreaper',
    });
    const names = ['stop', 'quiesce', 'runtime'].flatMap((v) => [`${v}-stubborn`, `${v}-session`]);
    const shutdownNames = ['shutdown-stubborn', 'shutdown-session', 'shutdown-orphan'];
    const pids = await startTrees(t, daemon, [...names, ...shutdownNames], clients);
    all.push(...pids.values());
    const pidsOf = (list: string[]) => list.map((n) => pids.get(n) ?? -1);
    const orphan = pids.get('shutdown-orphan') ?? -1;
    await waitUntil(
      () => parentOf(orphan) === daemon.pid,
      10000,
      'the orphan adopted by the daemon',
    );
    t.pass('an orphaned grandchild is adopted by the daemon (child subreaper)');

    await ctlAll(t, control, [
      ['stop', 'stop-stubborn'],
      ['stop', 'stop-session'],
      ['quiesce', 'quiesce-stubborn'],
      ['quiesce', 'quiesce-session'],
    ]);
    await waitUntil(() => survivors(pidsOf(names)).length === 0, 15000, 'grandchildren gone');
    t.pass('stop, quiesce and runtimeMaxSec ended the grandchildren: group and setsid');
    t.same(survivors(pidsOf(shutdownNames)), pidsOf(shutdownNames), 'the others run on');
    t.equal((await daemon.stop()).code, 0);
    await waitUntil(() => survivors(pidsOf(shutdownNames)).length === 0, 10000, 'shutdown: gone');
    t.pass('shutdown ended every descendant, the adopted orphan too');
  },
);

t.test(
  'subreaper: an adopted orphan that dies is reaped, not left a zombie',
  { skip: rootOnly },
  async (t) => {
    const env = cleanEnv({ SOCKETEER_PROCESS_TRACKING: 'subreaper' });
    const services = treeServices(['reap'], ['orphan']);
    const { daemon, clients } = await startTreeDaemon(t, services, { env });
    const pids = await startTrees(t, daemon, ['reap-orphan'], clients);
    const orphan = pids.get('reap-orphan') ?? -1;
    await waitUntil(() => parentOf(orphan) === daemon.pid, 10000, 'the orphan adopted');
    process.kill(orphan, 'SIGKILL');
    await waitUntil(() => !existsSync(`/proc/${orphan}`), 10000, 'the zombie reaped');
    t.pass('reaped');
  },
);

t.test(
  '`end` says forced: true whenever SIGKILL was needed, whatever ended the handler',
  async (t) => {
    const services: Record<string, unknown> = {};
    for (const verb of ['stop', 'quiesce', 'drain', 'shutdown']) {
      services[`${verb}-stubborn.json`] = {
        listen: 'tcp:127.0.0.1:0',
        exec: [ignoreTerm],
        user: 'root',
      };
      services[`${verb}-polite.json`] = {
        listen: 'tcp:127.0.0.1:0',
        exec: ['/bin/sh', '-c', 'echo ready; exec sleep 1000'],
        user: 'root',
      };
    }
    const { daemon, control, clients } = await startTreeDaemon(t, services);
    const names = Object.keys(services).map((f) => f.replace(/\.json$/, ''));
    const opened = names.map((n) => openClient(daemon.tcp(n)));
    clients.push(...opened);
    for (const line of await Promise.all(opened.map((c) => c.firstLine))) t.equal(line, 'ready');
    await ctlAll(
      t,
      control,
      ['stubborn', 'polite'].flatMap((kind) => [
        ['stop', `stop-${kind}`],
        ['quiesce', `quiesce-${kind}`],
        ['drain', `drain-${kind}`, '--timeout', '0'],
      ]),
    );
    await daemon.stop();
    const endOf = (service: string): LogRecord | undefined =>
      daemon.records.find(isEvent('end', service));
    for (const verb of ['stop', 'quiesce', 'drain', 'shutdown']) {
      t.match(
        endOf(`${verb}-stubborn`),
        { signal: 'SIGKILL', forced: true, timedOut: false },
        `${verb}: forced`,
      );
      t.match(
        endOf(`${verb}-polite`),
        { signal: 'SIGTERM', forced: false, timedOut: false },
        `${verb}: not forced`,
      );
    }
  },
);

t.test('killSignal: what stop, quiesce and drain send first, to the whole tree', async (t) => {
  // the handler says which signal reached it, on stderr (logged), and exits 0 on its own
  const trap = [
    '/bin/sh',
    '-c',
    'for s in INT TERM QUIT HUP; do trap "echo got-$s >&2; exit 0" $s; done; echo ready; ' +
      'while :; do sleep 1; done',
  ];
  const services: Record<string, unknown> = {};
  for (const [name, killSignal] of [
    ['int', 'SIGINT'],
    ['quit', 'SIGQUIT'],
    ['hup', 'SIGHUP'],
    ['default', undefined],
  ])
    services[`${name}.json`] = {
      listen: 'tcp:127.0.0.1:0',
      exec: trap,
      user: 'root',
      ...(killSignal === undefined ? {} : { killSignal }),
    };
  const { daemon, control, clients } = await startTreeDaemon(t, services);
  const names = ['int', 'quit', 'hup', 'default'];
  const opened = names.map((n) => openClient(daemon.tcp(n)));
  clients.push(...opened);
  for (const line of await Promise.all(opened.map((c) => c.firstLine))) t.equal(line, 'ready');
  await ctlAll(t, control, [
    ['quiesce', 'int'],
    ['stop', 'quit'],
    ['drain', 'hup', '--timeout', '0'],
    ['quiesce', 'default'],
  ]);
  for (const [name, got] of [
    ['int', 'got-INT'],
    ['quit', 'got-QUIT'],
    ['hup', 'got-HUP'],
    ['default', 'got-TERM'],
  ] as const) {
    t.match(
      await daemon.waitForLog(isEvent('end', name)),
      { exitCode: 0, signal: null, forced: false },
      `${name}: ended by itself`,
    );
    // the shell may first report its `sleep` ended by the same signal (Quit, Terminated)
    const lines = daemon.records.filter(isEvent('stderr', name)).map((r) => r.line);
    t.ok(lines.includes(got), `${name}: ${got} (${lines.join(', ')})`);
    t.notOk(
      lines.some((l) => typeof l === 'string' && l.startsWith('got-') && l !== got),
      `${name}: no other signal first`,
    );
  }
});

t.test(
  'where the cgroup v2 hierarchy and the daemon\u2019s cgroup are (pure parsers)',
  async (t) => {
    const hybrid = [
      '30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
      '39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
      '40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
    ].join('\n');
    t.equal(findCgroup2Mount(hybrid), '/sys/fs/cgroup/unified');
    t.equal(
      findCgroup2Mount('29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw\n'),
      '/sys/fs/cgroup',
    );
    t.equal(findCgroup2Mount('1 0 0:1 / /my\\040cg rw - cgroup2 none rw'), '/my cg');
    t.equal(findCgroup2Mount('30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw'), null);
    t.equal(
      findOwnCgroup('4:memory:/x\n0::/system.slice/socketeer.service\n'),
      '/system.slice/socketeer.service',
    );
    t.equal(findOwnCgroup('0::/\n'), '/');
    t.equal(findOwnCgroup('4:memory:/x\n'), null);
    const stat = '1234 (a) b) c) S 1 1234 1234 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0';
    t.same(parseStat(stat), { state: 'S', ppid: 1, pgrp: 1234, session: 1234, startTicks: 98765 });
    t.equal(parseStat('garbage'), null);
  },
);
