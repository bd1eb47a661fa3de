import t from 'tap';
import { parsePeerArgument } from '../../src/commands/check-peer.js';
import { resolvePolicy } from '../../src/config/resolve-policy.js';
import type { ListenAddress, ServiceFile } from '../../src/config/types.js';
import { loadServiceSchema, validateServiceFile } from '../../src/config/validate.js';
import { createLoadSampler, parseLoadAverage1 } from '../../src/connection/load-average.js';
import { createSharedLimits, type QueueSource } from '../../src/connection/shared-limits.js';

t.test('the service schema has limits and access, defaults filled in', (t) => {
  const schema = loadServiceSchema() as { $id?: string; properties: Record<string, unknown> };
  t.equal(schema.$id, undefined, 'no $id: limits.schema.json resolves next to the file');
  const ok = validateServiceFile('s.json', { listen: 'tcp:1', exec: ['true'] });
  t.ok(ok.ok);
  if (ok.ok) {
    t.strictSame(ok.value.limits, {
      perSourcePrefix6: 128,
      killGraceSec: 5,
      onLimit: 'close',
      queueSize: 128,
      queueTimeoutSec: 30,
    });
    t.equal(ok.value.access, undefined);
  }
  const bad = validateServiceFile('s.json', {
    listen: 'tcp:1',
    exec: ['true'],
    limits: { onLimit: 'banner', instances: 0, runtimeMaxSec: 3e6 },
    access: { allow: '10.0.0.0/8', uid: [1] },
  });
  t.strictSame(bad.ok ? [] : bad.problems, [
    { file: 's.json', pointer: '/limits/banner', message: 'is required when onLimit is "banner"' },
    { file: 's.json', pointer: '/limits/instances', message: 'must be >= 1' },
    { file: 's.json', pointer: '/limits/runtimeMaxSec', message: 'must be <= 2147483' },
    { file: 's.json', pointer: '/access/uid', message: 'unknown key (did you mean uids?)' },
    { file: 's.json', pointer: '/access/allow', message: 'must be array' },
  ]);
  t.end();
});

t.test('resolvePolicy: errors with file and pointer, warnings apart', (t) => {
  const tcp: ListenAddress = { kind: 'tcp', host: '127.0.0.1', port: 1 };
  const unix: ListenAddress = { kind: 'unix', path: '/s', abstract: false };
  const file = (over: Partial<ServiceFile>): ServiceFile =>
    ({ listen: 'x', exec: ['true'], limits: {}, ...over }) as ServiceFile;
  const bad = resolvePolicy(
    'f.json',
    file({ access: { allow: ['10.0.0.1/8'], deny: ['10.0.0.0/8'], uids: [0] } }),
    [tcp],
  );
  t.strictSame(bad.problems, [
    {
      file: 'f.json',
      pointer: '/access/allow/0',
      message: '"10.0.0.1/8" has host bits set; the network is 10.0.0.0/8',
    },
  ]);
  t.strictSame(bad.warnings, [
    {
      file: 'f.json',
      pointer: '/access/uids',
      message: 'has no effect: the service has no Unix listener',
    },
  ]);
  const good = resolvePolicy(
    'f.json',
    file({ limits: { instances: 3, perSource: 3, banner: 'x' }, access: { deny: ['::1'] } }),
    [unix],
  );
  t.strictSame(good.problems, []);
  t.strictSame(
    good.warnings.map((w) => w.pointer),
    ['/limits/banner', '/limits/perSource', '/access/deny'],
  );
  t.equal(good.admitPolicy.limits.instances, 3);
  t.end();
});

t.test('check --peer arguments', (t) => {
  const cases: [string, ReturnType<typeof parsePeerArgument>][] = [
    ['10.1.2.3', { address: '10.1.2.3', port: null }],
    ['10.1.2.3:4567', { address: '10.1.2.3', port: 4567 }],
    ['::1', { address: '::1', port: null }],
    ['::ffff:10.1.2.3', { address: '::ffff:10.1.2.3', port: null }],
    ['[2001:db8::1]', { address: '2001:db8::1', port: null }],
    ['[2001:db8::1]:80', { address: '2001:db8::1', port: 80 }],
    ['[10.1.2.3]:80', null],
    ['10.1.2.3:0', null],
    ['10.1.2.3:65536', null],
    ['10.1.2.3:080', null],
    ['localhost', null],
    ['10.1.2', null],
    ['', null],
  ];
  for (const [text, expected] of cases) t.strictSame(parsePeerArgument(text), expected, text);
  t.end();
});

t.test('the load average is read at most once per second', (t) => {
  t.equal(parseLoadAverage1('0.42 0.30 0.25 1/123 4567\n'), 0.42);
  t.equal(parseLoadAverage1('garbage'), null);
  let now = 0;
  let reads = 0;
  const texts = ['1.50 0 0 1/1 1', 'nonsense', '2.25 0 0 1/1 1'];
  const sample = createLoadSampler({
    clock: () => now,
    read: () => texts[reads++] ?? '',
  });
  t.equal(sample(), 1.5);
  now = 999;
  t.equal(sample(), 1.5);
  t.equal(reads, 1, 'no read within the second');
  now = 1000;
  t.equal(sample(), 1.5, 'an unparsable read keeps the last value');
  now = 2000;
  t.equal(sample(), 2.25);
  t.equal(reads, 3);
  const failing = createLoadSampler({
    clock: () => 0,
    read: () => {
      throw new Error('ENOENT');
    },
  });
  t.equal(failing(), 0, 'no /proc: load 0');
  t.end();
});

t.test('a freed slot starts the oldest startable waiter across services', (t) => {
  const shared = createSharedLimits({ globalMax: 1, readLoadAverage: () => '0.5 0 0 1/1 1' });
  t.equal(shared.loadAverage1(), 0.5);
  const started: string[] = [];
  const queue = (name: string, arrivals: number[]): QueueSource => ({
    firstStartable: () =>
      shared.table.countAll() < 1 && arrivals.length > 0 ? (arrivals[0] ?? null) : null,
    startFirst: () => {
      started.push(`${name}${arrivals.shift()}`);
      shared.table.add(name, 'k');
    },
  });
  const b = queue('b', [2]);
  const a = queue('a', [1, 3]);
  t.strictSame([shared.nextArrival(), shared.nextArrival()], [1, 2]);
  shared.watchQueue(b);
  shared.watchQueue(a);
  shared.table.add('x', 'k');
  shared.release('x', 'k');
  t.strictSame(started, ['a1'], 'a1 arrived before b2, and the cap is 1');
  shared.release('a', 'k');
  t.strictSame(started, ['a1', 'b2']);
  shared.unwatchQueue(a);
  shared.release('b', 'k');
  t.strictSame(started, ['a1', 'b2'], 'an unwatched queue is not drained');
  t.equal(shared.table.countAll(), 0);
  t.end();
});
