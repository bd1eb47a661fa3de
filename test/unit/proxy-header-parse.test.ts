import t from 'tap';
import { findLongestMatch, type PrefixList } from '../../src/access/cidr.js';
import { parsePeerAddress } from '../../src/access/ip.js';
import { resolveProxyHeader } from '../../src/config/resolve-proxy-header.js';
import { validateServiceFile } from '../../src/config/validate.js';
import { encodeProxyHeader } from '../../src/model/proxy-header.js';
import {
  parseProxyHeader,
  proxyPeekSize,
  proxyV1Max,
} from '../../src/connection/proxy-header-parse.js';

const latin = (text: string): Buffer => Buffer.from(text, 'latin1');
const signature = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

t.test('v1: TCP4, TCP6 and UNKNOWN lines from the spec', async (t) => {
  t.same(parseProxyHeader(latin('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET /')), {
    kind: 'complete',
    length: 47,
    source: {
      remoteAddress: '192.168.0.1',
      remotePort: 56324,
      localAddress: '192.168.0.11',
      localPort: 443,
    },
  });
  const v6 = parseProxyHeader(latin('PROXY TCP6 2001:DB8::1 ::1 65535 0\r\n'));
  t.same(v6, {
    kind: 'complete',
    length: 36,
    source: { remoteAddress: '2001:db8::1', remotePort: 65535, localAddress: '::1', localPort: 0 },
  });
  t.same(parseProxyHeader(latin('PROXY UNKNOWN\r\n')), {
    kind: 'complete',
    length: 15,
    source: null,
  });
  const unknownLong = `PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n`;
  t.same(parseProxyHeader(latin(unknownLong)), {
    kind: 'complete',
    length: unknownLong.length,
    source: null,
  });
});

t.test('v1: every strict prefix is incomplete, never more', async (t) => {
  const line = 'PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n';
  for (let n = 1; n < line.length; n += 1) {
    t.same(parseProxyHeader(latin(line.slice(0, n))), { kind: 'incomplete' }, `${n} bytes`);
  }
});

t.test('v1: malformed, oversized and foreign starts are invalid', async (t) => {
  const invalid = (text: string): string => {
    const parsed = parseProxyHeader(latin(text));
    return parsed.kind === 'invalid' ? parsed.detail : `not invalid: ${parsed.kind}`;
  };
  t.match(invalid('GET / HTTP/1.0\r\n'), /does not start with a PROXY header/);
  t.match(invalid('proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n'), /does not start/);
  t.match(invalid('PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n'), /protocol "TCP5"/);
  t.match(invalid('PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n'), /5 fields, not 6/);
  t.match(invalid('PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n'), /fields, not 6/);
  t.match(invalid('PROXY TCP4 ::1 1.2.3.4 1 2\r\n'), /not IPv4/);
  t.match(invalid('PROXY TCP6 1.2.3.4 ::1 1 2\r\n'), /not IPv6/);
  t.match(invalid('PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n'), /port/);
  t.match(invalid('PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n'), /port/);
  t.match(invalid('PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n'), /not printable/);
  t.match(invalid(`PROXY UNKNOWN ${'x'.repeat(100)}`), /longer than 107 bytes/);
  const exact = `PROXY UNKNOWN ${'x'.repeat(proxyV1Max - 16)}\r\n`;
  t.equal(exact.length, proxyV1Max);
  t.same(parseProxyHeader(latin(exact)), { kind: 'complete', length: 107, source: null });
  t.match(invalid(`PROXY UNKNOWN ${'x'.repeat(proxyV1Max - 15)}\r\n`), /longer than 107/);
});

t.test('v2: PROXY over TCP4 and TCP6, TLVs skipped, from spec bytes', async (t) => {
  const body4 = Buffer.from('7f000001c0a80001d43101bb', 'hex'); // 127.0.0.1 -> 192.168.0.1
  const tlv = Buffer.from('04000100', 'hex'); // PP2_TYPE_NOOP, one byte
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body4.length + tlv.length);
  const header = Buffer.concat([signature, Buffer.from([0x21, 0x11]), len, body4, tlv]);
  t.same(parseProxyHeader(Buffer.concat([header, latin('payload')])), {
    kind: 'complete',
    length: 16 + 12 + 4,
    source: {
      remoteAddress: '127.0.0.1',
      remotePort: 54321,
      localAddress: '192.168.0.1',
      localPort: 443,
    },
  });
  const peer = {
    kind: 'tcp' as const,
    remoteAddress: '2001:db8::7',
    remotePort: 40000,
    localAddress: '::1',
    localPort: 22,
  };
  const { kind, ...ends } = peer;
  t.equal(kind, 'tcp');
  const v6 = encodeProxyHeader('v2', peer);
  t.same(parseProxyHeader(v6), {
    kind: 'complete',
    length: 52,
    source: ends,
  });
  const v1 = encodeProxyHeader('v1', peer);
  t.same(parseProxyHeader(v1), {
    kind: 'complete',
    length: v1.length,
    source: ends,
  });
  for (let n = 1; n < header.length; n += 1) {
    t.same(parseProxyHeader(header.subarray(0, n)), { kind: 'incomplete' }, `${n} bytes`);
  }
});

