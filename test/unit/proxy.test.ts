import t from 'tap';
import { resolveProxy } from '../../src/config/resolve-proxy.js';
import { validateServiceFile } from '../../src/config/validate.js';
import { encodeProxyHeader, proxyV2Signature } from '../../src/model/proxy-header.js';
import type { Peer } from '../../src/model/peer.js';

const tcp4: Peer = {
  kind: 'tcp',
  localAddress: '192.0.2.1',
  localPort: 8080,
  remoteAddress: '198.51.100.7',
  remotePort: 40000,
};
const tcp6: Peer = {
  kind: 'tcp',
  localAddress: '2001:db8::1',
  localPort: 443,
  remoteAddress: '::1',
  remotePort: 65535,
};
const unix: Peer = { kind: 'unix', localPath: '/run/a.sock', pid: 1, uid: 0, gid: 0 };

t.test('v1: the text line of HAProxy send-proxy', async (t) => {
  t.equal(
    encodeProxyHeader('v1', tcp4).toString('latin1'),
    'PROXY TCP4 198.51.100.7 192.0.2.1 40000 8080\r\n',
  );
  t.equal(
    encodeProxyHeader('v1', tcp6).toString('latin1'),
    'PROXY TCP6 ::1 2001:db8::1 65535 443\r\n',
  );
  const mixed = { ...tcp4, localAddress: '::' };
  t.equal(
    encodeProxyHeader('v1', mixed).toString('latin1'),
    'PROXY TCP6 ::ffff:198.51.100.7 :: 40000 8080\r\n',
  );
  t.equal(encodeProxyHeader('v1', unix).toString('latin1'), 'PROXY UNKNOWN\r\n');
});

t.test('v2: signature, version/command, family, length, addresses, ports', async (t) => {
  t.equal(proxyV2Signature.toString('latin1'), '\r\n\r\n\0\r\nQUIT\n');
  t.equal(
    encodeProxyHeader('v2', tcp4).toString('hex'),
    '0d0a0d0a000d0a515549540a' + '21' + '11' + '000c' + 'c6336407' + 'c0000201' + '9c40' + '1f90',
  );
  t.equal(
    encodeProxyHeader('v2', tcp6).toString('hex'),
    '0d0a0d0a000d0a515549540a' +
      '21' +
      '21' +
      '0024' +
      '00000000000000000000000000000001' +
      '20010db8000000000000000000000001' +
      'ffff' +
      '01bb',
  );
  const mapped = encodeProxyHeader('v2', { ...tcp6, remoteAddress: '::ffff:10.0.0.1' });
  t.equal(mapped.subarray(16, 32).toString('hex'), '00000000000000000000ffff0a000001');
  t.equal(encodeProxyHeader('v2', unix).toString('hex'), '0d0a0d0a000d0a515549540a' + '20000000');
});

const resolve = (json: Record<string, unknown>) => {
  const result = validateServiceFile('p.json', { listen: 'tcp:8080', ...json });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return resolveProxy(result.value);
};

t.test('exactly one of exec and proxy, each problem at its pointer', async (t) => {
  const problems = (json: Record<string, unknown>) => {
    const result = validateServiceFile('p.json', { listen: 'tcp:8080', ...json });
    return result.ok ? [] : result.problems;
  };
  t.same(problems({}), [
    { file: 'p.json', pointer: '/exec', message: 'is required (or proxy or builtin instead)' },
  ]);
  t.same(problems({ exec: ['/bin/cat'], proxy: 'unix:/run/a.sock' }), [
    { file: 'p.json', pointer: '/proxy', message: 'cannot be given with exec: use one of them' },
  ]);
  t.same(problems({ proxy: 'unix:/run/a.sock', bogus: 1 }), [
    { file: 'p.json', pointer: '/bogus', message: 'unknown key' },
  ]);
  // resolveProxy says the same of a file that did not come through the schema
  t.same(resolveProxy({ accept: true }).problems, [
    { pointer: '/exec', message: 'is required (or proxy or builtin instead)' },
  ]);
  t.same(resolveProxy({ accept: true, exec: ['/bin/cat'], proxy: 'unix:/a' }).problems, [
    { pointer: '/proxy', message: 'cannot be given with exec: use one of them' },
  ]);
  t.same(resolve({ exec: ['/bin/cat'], proxyProtocol: 'v1', proxyIdleTimeoutSec: 5 }).problems, [
    { pointer: '/proxyProtocol', message: 'needs proxy' },
    { pointer: '/proxyIdleTimeoutSec', message: 'needs proxy' },
  ]);
  t.same(resolve({ proxy: 'unix:/run/a.sock', accept: false }).problems, [
    { pointer: '/proxy', message: 'needs accept true (the daemon accepts)' },
  ]);
  t.same(resolve({ exec: ['/bin/cat'] }), {
    proxy: null,
    builtin: null,
    problems: [],
    warnings: [],
  });
});

