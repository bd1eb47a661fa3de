import { Ajv } from 'ajv';
import t from 'tap';
import { parseTimeWindow } from '../../src/access/times.js';
import schema from '../../schema/limits.schema.json' with { type: 'json' };
import { createConnectionTable } from '../../src/limits/connection-table.js';
import {
  decideLimitAction,
  describeQueueTimeout,
  findStartableWaiter,
  shouldQueue,
  splitExpiredWaiters,
} from '../../src/limits/queue.js';
import { createRateState, commitRateCharge, pruneRateState } from '../../src/limits/rate-state.js';
import { createRefuseCounters, refuseReasons } from '../../src/limits/reasons.js';
import { planRuntimeDeadlines } from '../../src/limits/runtime.js';
import { checkLimitsSettings, resolveLimits } from '../../src/limits/settings.js';
import {
  createSourceBuckets,
  findSourceBucket,
  pruneSourceBuckets,
  putSourceBucket,
} from '../../src/limits/source-buckets.js';
import { sourceKeyOf } from '../../src/limits/source-key.js';
import type { Peer } from '../../src/model/peer.js';
import {
  createBucket,
  hasToken,
  isBucketFull,
  msUntilToken,
  refillBucket,
  takeToken,
  type TokenBucket,
} from '../../src/limits/token-bucket.js';

t.test('token bucket: burst, refill, never above burst, full after idle', (t) => {
  const rate = { perSecond: 2, burst: 3 };
  let bucket = createBucket(rate, 1000);
  t.strictSame(bucket, { tokens: 3, updatedAt: 1000 });
  const results: boolean[] = [];
  for (let i = 0; i < 4; i += 1) {
    const taken = takeToken(bucket, rate, 1000);
    results.push(taken.ok);
    bucket = taken.bucket;
  }
  t.strictSame(results, [true, true, true, false]);
  t.strictSame(bucket, { tokens: 0, updatedAt: 1000 });
  t.equal(msUntilToken(bucket, rate, 1000), 500);
  t.equal(msUntilToken(bucket, rate, 1250), 250);
  t.strictSame(takeToken(bucket, rate, 1499), {
    ok: false,
    bucket: { tokens: 0.998, updatedAt: 1499 },
  });
  t.strictSame(takeToken(bucket, rate, 1500), { ok: true, bucket: { tokens: 0, updatedAt: 1500 } });
  t.strictSame(refillBucket(bucket, rate, 2250), { tokens: 2.5, updatedAt: 2250 });
  t.strictSame(refillBucket(bucket, rate, 10_000_000), { tokens: 3, updatedAt: 10_000_000 });
  t.strictSame(takeToken(bucket, rate, 10_000_000), {
    ok: true,
    bucket: { tokens: 2, updatedAt: 10_000_000 },
  });
  t.equal(isBucketFull(bucket, rate, 2499), false);
  t.equal(isBucketFull(bucket, rate, 2500), true);
  t.equal(hasToken(bucket, rate, 1499), false);
  t.equal(hasToken(bucket, rate, 1500), true);
  t.end();
});

t.test('token bucket: fractional rates come out exact at the boundary', (t) => {
  const slow = { perSecond: 0.1, burst: 1 };
  let bucket: TokenBucket = createBucket(slow, 0);
  let admitted = 0;
  for (let i = 0; i < 100; i += 1) {
    const now = i * 10_000;
    t.equal(takeToken(bucket, slow, now - 1).ok, i === 0, `before ${now}`);
    const taken = takeToken(bucket, slow, now);
    if (taken.ok) admitted += 1;
    bucket = taken.bucket;
  }
  t.equal(admitted, 100, 'one token every 10 s, 100 times over');
  t.equal(msUntilToken(bucket, slow, 990_000), 10_000);

  const perSecond = { perSecond: 1, burst: 1 };
  let polled = takeToken(createBucket(perSecond, 0), perSecond, 0).bucket;
  const attempts: string[] = [];
  for (let now = 100; now <= 1000; now += 100) {
    const taken = takeToken(polled, perSecond, now);
    attempts.push(`${now}:${taken.ok}`);
    polled = taken.bucket;
  }
  t.equal(
    attempts.at(-1),
    '1000:true',
    'ten refills of 0.1 make a whole token (sum 0.9999999999999999)',
  );
  t.equal(attempts.filter((a) => a.endsWith('true')).length, 1);

  const third = { perSecond: 0.3, burst: 1 };
  const empty = takeToken(createBucket(third, 0), third, 0).bucket;
  t.equal(msUntilToken(empty, third, 0), 3334);
  t.equal(takeToken(empty, third, 3333).ok, false);
  t.equal(takeToken(empty, third, 3334).ok, true);
  t.end();
});

