import t from 'tap';
import {
  admitConnection,
  admitOpen,
  isOpenPolicy,
  commitAdmission,
  traceAdmission,
  type AdmitDecision,
  type AdmitInput,
} from '../../src/connection/admit.js';
import { explainDecision } from '../../src/connection/explain.js';
import type { AccessSettings } from '../../src/access/rules.js';
import {
  resolvePolicy,
  type AdmitPolicy,
  type PolicySettings,
} from '../../src/config/resolve-policy.js';
import type { Peer } from '../../src/model/peer.js';
import { createConnectionTable, type ConnectionTable } from '../../src/limits/connection-table.js';
import { createRateState, type RateState } from '../../src/limits/rate-state.js';
import type { LimitsSettings } from '../../src/limits/settings.js';

interface Harness {
  table: ConnectionTable;
  rates: RateState;
  input(over?: Partial<AdmitInput>): AdmitInput;
  /** Decides at `now` and stores the charge, as the daemon does. */
  connect(address: string, now: number, over?: Partial<AdmitInput>): AdmitDecision;
}

/** The policy as the daemon compiles it (no listener: no listener-kind warnings). */
function compilePolicy(settings: PolicySettings): { policy: AdmitPolicy; problems: unknown[] } {
  const { admitPolicy, problems } = resolvePolicy('svc.json', settings, []);
  return { policy: admitPolicy, problems };
}

function tcp(address: string): Peer {
  return { kind: 'tcp', localAddress: '', localPort: 0, remoteAddress: address, remotePort: 0 };
}

function unix(uid: number | null, gid: number | null): Peer {
  return { kind: 'unix', localPath: '', pid: null, uid, gid };
}

function setUp(limits: LimitsSettings, access: AccessSettings = {}): Harness {
  const { policy, problems } = compilePolicy({ limits, access });
  if (problems.length > 0) throw new Error(JSON.stringify(problems));
  const table = createConnectionTable();
  const rates = createRateState();
  const input = (over: Partial<AdmitInput> = {}): AdmitInput => ({
    service: 'svc',
    policy,
    peer: tcp('127.0.0.1'),
    connections: table,
    rates,
    globalMax: null,
    loadAverage1: 0.5,
    now: 0,
    minuteOfDay: 600,
    queueLength: 0,
    ...over,
  });
  const connect = (address: string, now: number, over: Partial<AdmitInput> = {}): AdmitDecision => {
    const decision = admitConnection(input({ peer: tcp(address), now, ...over }));
    commitAdmission(rates, decision);
    return decision;
  };
  return { table, rates, input, connect };
}

const summary = (d: AdmitDecision): string =>
  d.kind === 'admit' ? 'admit' : `${d.kind} ${d.reason}: ${d.detail}`;

t.test('checks run in order: access, time, load, rate, instances', (t) => {
  const h = setUp(
    { instances: 1, maxLoad: 2, rate: { perSecond: 1, burst: 1 } },
    { deny: ['10.0.0.0/8'], times: ['09:00-17:00'] },
  );
  h.table.add('svc', '192.0.2.1');
  h.rates.service = { tokens: 0, updatedAt: 0 };
  const worst = { loadAverage1: 3, minuteOfDay: 1200, now: 0 };
  const steps: [Partial<AdmitInput>, string, number][] = [
    [
      { ...worst, peer: tcp('10.1.2.3') },
      'refuse denied: access: deny 10.0.0.0/8 in access.deny',
      1,
    ],
    [worst, 'refuse time: access.times: outside 09:00-17:00 at 20:00', 2],
    [{ ...worst, minuteOfDay: 600 }, 'refuse load: limits.maxLoad: load 3 > 2', 3],
    [
      { ...worst, minuteOfDay: 600, loadAverage1: 2 },
      'refuse rate: limits.rate: 0 of 1 tokens, next in 1000 ms',
      4,
    ],
    [
      { ...worst, minuteOfDay: 600, loadAverage1: 2, now: 1000 },
      'refuse instances: limits.instances: 1 of 1 running (full)',
      6,
    ],
  ];
  for (const [over, expected, checkCount] of steps) {
    const trace = traceAdmission(h.input(over));
    t.equal(summary(trace.decision), expected);
    t.equal(trace.checks.length, checkCount, `${checkCount} checks ran`);
  }
  h.table.remove('svc', '192.0.2.1');
  const admitted = admitConnection(h.input({ minuteOfDay: 600, loadAverage1: 2, now: 1000 }));
  t.equal(summary(admitted), 'admit');
  t.end();
});