t.test('builtin: a third of exactly one, accept true, handler keys warned', async (t) => {
  const problems = (json: Record<string, unknown>) => {
    const result = validateServiceFile('p.json', { listen: 'tcp:8080', ...json });
    return result.ok ? [] : result.problems;
  };
  t.same(problems({ exec: ['/bin/cat'], builtin: 'echo' }), [
    { file: 'p.json', pointer: '/builtin', message: 'cannot be given with exec: use one of them' },
  ]);
  t.same(problems({ proxy: 'unix:/a', builtin: 'echo' }), [
    { file: 'p.json', pointer: '/builtin', message: 'cannot be given with proxy: use one of them' },
  ]);
  t.same(problems({ builtin: 'qotd' }), [
    {
      file: 'p.json',
      pointer: '/builtin',
      message: 'must be one of "echo", "discard", "chargen", "daytime", "time"',
    },
  ]);
  t.same(resolve({ builtin: 'echo', accept: false }).problems, [
    { pointer: '/builtin', message: 'needs accept true (the daemon serves it)' },
  ]);
  t.same(resolve({ builtin: 'chargen', user: 'nobody' }), {
    proxy: null,
    builtin: 'chargen',
    problems: [],
    warnings: [
      {
        pointer: '/user',
        message:
          'has no effect on a builtin service (no handler runs; the daemon serves it itself)',
      },
    ],
  });
});

t.test('proxy targets: Unix path, abstract, TCP v4 and v6, with the defaults', async (t) => {
  t.same(resolve({ proxy: 'unix:/run/a.sock' }).proxy, {
    target: { kind: 'unix', path: '/run/a.sock', abstract: false },
    text: 'unix:/run/a.sock',
    protocol: null,
    connectTimeoutMs: 10000,
    idleTimeoutMs: null,
  });
  t.same(resolve({ proxy: 'unix:@app' }).proxy?.target, {
    kind: 'unix',
    path: 'app',
    abstract: true,
  });
  const set = { proxyProtocol: 'v2', proxyConnectTimeoutSec: 2.5, proxyIdleTimeoutSec: 60 };
  t.match(resolve({ proxy: 'tcp:[::1]:80', ...set }).proxy, {
    target: { kind: 'tcp', host: '::1', port: 80 },
    protocol: 'v2',
    connectTimeoutMs: 2500,
    idleTimeoutMs: 60000,
  });
  const bad = (proxy: string) =>
    resolve({ proxy }).problems.map((p) => `${p.pointer}: ${p.message}`);
  t.same(bad('tcp:80'), [
    '/proxy: "tcp:80": expected unix:/abs/path, unix:@name, tcp:HOST:PORT or tcp:[V6]:PORT (a host and a port other than 0)',
  ]);
  t.same(bad('udp:1.2.3.4:53'), [
    '/proxy: "udp:1.2.3.4:53": expected unix:/abs/path, unix:@name, tcp:HOST:PORT or tcp:[V6]:PORT',
  ]);
  t.same(bad('unix:run/a.sock'), ['/proxy: "unix:run/a.sock": the path must be absolute']);
  t.same(bad('tcp:localhost:80'), [
    '/proxy: "tcp:localhost:80": "localhost" is not an IPv4 address (write IPv6 as [::1])',
  ]);
});

t.test('handler keys on a proxy service are warnings (no effect), defaults are not', async (t) => {
  const message = 'has no effect on a proxy service (no handler runs; the daemon connects itself)';
  t.same(resolve({ proxy: 'unix:/run/a.sock', stderr: 'log', env: {}, passEnv: [] }).warnings, []);
  t.same(
    resolve({ proxy: 'unix:/run/a.sock', user: 'www', env: { A: '1' }, stderr: 'null' }).warnings,
    [
      { pointer: '/user', message },
      { pointer: '/env', message },
      { pointer: '/stderr', message },
    ],
  );
});
