import t from 'tap';
import { parseListenAddress } from '../../src/config/listen-address.js';
import { resolveActivation } from '../../src/config/resolve-activation.js';
import type { RestartPolicy, ServiceFile, ServiceSpec } from '../../src/config/types.js';
import { validateServiceFile } from '../../src/config/validate.js';
import { processPeer } from '../../src/connection/activation-carry.js';
import { decideAfterExit } from '../../src/connection/activation-policy.js';
import { ActivationServer } from '../../src/connection/activation-server.js';
import { resolveService } from '../../src/config/resolve.js';
import { systemResolveContext } from '../../src/config/load.js';
import type { SocketHolder } from '../../src/listen/hold.js';
import type { EventLog, LogFields } from '../../src/log/events.js';
import type { Spawner } from '../../src/model/spawn.js';
import { findActivationConflicts } from '../../src/daemon/reload-activation.js';
import type { HandlerOutcome } from '../../src/model/spawn.js';
import { buildActivationEnv, describePassedFds } from '../../src/spawn/activation-env.js';

function fileOf(json: Record<string, unknown>): ServiceFile {
  const result = validateServiceFile('web.json', { exec: ['/bin/true'], ...json });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.value;
}

function listenOf(value: ServiceFile) {
  const list = typeof value.listen === 'string' ? [value.listen] : value.listen;
  return list.map((a) => {
    const parsed = parseListenAddress(a);
    if (!parsed.ok) throw new Error(a);
    return parsed.address;
  });
}

const resolve = (json: Record<string, unknown>) => {
  const value = fileOf(json);
  return resolveActivation('web', value, listenOf(value));
};

t.test('accept: false takes the activation keys, with their defaults', async (t) => {
  t.same(resolve({ listen: 'tcp:80', accept: false }), {
    activation: {
      listenerOn: 'fd3',
      start: 'on-demand',
      restart: 'on-failure',
      fdName: 'web',
      fdStoreMax: 0,
    },
    problems: [],
  });
  const set = {
    listenerOn: 'stdin',
    start: 'at-start',
    restart: 'always',
    fdName: 'http',
    fdStoreMax: 0,
  };
  t.same(resolve({ listen: 'tcp:80', accept: false, ...set }).activation, set);
  t.equal(resolve({ listen: 'tcp:80' }).activation, null);
});

t.test('accept: false refuses what cannot work, each with its pointer', async (t) => {
  const { problems } = resolve({
    listen: ['tcp:80', 'unix:/run/a.sock'],
    accept: false,
    listenerOn: 'stdin',
    stderr: 'socket',
    access: { allow: ['10.0.0.0/8'] },
    limits: {
      instances: 2,
      perSource: 1,
      rate: { perSecond: 1, burst: 1 },
      perSourceRate: { perSecond: 1, burst: 1 },
      maxLoad: 3,
      runtimeMaxSec: 10,
      onLimit: 'queue',
      queueSize: 4,
      queueTimeoutSec: 5,
    },
  });
  const accepts = 'cannot work with accept: false (the process accepts its connections itself)';
  t.same(problems, [
    ...['instances', 'perSource', 'rate', 'perSourceRate', 'maxLoad', 'runtimeMaxSec'].map(
      (key) => ({ pointer: `/limits/${key}`, message: accepts, severity: 'error' }),
    ),
    ...['onLimit', 'queueSize', 'queueTimeoutSec'].map((key) => ({
      pointer: `/limits/${key}`,
      message: accepts,
      severity: 'error',
    })),
    {
      pointer: '/access',
      message:
        'cannot work with accept: false (the process accepts its connections itself: socketeer sees no peer to decide on)',
      severity: 'error',
    },
    {
      pointer: '/stderr',
      message:
        'cannot work with accept: false (there is no connection to write it to; use log or null)',
      severity: 'error',
    },
    {
      pointer: '/listenerOn',
      message: 'cannot work with accept: false (stdin holds one listening socket and listen has 2)',
      severity: 'error',
    },
  ]);
  t.same(resolve({ listen: 'tcp:80', accept: false, listenerOn: 'stdin' }).problems, []);
  const killGrace = { listen: 'tcp:80', accept: false, limits: { killGraceSec: 1 } };
  t.same(resolve(killGrace).problems, []);
});

t.test('the activation keys warn when the service accepts (accept: true)', async (t) => {
  const set = { listenerOn: 'stdin', start: 'at-start', restart: 'no', fdName: 'x' };
  const message = 'has no effect: the service accepts its connections (accept: true)';
  t.same(
    resolve({ listen: 'tcp:80', ...set }).problems,
    ['listenerOn', 'start', 'restart', 'fdName'].map((key) => ({
      pointer: `/${key}`,
      message,
      severity: 'warning',
    })),
  );
  t.same(resolve({ listen: 'tcp:80', restart: 'on-failure' }).problems, []);
});

t.test('fdName is a name without a colon', async (t) => {
  const result = validateServiceFile('web.json', {
    listen: 'tcp:80',
    exec: ['/bin/true'],
    fdName: 'a:b',
  });
  t.equal(result.ok, false);
});