t.test('token bucket: a clock that goes backwards refills nothing', (t) => {
  const rate = { perSecond: 2, burst: 2 };
  const bucket = { tokens: 0, updatedAt: 5000 };
  t.strictSame(refillBucket(bucket, rate, 4000), { tokens: 0, updatedAt: 4000 });
  t.strictSame(refillBucket(refillBucket(bucket, rate, 4000), rate, 4500), {
    tokens: 1,
    updatedAt: 4500,
  });
  t.end();
});

t.test('per-source buckets: bounded, least recently charged evicted', (t) => {
  const store = createSourceBuckets(3);
  const b = (tokens: number): TokenBucket => ({ tokens, updatedAt: 0 });
  t.equal(putSourceBucket(store, 'a', b(1)), null);
  t.equal(putSourceBucket(store, 'b', b(1)), null);
  t.equal(putSourceBucket(store, 'c', b(1)), null);
  t.equal(putSourceBucket(store, 'd', b(1)), 'a');
  t.strictSame(findSourceBucket(store, 'b'), b(1), 'find does not refresh');
  t.equal(putSourceBucket(store, 'b', b(0)), null, 'an update evicts nothing');
  t.equal(putSourceBucket(store, 'e', b(1)), 'c');
  t.strictSame([...store.entries.keys()], ['d', 'b', 'e']);
  t.equal(findSourceBucket(store, 'a'), undefined);

  const flood = createSourceBuckets(100);
  for (let i = 0; i < 10_000; i += 1) putSourceBucket(flood, `10.${i >> 8}.${i & 255}.1`, b(0));
  t.equal(flood.entries.size, 100);
  t.equal([...flood.entries.keys()][0], '10.38.172.1', 'the 100 most recent (9900..9999) remain');
  t.throws(() => createSourceBuckets(0), RangeError);
  t.end();
});

t.test('per-source buckets: pruning drops exactly the full ones', (t) => {
  const rate = { perSecond: 1, burst: 2 };
  const store = createSourceBuckets(10);
  putSourceBucket(store, 'empty', { tokens: 0, updatedAt: 0 });
  putSourceBucket(store, 'half', { tokens: 1.5, updatedAt: 0 });
  putSourceBucket(store, 'full', { tokens: 2, updatedAt: 0 });
  t.equal(pruneSourceBuckets(store, rate, 0), 1);
  t.equal(pruneSourceBuckets(store, rate, 499), 0);
  t.equal(pruneSourceBuckets(store, rate, 500), 1);
  t.equal(pruneSourceBuckets(store, rate, 1999), 0);
  t.strictSame([...store.entries.keys()], ['empty']);
  t.equal(pruneSourceBuckets(store, rate, 2000), 1);
  t.equal(store.entries.size, 0);

  const state = createRateState(10);
  const charged = { tokens: 0, updatedAt: 0 };
  t.equal(commitRateCharge(state, 'x', { service: charged, source: charged }), null);
  t.strictSame(state.service, charged);
  t.equal(pruneRateState(state, rate, 1000), 0);
  t.equal(pruneRateState(state, null, 1000), 1, 'no perSourceRate: nothing to remember');
  t.end();
});

t.test('source keys: IPv4 address, IPv6 prefix, Unix uid', (t) => {
  const tcp = (address: string): Peer => ({
    kind: 'tcp',
    localAddress: '',
    localPort: 0,
    remoteAddress: address,
    remotePort: 0,
  });
  const unix = (uid: number | null, gid: number | null): Peer => ({
    kind: 'unix',
    localPath: '',
    pid: null,
    uid,
    gid,
  });
  t.equal(sourceKeyOf(tcp('10.1.2.3'), 128), '10.1.2.3');
  t.equal(sourceKeyOf(tcp('::ffff:10.1.2.3'), 64), '10.1.2.3');
  t.equal(sourceKeyOf(tcp('2001:db8:1:2:3:4:5:6'), 128), '2001:db8:1:2:3:4:5:6/128');
  t.equal(sourceKeyOf(tcp('2001:db8:1:2:3:4:5:6'), 64), '2001:db8:1:2::/64');
  t.equal(sourceKeyOf(tcp('2001:DB8:1:2::9'), 64), '2001:db8:1:2::/64');
  t.equal(sourceKeyOf(tcp('2001:db8:1:2:3:4:5:6'), 48), '2001:db8:1::/48');
  t.equal(sourceKeyOf(tcp('2001:db8:1:2:3:4:5:6'), 0), '::/0');
  t.equal(sourceKeyOf(tcp('::1'), 128), '::1/128');
  t.equal(sourceKeyOf(tcp('fe80::1%eth0'), 128), 'fe80::1/128');
  t.equal(sourceKeyOf(tcp('junk'), 128), 'junk');
  t.equal(sourceKeyOf(unix(1000, 100), 128), 'uid:1000');
  t.equal(sourceKeyOf(unix(0, 0), 128), 'uid:0');
  t.equal(sourceKeyOf(unix(null, null), 128), 'unix');
  t.end();
});