t.test('tokens are charged only when admitted', (t) => {
  const h = setUp({ instances: 1, rate: { perSecond: 1, burst: 1 } }, { deny: ['10.0.0.0/8'] });
  for (let i = 0; i < 50; i += 1) {
    t.equal(h.connect('10.9.9.9', 0).kind, 'refuse');
  }
  t.equal(h.rates.service, undefined, 'denied peers take no token');
  h.table.add('svc', '127.0.0.2');
  for (let i = 0; i < 50; i += 1) {
    t.equal(
      summary(h.connect('127.0.0.1', 0)),
      'refuse instances: limits.instances: 1 of 1 running (full)',
    );
  }
  t.equal(h.rates.service, undefined, 'refused by instances: no token');
  h.table.remove('svc', '127.0.0.2');
  t.equal(summary(h.connect('127.0.0.1', 0)), 'admit');
  t.strictSame(h.rates.service, { tokens: 0, updatedAt: 0 });
  t.equal(
    summary(h.connect('127.0.0.1', 999)),
    'refuse rate: limits.rate: 0.999 of 1 tokens, next in 1 ms',
  );
  t.equal(summary(h.connect('127.0.0.1', 1000)), 'admit', 'heals by itself, no restart');
  t.end();
});

t.test('a source over its rate is refused alone and costs the service nothing', (t) => {
  const h = setUp({
    rate: { perSecond: 10, burst: 10 },
    perSourceRate: { perSecond: 0.5, burst: 2 },
  });
  t.equal(summary(h.connect('127.0.0.1', 0)), 'admit');
  t.equal(summary(h.connect('127.0.0.1', 0)), 'admit');
  for (let i = 0; i < 20; i += 1) {
    t.equal(
      summary(h.connect('127.0.0.1', 0)),
      'refuse rate: limits.perSourceRate: 0 of 2 tokens, next in 2000 ms',
    );
  }
  t.strictSame(h.rates.service, { tokens: 8, updatedAt: 0 }, 'only the two admitted took tokens');
  t.equal(summary(h.connect('127.0.0.2', 0)), 'admit', 'another source is not affected');
  t.equal(summary(h.connect('::ffff:127.0.0.2', 0)), 'admit', 'v4-mapped is the same source');
  t.equal(
    summary(h.connect('127.0.0.2', 0)),
    'refuse rate: limits.perSourceRate: 0 of 2 tokens, next in 2000 ms',
  );
  t.equal(summary(h.connect('127.0.0.1', 2000)), 'admit');
  t.strictSame([...h.rates.sources.entries.keys()], ['127.0.0.2', '127.0.0.1']);
  t.end();
});

t.test('per-source caps: IPv4 address, IPv6 prefix, Unix uid; global cap', (t) => {
  const h = setUp({ perSource: 1, perSourcePrefix6: 64 });
  h.table.add('svc', '10.0.0.1');
  h.table.add('svc', '2001:db8:1:2::/64');
  h.table.add('svc', 'uid:1000');
  const decide = (peer: Peer, over: Partial<AdmitInput> = {}): string =>
    summary(admitConnection(h.input({ peer, ...over })));
  const full = 'refuse per-source: limits.perSource: 1 of 1 running (full)';
  t.equal(decide(tcp('10.0.0.1')), full);
  t.equal(decide(tcp('::ffff:10.0.0.1')), full);
  t.equal(decide(tcp('10.0.0.2')), 'admit');
  t.equal(decide(tcp('2001:db8:1:2:ffff::1')), full);
  t.equal(decide(tcp('2001:db8:1:3::1')), 'admit');
  t.equal(decide(unix(1000, 5)), full);
  t.equal(decide(unix(1001, 5)), 'admit');
  h.table.add('other', 'x');
  t.equal(
    decide(tcp('10.0.0.2'), { globalMax: 4 }),
    'refuse instances: global cap: 4 of 4 running (full)',
  );
  t.equal(decide(tcp('10.0.0.2'), { globalMax: 5 }), 'admit');
  const trace = traceAdmission(h.input({ peer: tcp('2001:db8:1:2::7') }));
  t.equal(trace.sourceKey, '2001:db8:1:2::/64');
  t.end();
});

