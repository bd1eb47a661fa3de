import { PassThrough } from 'node:stream';
import t from 'tap';
import { createGetentLookup } from '../../src/config/accounts.js';
import { createSystemAccountLookup } from '../../src/spawn/native-accounts.js';
import { loadNativeAddon } from '../../src/spawn/native-addon.js';
import { describePeer } from '../../src/connection/describe-peer.js';
import { connectionId } from '../../src/model/peer.js';
import { normaliseAddress } from '../../src/access/ip.js';
import { defaultConfigDir } from '../../src/config/paths.js';
import { serviceFileKeys } from '../../src/config/types.js';
import { loadServiceSchema, validateServiceFile } from '../../src/config/validate.js';
import {
  formatListenAddress,
  isSameBinding,
  parseListenAddress,
} from '../../src/config/listen-address.js';
import { cleanText } from '../../src/log/clean.js';
import { readStderr } from '../../src/log/line-splitter.js';

t.test('listen addresses parse, print back and collide as the kernel would', async (t) => {
  const ok = (text: string): unknown => {
    const parsed = parseListenAddress(text);
    return parsed.ok ? parsed.address : parsed.message;
  };
  t.same(ok('tcp:127.0.0.1:80'), { kind: 'tcp', host: '127.0.0.1', port: 80 });
  t.same(ok('tcp:[::1]:0'), { kind: 'tcp', host: '::1', port: 0 });
  t.same(ok('tcp:7000'), { kind: 'tcp', host: null, port: 7000 });
  t.same(ok('unix:/run/x.sock'), { kind: 'unix', path: '/run/x.sock', abstract: false });
  t.same(ok('unix:@name'), { kind: 'unix', path: 'name', abstract: true });
  t.equal(ok('tcp:127.0.0.1:65536'), '"tcp:127.0.0.1:65536": port must be 0 to 65535');
  t.equal(ok('tcp:[127.0.0.1]:1'), '"tcp:[127.0.0.1]:1": "127.0.0.1" is not an IPv6 address');
  t.equal(ok('unix:@'), '"unix:@": the abstract name is empty');
  t.equal(ok('unix:/tmp/'), '"unix:/tmp/": the path names a directory');
  t.equal(ok(`unix:/${'x'.repeat(107)}`), `"unix:/${'x'.repeat(107)}": path longer than 107 bytes`);
  for (const text of ['tcp:127.0.0.1:80', 'tcp:[::1]:80', 'tcp:80', 'unix:/a', 'unix:@b']) {
    const parsed = parseListenAddress(text);
    t.equal(parsed.ok ? formatListenAddress(parsed.address) : '', text);
  }
  const a = (text: string) => {
    const parsed = parseListenAddress(text);
    if (!parsed.ok) throw new Error(parsed.message);
    return parsed.address;
  };
  t.ok(
    isSameBinding(a('tcp:80'), a('tcp:127.0.0.1:80')),
    'dual-stack wildcard takes every address',
  );
  t.ok(isSameBinding(a('tcp:[::]:80'), a('tcp:127.0.0.1:80')));
  t.ok(isSameBinding(a('tcp:0.0.0.0:80'), a('tcp:127.0.0.1:80')));
  t.notOk(isSameBinding(a('tcp:0.0.0.0:80'), a('tcp:[::1]:80')));
  t.notOk(isSameBinding(a('tcp:127.0.0.1:80'), a('tcp:127.0.0.2:80')));
  t.notOk(isSameBinding(a('tcp:127.0.0.1:0'), a('tcp:127.0.0.1:0')), 'port 0 never collides');
  t.ok(isSameBinding(a('unix:/a'), a('unix:/a')));
  t.notOk(isSameBinding(a('unix:/a'), a('unix:@/a')));
});

t.test('peers are normalised and named as systemd names connections', async (t) => {
  t.equal(normaliseAddress('::ffff:10.1.2.3'), '10.1.2.3');
  t.equal(normaliseAddress('::1'), '::1');
  const tcp = describePeer(
    {
      localAddress: '::ffff:127.0.0.1',
      localPort: 7,
      remoteAddress: '::ffff:127.0.0.1',
      remotePort: 9,
    },
    { kind: 'tcp', host: null, port: 7 },
    null,
  );
  t.equal(connectionId(4, tcp), '4-127.0.0.1:7-127.0.0.1:9');
  const unix = describePeer(
    {},
    { kind: 'unix', path: 'n', abstract: true },
    { pid: 42, uid: 1000, gid: 100 },
  );
  t.same(unix, { kind: 'unix', localPath: '@n', pid: 42, uid: 1000, gid: 100 });
  t.equal(connectionId(2, unix), '2-42-1000');
});