t.test('connection table counts per service, per source and in total', (t) => {
  const table = createConnectionTable();
  table.add('echo', '10.0.0.1');
  table.add('echo', '10.0.0.1');
  table.add('echo', '10.0.0.2');
  table.add('finger', '10.0.0.1');
  t.strictSame(
    [table.countService('echo'), table.countSource('echo', '10.0.0.1'), table.countAll()],
    [3, 2, 4],
  );
  t.equal(table.countSource('finger', '10.0.0.1'), 1);
  t.equal(table.countSource('finger', '10.0.0.2'), 0);
  t.equal(table.remove('echo', '10.0.0.1'), true);
  t.equal(table.remove('echo', '10.0.0.1'), true);
  t.equal(table.remove('echo', '10.0.0.1'), false, 'no such handler: nothing changes');
  t.equal(table.remove('nope', 'x'), false);
  t.strictSame(
    [table.countService('echo'), table.countSource('echo', '10.0.0.1'), table.countAll()],
    [1, 0, 2],
  );
  t.equal(table.remove('echo', '10.0.0.2'), true);
  t.equal(table.remove('finger', '10.0.0.1'), true);
  t.strictSame([table.countService('echo'), table.countAll()], [0, 0]);
  t.end();
});

t.test('queue policy: bound, expiry, arrival order past blocked sources', (t) => {
  const queue = resolveLimits({ onLimit: 'queue', queueSize: 2, queueTimeoutSec: 30 });
  t.strictSame(
    [0, 1, 2, 3].map((n) => decideLimitAction(queue, n)),
    ['queue', 'queue', 'queue-full', 'queue-full'],
  );
  t.equal(decideLimitAction(resolveLimits({}), 0), 'close');
  t.equal(decideLimitAction(resolveLimits({ onLimit: 'banner', banner: 'busy' }), 0), 'banner');
  t.strictSame(
    [shouldQueue(queue, 1), shouldQueue(queue, 2), shouldQueue(resolveLimits({}), 0)],
    [true, false, false],
  );

  const waiters = [
    { sourceKey: 'a', enqueuedAt: 1000, id: 1 },
    { sourceKey: 'b', enqueuedAt: 2000, id: 2 },
    { sourceKey: 'c', enqueuedAt: 3000, id: 3 },
  ];
  const split = splitExpiredWaiters(waiters, queue, 31_000);
  t.strictSame(
    split.expired.map((w) => w.id),
    [1],
  );
  t.strictSame(
    split.waiting.map((w) => w.id),
    [2, 3],
  );
  t.strictSame(splitExpiredWaiters(waiters, queue, 30_999).expired, []);
  t.equal(
    describeQueueTimeout(waiters[0]!, queue, 31_000),
    'limits.queueTimeoutSec: waited 30000 ms of 30 s',
  );

  const limits = resolveLimits({ onLimit: 'queue', instances: 2, perSource: 1 });
  const table = createConnectionTable();
  table.add('svc', 'a');
  const input = { limits, service: 'svc', connections: table, globalMax: null };
  t.equal(findStartableWaiter(waiters, input), 1, 'a is at its per-source cap, b may start');
  table.add('svc', 'b');
  t.equal(findStartableWaiter(waiters, input), -1, 'instances full');
  table.remove('svc', 'a');
  t.equal(findStartableWaiter(waiters, input), 0);
  t.equal(findStartableWaiter(waiters, { ...input, globalMax: 1 }), -1, 'global cap');
  t.end();
});

t.test('runtime deadlines', (t) => {
  t.equal(planRuntimeDeadlines(resolveLimits({}), 1000), null);
  t.strictSame(planRuntimeDeadlines(resolveLimits({ runtimeMaxSec: 1.5 }), 1000), {
    termAt: 2500,
    killAt: 7500,
  });
  t.strictSame(planRuntimeDeadlines(resolveLimits({ runtimeMaxSec: 60, killGraceSec: 0 }), 0), {
    termAt: 60_000,
    killAt: 60_000,
  });
  t.end();
});