t.test('onLimit banner and queue', (t) => {
  const banner = setUp(
    { instances: 1, maxLoad: 4, onLimit: 'banner', banner: 'busy\r\n' },
    { deny: ['10.0.0.0/8'] },
  );
  banner.table.add('svc', 'x');
  const refused = admitConnection(banner.input());
  t.strictSame(refused, {
    kind: 'refuse',
    reason: 'instances',
    detail: 'limits.instances: 1 of 1 running (full)',
    sourceKey: '127.0.0.1',
    banner: 'busy\r\n',
  });
  const overloaded = admitConnection(banner.input({ loadAverage1: 5 }));
  t.equal(
    overloaded.kind === 'refuse' && overloaded.banner,
    'busy\r\n',
    'load refusals get it too',
  );
  const denied = admitConnection(banner.input({ peer: tcp('10.0.0.1') }));
  t.equal(denied.kind === 'refuse' && denied.banner, null, 'denied peers get no banner');

  const queue = setUp({
    instances: 1,
    rate: { perSecond: 1, burst: 2 },
    onLimit: 'queue',
    queueSize: 2,
  });
  queue.table.add('svc', 'x');
  const queued = queue.connect('127.0.0.1', 0, { queueLength: 1 });
  t.strictSame(queued, {
    kind: 'queue',
    reason: 'instances',
    detail: 'limits.instances: 1 of 1 running (full)',
    sourceKey: '127.0.0.1',
    charge: { service: { tokens: 1, updatedAt: 0 }, source: null },
  });
  t.strictSame(
    queue.rates.service,
    { tokens: 1, updatedAt: 0 },
    'a queued connection takes its token',
  );
  t.equal(
    summary(queue.connect('127.0.0.1', 0, { queueLength: 2 })),
    'refuse queue-full: limits.queueSize: 2 of 2 waiting (full); limits.instances: 1 of 1 running (full)',
  );
  t.strictSame(queue.rates.service, { tokens: 1, updatedAt: 0 }, 'queue-full takes none');
  t.equal(
    summary(queue.connect('127.0.0.1', 0, { queueLength: 0 })),
    'queue instances: limits.instances: 1 of 1 running (full)',
  );
  const rateLimited = queue.connect('127.0.0.1', 0, { queueLength: 0 });
  t.strictSame(rateLimited, {
    kind: 'refuse',
    reason: 'rate',
    detail: 'limits.rate: 0 of 2 tokens, next in 1000 ms',
    sourceKey: '127.0.0.1',
    banner: null,
  });
  t.end();
});

t.test('Unix peers: credentials rules and unknown credentials', (t) => {
  const h = setUp({}, { uids: [1000], gids: [50] });
  const decide = (uid: number | null, gid: number | null): string =>
    summary(admitConnection(h.input({ peer: unix(uid, gid) })));
  t.equal(decide(1000, 1), 'admit');
  t.equal(decide(2, 50), 'admit');
  t.equal(
    decide(2, 2),
    'refuse denied: access: deny uid 2 gid 2: no match in access.uids or access.gids',
  );
  t.equal(decide(null, null), 'refuse denied: access: deny: peer credentials unknown');
  const open = setUp({}, { deny: ['0.0.0.0/0'] });
  t.equal(summary(admitConnection(open.input({ peer: unix(null, null) }))), 'admit');
  t.end();
});