const service = (json: Record<string, unknown>) => {
  const value = fileOf(json);
  const listen = listenOf(value);
  const { activation } = resolveActivation('web', value, listen);
  return { name: 'web', listen, activation, baseEnv: { PATH: '/bin', LISTEN_FDS: '9' } };
};

t.test(
  'the passed fds: fd 3 onward in listen order, or the one socket on fd 0 and 1',
  async (t) => {
    const two = service({ listen: ['tcp:127.0.0.1:80', 'unix:@web'], accept: false, fdName: 'h' });
    t.same(describePassedFds(two), {
      fds: [
        { fd: 3, address: 'tcp:127.0.0.1:80' },
        { fd: 4, address: 'unix:@web' },
      ],
      env: {
        LISTEN_FDS: '2',
        LISTEN_FDNAMES: 'h:h',
        NOTIFY_SOCKET: '@socketeer-notify/<daemon pid>/<random>/web',
      },
    });
    t.same(buildActivationEnv(two, { notifySocket: '@n' }), [
      'PATH=/bin',
      'SOCKETEER_SERVICE=web',
      'LISTEN_FDS=2',
      'LISTEN_FDNAMES=h:h',
      'NOTIFY_SOCKET=@n',
    ]);
    // at a start: the addresses as bound, then the stored fds, counted and named
    const run = { addresses: ['tcp:127.0.0.1:8080', 'unix:@web'], stored: ['conn', 'state'] };
    t.same(describePassedFds(two, { ...run, notifySocket: '@n' }), {
      fds: [
        { fd: 3, address: 'tcp:127.0.0.1:8080' },
        { fd: 4, address: 'unix:@web' },
        { fd: 5, address: 'stored:conn' },
        { fd: 6, address: 'stored:state' },
      ],
      env: { LISTEN_FDS: '4', LISTEN_FDNAMES: 'h:h:conn:state', NOTIFY_SOCKET: '@n' },
    });
    const stdin = service({ listen: 'tcp:127.0.0.1:80', accept: false, listenerOn: 'stdin' });
    t.same(describePassedFds(stdin), {
      fds: [
        { fd: 0, address: 'tcp:127.0.0.1:80' },
        { fd: 1, address: 'tcp:127.0.0.1:80' },
      ],
      env: { NOTIFY_SOCKET: '@socketeer-notify/<daemon pid>/<random>/web' },
    });
    t.same(buildActivationEnv(stdin, { notifySocket: '@n' }), [
      'PATH=/bin',
      'LISTEN_FDS=9',
      'SOCKETEER_SERVICE=web',
      'NOTIFY_SOCKET=@n',
    ]);
  },
);

t.test(
  'after an exit: restart per policy, after a delay that grows on failures and heals',
  async (t) => {
    const exit = (exitCode: number | null, signal: NodeJS.Signals | null = null) =>
      ({ kind: 'exit', exitCode, signal }) as const;
    const failed = { kind: 'spawn-failed', error: { code: 'ENOENT', message: 'x' } } as const;
    const after = (
      restart: RestartPolicy,
      outcome: HandlerOutcome,
      uptimeMs: number,
      previousDelayMs: number | null,
      isRequested = false,
    ) => decideAfterExit({ restart, outcome, uptimeMs, previousDelayMs, isRequested });
    t.same(after('on-failure', exit(1), 50, null), { next: 'restart', delayMs: 100 });
    t.same(after('on-failure', exit(1), 50, 100), { next: 'restart', delayMs: 200 });
    t.same(after('on-failure', exit(0), 50, null), { next: 'demand', delayMs: 100 });
    t.same(
      after('on-failure', exit(0), 50, 6400),
      { next: 'demand', delayMs: 100 },
      'clean: heals',
    );
    t.same(after('on-failure', exit(null, 'SIGTERM'), 50, 100), { next: 'demand', delayMs: 100 });
    t.same(after('on-failure', exit(null, 'SIGKILL'), 50, null).next, 'restart');
    t.same(after('on-failure', failed, 0, null).next, 'restart');
    t.same(after('always', exit(0), 20_000, 6400), { next: 'restart', delayMs: 100 });
    t.same(after('no', exit(1), 50, 400), { next: 'demand', delayMs: 800 });
    t.same(after('no', failed, 50, 25_600), { next: 'demand', delayMs: 30_000 });
    t.same(after('always', exit(1), 9_999, 30_000).delayMs, 30_000);
    t.same(after('always', exit(1), 10_000, 30_000).delayMs, 100);
    // an end the daemon asked for (quiesce, stop, drain): the next connection starts it, at once
    // and however often it happens, even when SIGKILL was needed
    t.same(after('always', exit(null, 'SIGTERM'), 50, 6400, true), {
      next: 'demand',
      delayMs: 100,
    });
    t.same(after('on-failure', exit(null, 'SIGKILL'), 50, 3200, true), {
      next: 'demand',
      delayMs: 100,
    });
  },
);

