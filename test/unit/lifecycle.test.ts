import t from 'tap';
import { formatAge, formatStatus } from '../../src/commands/status.js';
import { parseKillTarget, parseSignal } from '../../src/commands/control-verbs.js';
import type { ListenAddress, ServiceSpec, SocketSpec } from '../../src/config/types.js';
import {
  assignInheritedFds,
  formatFdName,
  readListenFds,
} from '../../src/handover/inherited-fds.js';
import { parseProcStat } from '../../src/handover/inherited-handlers.js';
import { isSameValue, planReload, type CurrentListener } from '../../src/daemon/reload-plan.js';
import { describeService } from '../../src/daemon/state.js';
import { parseListenAddress } from '../../src/config/listen-address.js';

const socket: SocketSpec = {
  mode: 0o666,
  uid: null,
  gid: null,
  backlog: 511,
  noDelay: false,
  keepAlive: false,
  proxyHeader: null,
};

function address(text: string): ListenAddress {
  const parsed = parseListenAddress(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.address;
}

/** Just the fields the plan reads; `exec` stands for the rest of a definition. */
function spec(name: string, listen: string[], more: Partial<SocketSpec> & { exec?: string } = {}) {
  const { exec = 'cat', ...options } = more;
  return {
    name,
    listen: listen.map(address),
    socket: { ...socket, ...options },
    exec: { file: exec, argv: [exec] },
  } as unknown as ServiceSpec;
}

/** The listeners a set of running definitions has bound. */
function boundOf(specs: ServiceSpec[]): CurrentListener[] {
  return specs.flatMap((s) =>
    s.listen.map((a, index) => ({ service: s.name, index, address: a, socket: s.socket })),
  );
}

t.test('planReload', async (t) => {
  const current = [
    spec('same', ['tcp:127.0.0.1:1']),
    spec('exec', ['tcp:127.0.0.1:2']),
    spec('mode', ['unix:/run/m.sock']),
    spec('gone', ['tcp:127.0.0.1:4']),
    spec('moved', ['tcp:127.0.0.1:5', 'tcp:127.0.0.1:6']),
    spec('off', ['tcp:127.0.0.1:7']),
  ];
  const next = [
    spec('same', ['tcp:127.0.0.1:1']),
    spec('exec', ['tcp:127.0.0.1:2'], { exec: 'sh' }),
    spec('mode', ['unix:/run/m.sock'], { mode: 0o600 }),
    spec('moved', ['tcp:127.0.0.1:6', 'tcp:127.0.0.1:8']),
    spec('new', ['tcp:127.0.0.1:4']),
    spec('off', ['tcp:127.0.0.1:7'], { exec: 'sh' }),
  ];
  const listeners = boundOf(current).filter((l) => l.service !== 'off');
  const plan = planReload({ current, listeners, next, unbound: new Set(['off']) });
  t.same(plan.unchanged, ['same']);
  t.same(plan.changed, ['exec', 'mode', 'moved', 'off']);
  t.same(plan.added, ['new']);
  t.same(plan.removed, ['gone']);
  const describe = plan.steps.map((s) =>
    s.kind === 'keep' || s.kind === 'retune'
      ? `${s.kind} ${s.service} #${s.listener.index}`
      : `${s.kind} ${s.service} ${JSON.stringify(s.address)}${
          s.kind === 'rebind' ? ` after ${s.replaces.map((r) => r.service).join()}` : ''
        }`,
  );
  t.same(describe, [
    'keep same #0',
    'keep exec #0',
    'retune mode #0',
    'keep moved #1',
    'bind moved {"kind":"tcp","host":"127.0.0.1","port":8}',
    'rebind new {"kind":"tcp","host":"127.0.0.1","port":4} after gone',
  ]);
  t.same(
    plan.close.map((l) => `${l.service} #${l.index}`),
    ['gone #0', 'moved #0'],
  );
});

t.test('planReload: socket options that do not apply to a kind do not rebind it', async (t) => {
  const current = [spec('tcp', ['tcp:127.0.0.1:1']), spec('abs', ['unix:@a'])];
  const next = [
    spec('tcp', ['tcp:127.0.0.1:1'], { mode: 0o600, uid: 5 }),
    spec('abs', ['unix:@a'], { noDelay: true }),
  ];
  const plan = planReload({ current, listeners: boundOf(current), next, unbound: new Set() });
  t.same(
    plan.steps.map((s) => s.kind),
    ['keep', 'keep'],
  );
  const backlog = planReload({
    current,
    listeners: boundOf(current),
    next: [spec('tcp', ['tcp:127.0.0.1:1'], { backlog: 5 })],
    unbound: new Set(),
  });
  t.same(
    backlog.steps.map((s) => s.kind),
    ['rebind'],
  );
  t.same(backlog.removed, ['abs']);
  const unix = [spec('u', ['unix:/run/u.sock'])];
  const retuned = (changes: Parameters<typeof spec>[2]) =>
    planReload({
      current: unix,
      listeners: boundOf(unix),
      next: [spec('u', ['unix:/run/u.sock'], changes)],
      unbound: new Set(),
    }).steps.map((s) => s.kind);
  t.same(retuned({ mode: 0o600, uid: 5, gid: 6 }), ['retune'], 'owner and mode: in place');
  t.same(retuned({ mode: 0o600, backlog: 5 }), ['rebind'], 'with the backlog: bound again');
});

t.test('isSameValue: a definition compared as JSON with sorted keys would be', async (t) => {
  const same = (a: unknown, b: unknown): [boolean, boolean] => [
    isSameValue(a, b),
    isSameValue(b, a),
  ];
  t.same(same({ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 }), [true, true], 'key order does not count');
  t.same(same({ a: 1, u: undefined }, { a: 1 }), [true, true], 'an undefined key is absent');
  t.same(same({ a: 1, f: () => 1 }, { a: 1 }), [true, true], 'so is a function');
  t.same(same({ a: null }, { a: undefined }), [false, false], 'null is a value');
  t.same(same({ a: 1 }, { a: 1, b: 2 }), [false, false]);
  t.same(same({ a: 1, b: 2 }, { a: 1, c: 2 }), [false, false]);
  t.same(same([1, 2], [2, 1]), [false, false], 'arrays in order');
  t.same(same([1], { 0: 1 }), [false, false]);
  t.same(same(10n, 10n), [true, true], 'bigints by value');
  t.same(same(10n, 11n), [false, false]);
  t.same(same(new Set([1n, 2n]), new Set([1n, 2n])), [true, true], 'sets by value');
  t.same(same(new Set([1]), new Set([1, 2])), [false, false]);
  t.same(same(new Map([[1n, { a: 1 }]]), new Map([[1n, { a: 1 }]])), [true, true], 'maps too');
  t.same(same(new Map([[1n, { a: 1 }]]), new Map([[1n, { a: 2 }]])), [false, false]);
  t.same(same(new Set([1]), [1]), [false, false]);
  t.same(same('1', 1), [false, false]);
  t.same(same(null, {}), [false, false]);
  t.same(same({ x: { y: { z: [1, { w: 'v' }] } } }, { x: { y: { z: [1, { w: 'v' }] } } }), [
    true,
    true,
  ]);
});

t.test('planReload: many services, one changed, each keeps its own listeners', async (t) => {
  const names = Array.from({ length: 200 }, (_, i) => `s${i}`);
  const current = names.map((n, i) => spec(n, [`tcp:127.0.0.1:${1000 + i}`]));
  const next = names.map((n, i) =>
    spec(n, [`tcp:127.0.0.1:${1000 + i}`], n === 's7' ? { exec: 'sh' } : {}),
  );
  const listeners = boundOf(current);
  const plan = planReload({ current, listeners, next, unbound: new Set() });
  t.same(plan.changed, ['s7']);
  t.equal(plan.unchanged.length, 199);
  t.same(plan.close, []);
  t.ok(plan.steps.every((s, i) => s.kind === 'keep' && s.listener === listeners[i]));
});

t.test('LISTEN_FDS: read, named, assigned', async (t) => {
  t.same(readListenFds({}, 10), { fds: [], problem: null });
  t.same(readListenFds({ LISTEN_FDS: '2', LISTEN_PID: '9' }, 10), {
    fds: [],
    problem: 'LISTEN_PID=9 is not this process (10)',
  });
  t.same(readListenFds({ LISTEN_FDS: 'x' }, 10).problem, 'LISTEN_FDS=x is not a count');
  t.same(readListenFds({ LISTEN_FDS: '3', LISTEN_PID: '10', LISTEN_FDNAMES: 'a:b' }, 10), {
    fds: [
      { fd: 3, name: 'a' },
      { fd: 4, name: 'b' },
      { fd: 5, name: '' },
    ],
    problem: null,
  });
  t.equal(formatFdName('web:8%', 1), 'web%3A8%25/1');
  const services = [
    spec('web:8%', ['tcp:127.0.0.1:1', 'tcp:127.0.0.1:2']),
    spec('two', ['tcp:127.0.0.1:3', 'tcp:127.0.0.1:4']),
  ];
  const assigned = assignInheritedFds(services, [
    { fd: 3, name: formatFdName('web:8%', 1) },
    { fd: 4, name: 'two' },
    { fd: 5, name: 'two' },
    { fd: 6, name: 'two' },
    { fd: 7, name: 'nope' },
    { fd: 8, name: 'web%3A8%25/1' },
  ]);
  t.same([...(assigned.byService.get('web:8%') ?? [])], [[1, 3]]);
  t.same(
    [...(assigned.byService.get('two') ?? [])],
    [
      [0, 4],
      [1, 5],
    ],
  );
  t.same(assigned.unused, [
    { fd: 6, name: 'two', reason: 'two has no address #2' },
    { fd: 7, name: 'nope', reason: 'no enabled service named nope' },
    { fd: 8, name: 'web%3A8%25/1', reason: 'web:8% address #1 already has fd 3' },
  ]);
});

t.test('kill targets and signal names', async (t) => {
  t.same(parseKillTarget('echo'), { service: 'echo', instance: null });
  t.same(parseKillTarget('echo@3-127.0.0.1:7-127.0.0.1:5'), {
    service: 'echo',
    instance: '3-127.0.0.1:7-127.0.0.1:5',
  });
  t.same(parseKillTarget('web@8080'), { service: 'web@8080', instance: null });
  t.same(parseKillTarget('web@8080@12-40-1000'), { service: 'web@8080', instance: '12-40-1000' });
  t.equal(parseSignal('term'), 'SIGTERM');
  t.equal(parseSignal('SIGKILL'), 'SIGKILL');
  t.equal(parseSignal('9'), 'SIGKILL');
  t.equal(parseSignal('NOPE'), null);
  t.equal(parseSignal('999'), null);
});

t.test('/proc/PID/stat', async (t) => {
  const line = '42 (a (weird) name) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 0 0';
  t.same(parseProcStat(line), { state: 'S', startTicks: 123456 });
  t.equal(parseProcStat('garbage'), null);
});

t.test('status: rows and the text form', async (t) => {
  const started = Date.parse('2026-01-01T00:00:00Z');
  const service = describeService(
    {
      name: 'echo',
      state: 'running',
      listeners: ['tcp:127.0.0.1:7'],
      accepted: 9,
      spawnFailed: 1,
      refused: { rate: 2, instances: 0, denied: 1 },
      handlers: [
        {
          conn: '9-127.0.0.1:7-127.0.0.1:50',
          pid: 300,
          startedAt: started + 2000,
          peer: {
            kind: 'tcp',
            localAddress: '127.0.0.1',
            localPort: 7,
            remoteAddress: '127.0.0.1',
            remotePort: 50,
          },
        },
        {
          conn: '8-42-1000',
          pid: 200,
          startedAt: started,
          peer: { kind: 'unix', localPath: '/s', pid: 42, uid: 1000, gid: 1000 },
        },
      ],
      isInherited: (conn) => conn === '8-42-1000',
    },
    started + 65000,
  );
  t.same(service.counters, {
    accepted: 9,
    refused: { rate: 2, denied: 1 },
    active: 2,
    spawnFailed: 1,
  });
  t.same(
    service.connections.map((c) => [c.instance, c.pid, c.peer, c.ageSec, c.inherited]),
    [
      ['8-42-1000', 200, 'uid 1000 pid 42', 65, true],
      ['9-127.0.0.1:7-127.0.0.1:50', 300, '127.0.0.1:50', 63, false],
    ],
  );
  const text = formatStatus({
    pid: 7,
    startedAt: '2026-01-01T00:00:00.000Z',
    configDir: '/etc/socketeer/conf.d',
    services: [service],
  });
  t.equal(
    text,
    [
      'socketeer pid 7, up since 2026-01-01T00:00:00.000Z, /etc/socketeer/conf.d',
      '',
      'SERVICE  STATE    ACTIVE  ACCEPTED  REFUSED               SPAWN-FAILED  LISTENERS',
      'echo     running  2       9         3 (rate 2, denied 1)  1             tcp:127.0.0.1:7',
      '',
      'echo: 2 connections',
      '  INSTANCE                    PID   PEER             AGE',
      '  8-42-1000                   200*  uid 1000 pid 42  1m05s',
      '  9-127.0.0.1:7-127.0.0.1:50  300   127.0.0.1:50     1m03s',
      '  * started by the process this daemon took over from',
      '',
    ].join('\n'),
  );
  t.same([0.04, 59.96, 60, 3599, 3600, 86399, 90061].map(formatAge), [
    '0.0s',
    '1m00s',
    '1m00s',
    '59m59s',
    '1h00m',
    '23h59m',
    '1d01h',
  ]);
});
