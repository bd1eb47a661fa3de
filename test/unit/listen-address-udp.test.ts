import { createSocket } from 'node:dgram';
import t from 'tap';
import {
  formatListenAddress,
  isSameBinding,
  parseListenAddress,
} from '../../src/config/listen-address.js';
import { resolveActivation } from '../../src/config/resolve-activation.js';
import type { ListenAddress, ServiceFile, SocketSpec } from '../../src/config/types.js';
import { validateServiceFile } from '../../src/config/validate.js';
import { bindListener } from '../../src/listen/listener.js';
import { loadNativeAddon } from '../../src/spawn/native-addon.js';

const parse = (text: string): unknown => {
  const parsed = parseListenAddress(text);
  return parsed.ok ? parsed.address : parsed.message;
};
const address = (text: string): ListenAddress => {
  const parsed = parseListenAddress(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.address;
};

t.test('udp: addresses parse, print back and collide only with udp', async (t) => {
  t.same(parse('udp:127.0.0.1:69'), { kind: 'udp', host: '127.0.0.1', port: 69 });
  t.same(parse('udp:[::1]:0'), { kind: 'udp', host: '::1', port: 0 });
  t.same(parse('udp:6969'), { kind: 'udp', host: null, port: 6969 });
  t.equal(parse('udp:127.0.0.1:65536'), '"udp:127.0.0.1:65536": port must be 0 to 65535');
  t.equal(parse('udp:[127.0.0.1]:1'), '"udp:[127.0.0.1]:1": "127.0.0.1" is not an IPv6 address');
  t.equal(
    parse('udp:localhost:69'),
    '"udp:localhost:69": "localhost" is not an IPv4 address (write IPv6 as [::1])',
  );
  t.match(parse('udp:'), /^"udp:": expected tcp:HOST:PORT, .*udp:HOST:PORT/);
  for (const text of ['udp:127.0.0.1:69', 'udp:[::1]:69', 'udp:69']) {
    t.equal(formatListenAddress(address(text)), text);
  }
  t.notOk(isSameBinding(address('udp:127.0.0.1:69'), address('tcp:127.0.0.1:69')), 'tcp ≠ udp');
  t.notOk(isSameBinding(address('tcp:69'), address('udp:69')));
  t.ok(isSameBinding(address('udp:69'), address('udp:127.0.0.1:69')), 'wildcard takes all');
  t.ok(isSameBinding(address('udp:[::1]:69'), address('udp:[::1]:69')));
  t.notOk(isSameBinding(address('udp:127.0.0.1:0'), address('udp:127.0.0.1:0')));
});

function resolve(json: Record<string, unknown>) {
  const result = validateServiceFile('tftp.json', { exec: ['/bin/true'], ...json });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  const value: ServiceFile = result.value;
  const list = typeof value.listen === 'string' ? [value.listen] : value.listen;
  return resolveActivation('tftp', value, list.map(address));
}

t.test('udp needs accept: false: refused with its pointer otherwise', async (t) => {
  const message =
    'udp needs accept: false or builtin: a handler per connection (accept: true) needs a stream socket, and UDP has no connections';
  t.same(resolve({ listen: ['tcp:80', 'udp:69', 'udp:[::1]:69'] }).problems, [
    { pointer: '/listen/1', message, severity: 'error' },
    { pointer: '/listen/2', message, severity: 'error' },
  ]);
  t.same(resolve({ listen: 'udp:127.0.0.1:69' }).problems, [
    { pointer: '/listen', message, severity: 'error' },
  ]);
  t.same(resolve({ listen: 'udp:127.0.0.1:69', accept: false, listenerOn: 'stdin' }), {
    activation: {
      listenerOn: 'stdin',
      start: 'on-demand',
      restart: 'on-failure',
      fdName: 'tftp',
      fdStoreMax: 0,
    },
    problems: [],
  });
});

const addon = loadNativeAddon();
const events = { onConnection: () => undefined, onError: () => undefined };
const socket: SocketSpec = {
  backlog: 511,
  noDelay: true,
  keepAlive: false,
  proxyHeader: null,
  mode: 0o600,
  uid: null,
  gid: null,
};

t.test(
  'a held udp socket stays bound, exclusively, and wakes at the first datagram',
  { skip: addon === null ? 'the native addon is not built' : false },
  async (t) => {
    if (addon === null) return;
    const request = { address: address('udp:127.0.0.1:0'), socket, events, hold: addon };
    const held = await bindListener(request);
    t.teardown(() => held.close());
    t.match(held.bound, /^udp:127\.0\.0\.1:[1-9]\d*$/);
    t.equal(held.bound, `udp:127.0.0.1:${String(held.port)}`);
    const again = { ...request, address: address(held.bound) };
    await t.rejects(bindListener(again), {
      message: new RegExp(`^unable to bind ${held.bound}: .*EADDRINUSE`),
    });
    const woken = new Promise<void>((resolve) => addon.watchReadable(held.fd ?? -1, resolve));
    const sender = createSocket('udp4');
    sender.send('hello', held.port ?? 0, '127.0.0.1');
    await woken;
    sender.close();
    t.pass('readable at the first datagram');
    const unheld = { ...request, hold: null };
    await t.rejects(bindListener(unheld), {
      message: 'unable to bind udp:127.0.0.1:0: a UDP socket is for accept: false services only',
    });
  },
);