t.test(
  'a reload cannot change accept, nor the addresses of a bound accept: false service',
  async (t) => {
    const spec = (json: Record<string, unknown>) =>
      ({ ...service(json), file: '/c/web.json' }) as unknown as ServiceSpec;
    const held = spec({ listen: 'tcp:1', accept: false });
    t.same(findActivationConflicts([held], [spec({ listen: 'tcp:1' })], new Set()), [
      '/c/web.json: /accept: a reload cannot change accept of a loaded service (remove it in one reload and add it back in the next)',
    ]);
    const moved = spec({ listen: 'tcp:2', accept: false });
    t.same(findActivationConflicts([held], [moved], new Set()), [
      '/c/web.json: /listen: a reload cannot change the addresses of a bound accept: false service (stop it, reload, start it)',
    ]);
    t.same(findActivationConflicts([held], [moved], new Set(['web'])), []);
    const restarted = spec({ listen: 'tcp:1', accept: false, restart: 'always' });
    t.same(findActivationConflicts([held], [restarted], new Set()), []);
  },
);

t.test(
  'a carried process is adopted: no start, its counters go on, its end applies the policy',
  async (t) => {
    const specOf = (json: Record<string, unknown>): ServiceSpec => {
      const resolved = resolveService('web', '/c/web.json', fileOf(json), systemResolveContext());
      if (!resolved.ok) throw new Error(JSON.stringify(resolved.problems));
      return resolved.spec;
    };
    const records: { event: string; fields: LogFields }[] = [];
    const log: EventLog = {
      log: (_level, event, fields = {}) => void records.push({ event, fields }),
      child: () => log,
    };
    const watched: number[] = [];
    const holder: SocketHolder = {
      watchReadable: (fd) => void watched.push(fd),
      unwatchReadable: () => undefined,
      dupFd: () => -1,
      closeFd: () => undefined,
      notifyOpen: () => -1,
      notifyReceive: () => null,
      datagramPort: () => -1,
    };
    const spawned: number[] = [];
    const spawner: Spawner = {
      name: 'native',
      unsupported: () => [],
      spawn: () => {
        spawned.push(spawned.length);
        return { pid: 4_000_100 + spawned.length, stderr: null, outcome: new Promise(() => {}) };
      },
    };
    let clock = 10_000;
    const serverFor = (spec: ServiceSpec) => {
      const server = new ActivationServer(
        {
          spec: () => spec,
          spawner,
          holder,
          log,
          now: () => 1_700_000_000_000,
          clock: () => clock,
        },
        spec.activation ?? resolve({ listen: 'tcp:1', accept: false }).activation!,
      );
      let end: (outcome: HandlerOutcome) => void = () => undefined;
      const outcome = new Promise<HandlerOutcome>((resolve) => (end = resolve));
      const handler = { conn: 'process', pid: 4_000_001, peer: processPeer, startedAt: 5, outcome };
      server.adopt({
        starts: 3,
        lastExit: null,
        delayMs: 400,
        handler,
        uptimeMs: 5000,
        stderr: null,
        notify: null,
        stored: [],
      });
      server.hold([{ fd: 7, bound: 'tcp:127.0.0.1:1' }]);
      return { server, end };
    };
    const until = async (test: () => boolean): Promise<void> => {
      for (let i = 0; i < 200 && !test(); i++) await new Promise((r) => setTimeout(r, 10));
    };
    const unknownExit = { kind: 'exit', exitCode: null, signal: null } as const;

    // on-failure (and start: at-start): nothing starts while it runs; its end arms the socket
    const onFailure = serverFor(specOf({ listen: 'tcp:1', accept: false, start: 'at-start' }));
    t.same([spawned, watched], [[], []], 'no second process, no watch while it runs');
    t.match(onFailure.server.status(), {
      pid: 4_000_001,
      restarts: 2,
      uptimeSec: 5,
      phase: 'running',
    });
    clock += 1000;
    t.same(onFailure.server.carry(), {
      state: {
        running: { pid: 4_000_001, startedAt: 5, uptimeMs: 6000 },
        starts: 3,
        lastExit: null,
        delayMs: 400,
        notifyAddress: null,
      },
      fds: [],
    });
    onFailure.end(unknownExit);
    await until(() => watched.length > 0);
    t.same(watched, [7], 'an unknown exit is no failure: the next connection starts it');
    t.match(records.find((r) => r.event === 'end')?.fields, { pid: 4_000_001, exitCode: null });
    t.same(spawned, []);

    // always: started again by itself, as the daemon's own child from then on
    const always = serverFor(specOf({ listen: 'tcp:1', accept: false, restart: 'always' }));
    always.end(unknownExit);
    await until(() => spawned.length > 0);
    t.match(records.find((r) => r.event === 'activate')?.fields, { trigger: 'restart' });
    t.match(always.server.status(), { pid: 4_000_101, restarts: 3 });

    // a take-over that fails gives it back: no longer ours, never signalled from here
    const failed = serverFor(specOf({ listen: 'tcp:1', accept: false }));
    failed.server.disown();
    t.same([...failed.server.handlers.keys()], []);
    t.equal(failed.server.status().pid, null);
  },
);
