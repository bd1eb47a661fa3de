import { isIPv4, isIPv6 } from 'node:net';
import type { Peer } from './peer.js';

/**
 * The PROXY protocol header (HAProxy's `send-proxy` / `send-proxy-v2`) that tells a proxy's
 * target who the client is, written before any byte of the client's. Pure.
 */
export type ProxyHeaderVersion = 'v1' | 'v2';

/** The v2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
export const proxyV2Signature = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);

/** Version 2 with PROXY (a relayed connection) or LOCAL (no address to tell). */
const v2Proxy = 0x21;
const v2Local = 0x20;
/** Address family and transport: TCP over IPv4, over IPv6, or unspecified. */
const tcp4 = 0x11;
const tcp6 = 0x21;
const unspec = 0x00;

/**
 * The header for `peer`: v1 `PROXY TCP4 src dst sport dport\r\n` (`TCP6` when either address is
 * IPv6, IPv4 ones then mapped), `PROXY UNKNOWN\r\n` for a Unix-socket client; v2 the binary
 * form, LOCAL with family UNSPEC for a Unix-socket client.
 */
export function encodeProxyHeader(version: ProxyHeaderVersion, peer: Peer): Buffer {
  const ends = peer.kind === 'tcp' ? tcpEnds(peer) : null;
  if (version === 'v1') {
    if (ends === null) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    const family = ends.v6 ? 'TCP6' : 'TCP4';
    const line = `PROXY ${family} ${ends.source} ${ends.dest} ${ends.sourcePort} ${ends.destPort}\r\n`;
    return Buffer.from(line, 'latin1');
  }
  if (ends === null) return Buffer.concat([proxyV2Signature, Buffer.from([v2Local, unspec, 0, 0])]);
  const size = ends.v6 ? 16 : 4;
  const body = Buffer.alloc(2 * size + 4);
  writeAddress(body, 0, ends.source, ends.v6);
  writeAddress(body, size, ends.dest, ends.v6);
  body.writeUInt16BE(ends.sourcePort, 2 * size);
  body.writeUInt16BE(ends.destPort, 2 * size + 2);
  const head = Buffer.from([v2Proxy, ends.v6 ? tcp6 : tcp4, 0, 0]);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([proxyV2Signature, head, body]);
}

interface TcpEnds {
  readonly v6: boolean;
  readonly source: string;
  readonly dest: string;
  readonly sourcePort: number;
  readonly destPort: number;
}

function tcpEnds(peer: Peer & { kind: 'tcp' }): TcpEnds {
  const v6 = isIPv6(peer.remoteAddress) || isIPv6(peer.localAddress);
  const as = (address: string): string => (v6 && isIPv4(address) ? `::ffff:${address}` : address);
  return {
    v6,
    source: as(peer.remoteAddress),
    dest: as(peer.localAddress),
    sourcePort: peer.remotePort,
    destPort: peer.localPort,
  };
}

function writeAddress(buffer: Buffer, offset: number, address: string, v6: boolean): void {
  if (!v6) {
    address.split('.').forEach((part, i) => buffer.writeUInt8(Number(part), offset + i));
    return;
  }
  ipv6Groups(address).forEach((group, i) => buffer.writeUInt16BE(group, offset + 2 * i));
}

/** The eight 16-bit groups of an IPv6 literal (`::` expanded, a dotted IPv4 tail included). */
function ipv6Groups(address: string): number[] {
  let text = address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((g) => parseInt(g, 16));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const zeros = new Array<number>(8 - left.length - right.length).fill(0);
  return [...left, ...zeros, ...right];
}