t.test('explainDecision prints the decision path', (t) => {
  const h = setUp(
    {
      instances: 4,
      perSource: 2,
      maxLoad: 4,
      rate: { perSecond: 5, burst: 10 },
      perSourceRate: { perSecond: 1, burst: 3 },
    },
    {
      allow: ['10.0.0.0/8', '192.168.0.0/16'],
      deny: ['10.0.0.0/8', '10.9.0.0/16'],
      times: ['09:00-17:00'],
    },
  );
  t.strictSame(explainDecision(h.input({ peer: tcp('::ffff:10.1.2.3') })), [
    'peer: tcp 10.1.2.3 (source 10.1.2.3)',
    'access.allow: 10.0.0.0/8 matches 10.1.2.3 (prefix /8)',
    'access.deny: 10.0.0.0/8 matches 10.1.2.3 (prefix /8)',
    'access: deny 10.0.0.0/8 in access.deny, as long as 10.0.0.0/8 in access.allow',
    'decision: refuse (denied)',
  ]);
  t.strictSame(explainDecision(h.input({ peer: tcp('172.16.0.1') })), [
    'peer: tcp 172.16.0.1 (source 172.16.0.1)',
    'access.allow: no match',
    'access.deny: no match',
    'access: deny: no match in access.allow or access.deny',
    'decision: refuse (denied)',
  ]);
  h.table.add('svc', '192.168.1.1');
  h.table.add('other', 'x');
  h.rates.service = { tokens: 2.5, updatedAt: 0 };
  t.strictSame(
    explainDecision(h.input({ peer: tcp('192.168.1.1'), loadAverage1: 0.25, now: 100 })),
    [
      'peer: tcp 192.168.1.1 (source 192.168.1.1)',
      'access.allow: 192.168.0.0/16 matches 192.168.1.1 (prefix /16)',
      'access.deny: no match',
      'access: allow 192.168.0.0/16 in access.allow',
      'access.times: inside 09:00-17:00 at 10:00',
      'limits.maxLoad: load 0.25 <= 4',
      'limits.rate: 3 of 10 tokens',
      'limits.perSourceRate: 3 of 3 tokens',
      'limits.instances: 1 of 4 running',
      'limits.perSource: 1 of 2 running',
      'global cap: not set (2 running)',
      'decision: admit',
    ],
  );

  const deny = setUp({}, { deny: ['10.0.0.0/8'] });
  t.strictSame(explainDecision(deny.input({ peer: tcp('10.1.2.3') })), [
    'peer: tcp 10.1.2.3 (source 10.1.2.3)',
    'access.allow: not set',
    'access.deny: 10.0.0.0/8 matches 10.1.2.3 (prefix /8)',
    'access: deny 10.0.0.0/8 in access.deny',
    'decision: refuse (denied)',
  ]);

  const queue = setUp({ instances: 1, onLimit: 'queue' }, { uids: [1000] });
  queue.table.add('svc', 'uid:1000');
  t.strictSame(explainDecision(queue.input({ peer: unix(1000, 100), queueLength: 3 })), [
    'peer: unix uid 1000 gid 100 (source uid:1000)',
    'access.uids: uid 1000 matches',
    'access.gids: not set',
    'access: allow uid 1000 in access.uids',
    'access.times: not set (any time)',
    'limits.maxLoad: not set',
    'limits.rate: not set',
    'limits.perSourceRate: not set',
    'limits.instances: 1 of 1 running (full)',
    'limits.onLimit: queue, 3 of 128 waiting',
    'decision: queue (instances)',
  ]);

  const banner = setUp({ perSource: 1, onLimit: 'banner', banner: 'busy' });
  banner.table.add('svc', 'unix');
  t.strictSame(explainDecision(banner.input({ peer: unix(null, null) })), [
    'peer: unix, credentials unknown (source unix)',
    'access.uids: not set',
    'access.gids: not set',
    'access: allow: no access.uids or access.gids list',
    'access.times: not set (any time)',
    'limits.maxLoad: not set',
    'limits.rate: not set',
    'limits.perSourceRate: not set',
    'limits.instances: not set (1 running)',
    'limits.perSource: 1 of 1 running (full)',
    'limits.onLimit: banner',
    'decision: refuse (per-source) with limits.banner',
  ]);
  t.end();
});

t.test('explain and admit agree, and explaining changes nothing', (t) => {
  const h = setUp({ rate: { perSecond: 1, burst: 1 }, perSourceRate: { perSecond: 1, burst: 1 } });
  for (let i = 0; i < 5; i += 1) explainDecision(h.input());
  t.equal(h.rates.service, undefined);
  t.equal(h.rates.sources.entries.size, 0);
  t.equal(summary(h.connect('127.0.0.1', 0)), 'admit');
  const lines = explainDecision(h.input());
  const decision = admitConnection(h.input());
  t.equal(lines.at(-1), 'decision: refuse (rate)');
  t.equal(lines.at(-2), decision.kind === 'refuse' ? decision.detail : '');
  t.end();
});

t.test('an open policy admits at once, as every check of the full path would', (t) => {
  const { policy } = compilePolicy({});
  const peer = tcp('10.1.2.3');
  t.ok(isOpenPolicy(policy, null));
  t.notOk(isOpenPolicy(policy, 10), 'a daemon-wide cap can refuse');
  t.notOk(isOpenPolicy(compilePolicy({ limits: { instances: 1 } }).policy, null));
  t.notOk(isOpenPolicy(compilePolicy({ access: { deny: ['10.0.0.0/8'] } }).policy, null));
  const full = traceAdmission({
    service: 's',
    policy,
    peer,
    connections: createConnectionTable(),
    rates: createRateState(),
    globalMax: null,
    loadAverage1: 99,
    now: 0,
    minuteOfDay: 0,
    queueLength: 0,
  });
  t.same(admitOpen(peer, policy), full.decision);
  t.end();
});
