import { formatIp, parseIp } from '../access/ip.js';
import { proxyV2Signature } from '../model/proxy-header.js';

/**
 * Reading the PROXY protocol header (HAProxy's spec, v1 and v2) that a load balancer sends
 * before the client's first byte. Pure: the caller peeks at the socket, asks `parseProxyHeader`
 * about the bytes so far, and consumes exactly `length` bytes of a complete header.
 */

/** The client a header names: its address and port, and the address it connected to. */
export interface ProxySource {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

export type ProxyHeaderParse =
  /** Every byte so far belongs to a header that is not complete yet. */
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly detail: string }
  /**
   * A header of `length` bytes; `source` null: it names no TCP client (v1 UNKNOWN, v2 LOCAL,
   * UNSPEC or UNIX), so the connection's own addresses stand.
   */
  | { readonly kind: 'complete'; readonly length: number; readonly source: ProxySource | null };

/** The longest v1 header, `\r\n` included. */
export const proxyV1Max = 107;
/** The longest v2 header: 16 bytes and a 16-bit length. */
export const proxyV2Max = 16 + 0xffff;

const v1Prefix = Buffer.from('PROXY ', 'latin1');
const incomplete: ProxyHeaderParse = { kind: 'incomplete' };

/** What the bytes so far (from the connection's first byte) make. */
export function parseProxyHeader(bytes: Buffer): ProxyHeaderParse {
  if (isPrefixOf(bytes, proxyV2Signature)) {
    return parseV2(bytes);
  }
  if (isPrefixOf(bytes, v1Prefix))
    return bytes.length < v1Prefix.length ? incomplete : parseV1(bytes);
  return { kind: 'invalid', detail: 'the connection does not start with a PROXY header' };
}

/**
 * How many more bytes to peek at after `bytes` (a header's start, all of it consumed already):
 * up to the end of a v2 header whose length is known, else up to the longest v1 header.
 */
export function proxyPeekSize(bytes: Buffer): number {
  if (bytes.length >= 16 && isPrefixOf(proxyV2Signature, bytes.subarray(0, 12))) {
    return Math.max(1, 16 + bytes.readUInt16BE(14) - bytes.length);
  }
  return Math.max(1, proxyV1Max - bytes.length);
}

/** Whether the first bytes of `bytes` and `whole` agree over the shorter of the two. */
function isPrefixOf(bytes: Buffer, whole: Buffer): boolean {
  const n = Math.min(bytes.length, whole.length);
  return bytes.subarray(0, n).equals(whole.subarray(0, n));
}

function parseV1(bytes: Buffer): ProxyHeaderParse {
  const end = bytes.indexOf('\r\n', 0, 'latin1');
  const scanned = end < 0 ? bytes.subarray(0, proxyV1Max) : bytes.subarray(0, end);
  if (scanned.some((byte) => byte < 0x20 && byte !== 0x0d) || scanned.some((b) => b > 0x7e)) {
    return { kind: 'invalid', detail: 'a v1 PROXY header with a byte that is not printable' };
  }
  if (end < 0 || end + 2 > proxyV1Max) {
    return bytes.length < proxyV1Max
      ? incomplete
      : { kind: 'invalid', detail: `a v1 PROXY header longer than ${proxyV1Max} bytes` };
  }
  const length = end + 2;
  const fields = bytes.toString('latin1', 0, end).split(' ');
  if (fields[1] === 'UNKNOWN') return { kind: 'complete', length, source: null };
  const source = v1Source(fields);
  return typeof source === 'string'
    ? { kind: 'invalid', detail: source }
    : { kind: 'complete', length, source };
}

/** The client of `PROXY TCP4|TCP6 src dst sport dport`, or what is wrong with the line. */
function v1Source(fields: readonly string[]): ProxySource | string {
  const [, family, source = '', dest = '', sourcePort = '', destPort = ''] = fields;
  if (family !== 'TCP4' && family !== 'TCP6') {
    return `a v1 PROXY header with protocol "${family ?? ''}" (not TCP4, TCP6 or UNKNOWN)`;
  }
  if (fields.length !== 6) return `a v1 PROXY header with ${fields.length} fields, not 6`;
  const version = family === 'TCP4' ? 4 : 6;
  const from = parseIp(source);
  const to = parseIp(dest);
  if (from?.version !== version || to?.version !== version || /[%]/.test(source + dest)) {
    return `a v1 PROXY header with an address that is not IPv${version}`;
  }
  const ports = [sourcePort, destPort].map(parsePort);
  const [remotePort, localPort] = ports;
  if (remotePort === undefined || localPort === undefined || ports.includes(null)) {
    return 'a v1 PROXY header with a port that is not 0 to 65535';
  }
  return {
    remoteAddress: formatIp(from),
    remotePort: remotePort as number,
    localAddress: formatIp(to),
    localPort: localPort as number,
  };
}

function parsePort(text: string): number | null {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return null;
  const port = Number(text);
  return port <= 0xffff ? port : null;
}

/** Family and transport bytes: TCP over IPv4 and IPv6 name a client; UNSPEC and UNIX do not. */
const tcp4 = 0x11;
const tcp6 = 0x21;
const nameless = new Set([0x00, 0x31, 0x32]);

function parseV2(bytes: Buffer): ProxyHeaderParse {
  const versionCommand = bytes[12];
  if (versionCommand === undefined) return incomplete;
  if (versionCommand >> 4 !== 2) {
    return { kind: 'invalid', detail: `a v2 PROXY header of version ${versionCommand >> 4}` };
  }
  const command = versionCommand & 0x0f;
  if (command > 1) return { kind: 'invalid', detail: `a v2 PROXY header with command ${command}` };
  if (bytes.length < 16) return incomplete;
  const family = bytes[13] ?? 0;
  const length = 16 + bytes.readUInt16BE(14);
  if (command === 1 && family !== tcp4 && family !== tcp6 && !nameless.has(family)) {
    const hex = family.toString(16).padStart(2, '0');
    return { kind: 'invalid', detail: `a v2 PROXY header for family 0x${hex} (not TCP)` };
  }
  const need = family === tcp4 ? 12 : family === tcp6 ? 36 : 0;
  if (command === 1 && length - 16 < need) {
    return { kind: 'invalid', detail: 'a v2 PROXY header too short for its addresses' };
  }
  if (bytes.length < length) return incomplete;
  if (command === 0 || need === 0) return { kind: 'complete', length, source: null };
  return { kind: 'complete', length, source: v2Source(bytes.subarray(16), family === tcp6) };
}

function v2Source(body: Buffer, v6: boolean): ProxySource {
  const size = v6 ? 16 : 4;
  const address = (offset: number): string =>
    formatIp(
      v6
        ? { version: 6, value: BigInt(`0x${body.toString('hex', offset, offset + size)}`) }
        : { version: 4, value: BigInt(body.readUInt32BE(offset)) },
    );
  return {
    remoteAddress: address(0),
    localAddress: address(size),
    remotePort: body.readUInt16BE(2 * size),
    localPort: body.readUInt16BE(2 * size + 2),
  };
}