t.test('the schema and the ServiceFile type name the same keys', async (t) => {
  const schema = loadServiceSchema() as { properties: Record<string, unknown> };
  t.same(Object.keys(schema.properties), [...serviceFileKeys]);
});

t.test('validation fills defaults and reports every problem with its pointer', async (t) => {
  const good = validateServiceFile('f.json', { listen: 'tcp:1', exec: ['x'] });
  t.match(good, {
    ok: true,
    value: {
      disabled: false,
      stderr: 'log',
      env: {},
      passEnv: [],
      socket: { mode: '0666', backlog: 511, noDelay: false },
    },
  });
  const bad = validateServiceFile('f.json', {
    listen: [],
    exec: ['x'],
    env: { 'BAD NAME': 'v', OK: 1 },
    socket: { mode: '999' },
  });
  t.same(bad.ok ? [] : bad.problems.map((p) => `${p.pointer}: ${p.message}`), [
    '/listen: must NOT have fewer than 1 items',
    '/env/BAD NAME: is not a valid name',
    '/env/OK: must be string',
    '/socket/mode: must match ^0?[0-7]{3}$',
  ]);
});

t.test('the default config dir follows root and XDG', async (t) => {
  t.equal(defaultConfigDir({ isRoot: true, env: {}, home: '/root' }), '/etc/socketeer/conf.d');
  t.equal(
    defaultConfigDir({ isRoot: false, env: { XDG_CONFIG_HOME: '/x' }, home: '/h' }),
    '/x/socketeer/conf.d',
  );
  t.equal(
    defaultConfigDir({ isRoot: false, env: { XDG_CONFIG_HOME: 'rel' }, home: '/h' }),
    '/h/.config/socketeer/conf.d',
  );
  t.equal(defaultConfigDir({ isRoot: false, env: {}, home: '/h' }), '/h/.config/socketeer/conf.d');
});

t.test('peer-controlled text is cleaned before it is logged', async (t) => {
  t.equal(cleanText('a\x1b[31mb\r\n\x7f\u0085'), 'a\\x1b[31mb\\x0d\\x0a\\x7f\\x85');
  t.equal(cleanText('abcdef', 3), 'abc…[3 more characters]');
});

t.test('stderr is split into lines, a long line cut with a count of what was cut', async (t) => {
  const stream = new PassThrough();
  const lines: [string, number][] = [];
  const rate = { perSecond: 65536, burst: 1 << 20 };
  const dropped: number[] = [];
  readStderr(stream, rate, {
    line: (text, truncated) => lines.push([text, truncated]),
    dropped: (bytes) => dropped.push(bytes),
  });
  stream.write('one\r\ntw');
  stream.write(`o\n${'x'.repeat(5000)}`);
  stream.write(`${'y'.repeat(100)}\nlast`);
  stream.end();
  await new Promise((resolve) => stream.on('close', resolve));
  t.same(lines, [
    ['one', 0],
    ['two', 0],
    ['x'.repeat(4096), 5100 - 4096],
    ['last', 0],
  ]);
  t.same(dropped, []);
});

t.test(
  'the native and getent account look-ups agree',
  { skip: loadNativeAddon() === null ? 'the native addon is not built' : false },
  async (t) => {
    const native = createSystemAccountLookup();
    const getent = createGetentLookup();
    for (const key of ['root', 0, '0', 'nobody', 65534, 'no-such-user-here']) {
      t.same(
        native.user(key) === null ? null : { ...native.user(key), shell: undefined },
        getent.user(key) === null ? null : { ...getent.user(key), shell: undefined },
        `user ${JSON.stringify(key)}`,
      );
    }
    for (const key of ['root', 'nogroup', 65534, 'no-such-group-here']) {
      t.same(native.group(key), getent.group(key), `group ${JSON.stringify(key)}`);
    }
    t.same(native.groupList('root', 0)?.sort(), getent.groupList('root', 0)?.sort());
  },
);