t.test('refuse reasons and their counters', (t) => {
  t.strictSame(refuseReasons, [
    'denied',
    'time',
    'load',
    'rate',
    'instances',
    'per-source',
    'queue-full',
    'queue-timeout',
    'queue-gone',
    'proxy-header',
    'source-port',
    'send-queue',
  ]);
  const counters = createRefuseCounters();
  t.strictSame(Object.values(counters), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  t.strictSame(Object.keys(counters), [...refuseReasons]);
  t.end();
});

t.test('limits settings: defaults and semantic checks', (t) => {
  t.strictSame(resolveLimits(undefined), {
    instances: null,
    perSource: null,
    perSourcePrefix6: 128,
    rate: null,
    perSourceRate: null,
    maxLoad: null,
    runtimeMaxSec: null,
    killGraceSec: 5,
    onLimit: 'close',
    banner: null,
    queueSize: 128,
    queueTimeoutSec: 30,
  });
  t.strictSame(checkLimitsSettings({ onLimit: 'banner' }), [
    {
      pointer: '/limits/banner',
      message: 'is required when onLimit is "banner"',
      severity: 'error',
    },
  ]);
  t.strictSame(checkLimitsSettings({ banner: 'busy\r\n', instances: 2, perSource: 2 }), [
    {
      pointer: '/limits/banner',
      message: 'is never written: onLimit is not "banner"',
      severity: 'warning',
    },
    {
      pointer: '/limits/perSource',
      message: '2 is not below instances (2): it never applies',
      severity: 'warning',
    },
  ]);
  t.strictSame(
    checkLimitsSettings({ onLimit: 'banner', banner: 'busy', instances: 3, perSource: 2 }),
    [],
  );
  t.strictSame(checkLimitsSettings(undefined), []);
  t.end();
});

t.test('the schema fragment: strict, defaults, banner rule, time pattern', (t) => {
  const ajv = new Ajv({ strict: true, useDefaults: true, allErrors: true });
  const validate = ajv.compile({
    ...schema,
    type: 'object',
    properties: {
      limits: { $ref: '#/definitions/limits' },
      access: { $ref: '#/definitions/access' },
    },
    additionalProperties: false,
  });
  const service = { limits: {}, access: {} };
  t.equal(validate(service), true);
  t.strictSame(service.limits, {
    perSourcePrefix6: 128,
    killGraceSec: 5,
    onLimit: 'close',
    queueSize: 128,
    queueTimeoutSec: 30,
  });
  t.strictSame(resolveLimits(service.limits), resolveLimits(undefined), 'same defaults both ways');

  const errorsOf = (data: unknown): string[] => {
    validate(data);
    return (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
  };
  t.strictSame(errorsOf({ limits: { onLimit: 'banner' } }), [
    "/limits must have required property 'banner'",
    '/limits must match "then" schema',
  ]);
  t.strictSame(errorsOf({ limits: { onLimit: 'banner', banner: 'busy\r\n' } }), []);
  t.strictSame(errorsOf({ limits: { instance: 3 } }), [
    '/limits must NOT have additional properties',
  ]);
  t.strictSame(errorsOf({ limits: { rate: { perSecond: 0, burst: 1, extra: 1 } } }), [
    '/limits/rate must NOT have additional properties',
    '/limits/rate/perSecond must be > 0',
  ]);
  t.strictSame(errorsOf({ limits: { perSourceRate: { perSecond: 0.5, burst: 2.5 } } }), [
    '/limits/perSourceRate/burst must be integer',
  ]);
  t.strictSame(errorsOf({ access: { times: [] } }), [
    '/access/times must NOT have fewer than 1 items',
  ]);
  t.strictSame(errorsOf({ access: { uids: [-1] } }), ['/access/uids/0 must be >= 0']);

  for (const text of ['09:00-17:00', '22:00-06:00', '00:00-24:00', '12:00-12:00', '9:00-17:00']) {
    const parsed = parseTimeWindow(text);
    const isPatternOk = parsed.ok || parsed.message.endsWith('is an empty window');
    t.equal(errorsOf({ access: { times: [text] } }).length === 0, isPatternOk, text);
  }

  const byKey = new Ajv({ strict: true, useDefaults: true }).addSchema(schema, 'limits.json');
  const viaRef = byKey.compile({ $ref: 'limits.json#/definitions/limits' });
  t.equal(viaRef({ rate: { perSecond: 1, burst: 1 } }), true, 'usable through addSchema + $ref');
  t.equal(viaRef({ rate: { perSecond: 1 } }), false);

  const undocumented: string[] = [];
  const walk = (node: Record<string, unknown>, path: string): void => {
    const properties = (node.properties ?? {}) as Record<string, Record<string, unknown>>;
    for (const [key, child] of Object.entries(properties)) {
      if (typeof child.description !== 'string') undocumented.push(`${path}/${key}`);
      walk(child, `${path}/${key}`);
    }
  };
  for (const [name, definition] of Object.entries(schema.definitions)) {
    if (typeof definition.description !== 'string') undocumented.push(name);
    if (definition.additionalProperties !== false) undocumented.push(`${name}: open`);
    walk(definition, name);
  }
  t.strictSame(undocumented, [], 'every key has a description, every object is closed');
  t.end();
});