t.test('v2: LOCAL, UNSPEC and UNIX name no client', async (t) => {
  const local = Buffer.concat([signature, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  t.same(parseProxyHeader(local), { kind: 'complete', length: 16, source: null });
  const localWithBody = Buffer.concat([
    signature,
    Buffer.from([0x20, 0x11, 0x00, 0x0c]),
    Buffer.alloc(12),
  ]);
  t.same(parseProxyHeader(localWithBody), { kind: 'complete', length: 28, source: null });
  const unix = Buffer.concat([signature, Buffer.from([0x21, 0x31, 0x00, 0xd8]), Buffer.alloc(216)]);
  t.same(parseProxyHeader(unix), { kind: 'complete', length: 232, source: null });
});

t.test('v2: malformed headers are invalid', async (t) => {
  const invalid = (bytes: number[], body = 0): string => {
    const parsed = parseProxyHeader(
      Buffer.concat([signature, Buffer.from(bytes), Buffer.alloc(body)]),
    );
    return parsed.kind === 'invalid' ? parsed.detail : `not invalid: ${parsed.kind}`;
  };
  t.match(invalid([0x11, 0x11, 0, 12], 12), /version 1/);
  t.match(invalid([0x22, 0x11, 0, 12], 12), /command 2/);
  t.match(invalid([0x21, 0x12, 0, 12], 12), /family 0x12/);
  t.match(invalid([0x21, 0x11, 0, 8], 8), /too short for its addresses/);
  t.match(invalid([0x21, 0x21, 0, 12], 12), /too short/);
  t.match(invalid([0x31]), /version 3/);
});

t.test('peek sizes stop at the end of a v2 header whose length is known', async (t) => {
  t.equal(proxyPeekSize(Buffer.alloc(0)), 107);
  t.equal(proxyPeekSize(latin('PROXY ')), 101);
  t.equal(proxyPeekSize(signature.subarray(0, 5)), 102);
  const head = Buffer.concat([signature, Buffer.from([0x21, 0x11, 0x01, 0x00])]);
  t.equal(proxyPeekSize(head), 256);
});

t.test('socket.proxyProtocol settings: defaults, trusted prefixes, problems', async (t) => {
  const problemsOf = (resolved: string[] | { problems: string[] }): string[] =>
    Array.isArray(resolved) ? ['schema: ', ...resolved] : resolved.problems;
  const resolve = (socket: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const base = { listen: 'tcp:127.0.0.1:0', exec: ['/bin/true'], socket, ...extra };
    const result = validateServiceFile('pp.json', base);
    if (!result.ok) return result.problems.map((p) => `${p.pointer}: ${p.message}`);
    const problems: string[] = [];
    const spec = resolveProxyHeader(result.value, (pointer, message) =>
      problems.push(`${pointer}: ${message}`),
    );
    return { spec, problems };
  };
  t.same(resolve({}), { spec: null, problems: [] });
  const plain = resolve({ proxyProtocol: true });
  t.same(plain, { spec: { timeoutMs: 5000, trusted: null, trustedText: null }, problems: [] });
  const trusted = resolve({
    proxyProtocol: true,
    proxyTrusted: ['10.0.0.0/29', '::1'],
    proxyHeaderTimeoutSec: 0.5,
  });
  if (Array.isArray(trusted) || trusted.spec?.trusted == null) throw new Error('no spec');
  t.equal(trusted.spec.timeoutMs, 500);
  const hit = (text: string): boolean => {
    const ip = parsePeerAddress(text);
    return ip !== null && findLongestMatch(trusted.spec?.trusted as PrefixList, ip) !== null;
  };
  t.ok(hit('10.0.0.7'));
  t.ok(hit('::ffff:10.0.0.1'), 'a v4-mapped sender is its IPv4 address');
  t.notOk(hit('10.0.0.8'));
  t.ok(hit('::1'));
  t.same(problemsOf(resolve({ proxyProtocol: true, proxyTrusted: ['10.0.0.1/8'] })), [
    '/socket/proxyTrusted/0: "10.0.0.1/8" has host bits set; the network is 10.0.0.0/8',
  ]);
  t.same(problemsOf(resolve({ proxyProtocol: true }, { accept: false })), [
    '/socket/proxyProtocol: needs accept: true (an accept: false process reads its connections itself)',
  ]);
  t.ok(Array.isArray(resolve({ proxyProtocol: true, proxyHeaderTimeoutSec: 0 })), 'schema: > 0');
});
