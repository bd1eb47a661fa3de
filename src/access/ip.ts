import { isIP } from 'node:net';

/** An IP address as a number: 32 bits for IPv4, 128 bits for IPv6. */
export interface IpAddress {
  readonly version: 4 | 6;
  readonly value: bigint;
}

/** The top 96 bits of ::ffff:0:0/96, the IPv4-mapped IPv6 range. */
const v4MappedHigh = 0xffffn;
const low32 = 0xffffffffn;

/** The number of bits of an address of this version. */
export function widthOf(version: 4 | 6): number {
  return version === 4 ? 32 : 128;
}

/**
 * Parses an IPv4 or IPv6 address as written (an IPv6 zone, `%eth0`, is dropped). v4-mapped IPv6
 * addresses stay IPv6 here; see `parsePeerAddress` for matching. Returns null for anything else.
 */
export function parseIp(text: string): IpAddress | null {
  const bare = text.split('%', 1)[0] ?? '';
  const kind = isIP(bare);
  if (kind === 4) return { version: 4, value: parseIpv4(bare) };
  if (kind === 6) return { version: 6, value: parseIpv6(bare) };
  return null;
}

/** Parses a peer's address, turning a v4-mapped IPv6 address (`::ffff:1.2.3.4`) into IPv4. */
export function parsePeerAddress(text: string): IpAddress | null {
  const ip = parseIp(text);
  return ip === null ? null : unmapIpv4(ip);
}

/** The IPv4 address inside a v4-mapped IPv6 address, or the address unchanged. */
export function unmapIpv4(ip: IpAddress): IpAddress {
  return isV4Mapped(ip) ? { version: 4, value: ip.value & low32 } : ip;
}

/** Whether an IPv6 value lies in ::ffff:0:0/96. */
export function isV4Mapped(ip: IpAddress): boolean {
  return ip.version === 6 && ip.value >> 32n === v4MappedHigh;
}

/**
 * The address to use for limits, access rules, logs and env: a v4-mapped IPv6 address, as an
 * IPv4 peer appears on a dual-stack listener (`::ffff:1.2.3.4`), becomes `1.2.3.4`; anything
 * else is returned unchanged.
 */
export function normaliseAddress(address: string): string {
  // the per-connection path: every v4-mapped form has "ffff"; most peers have none
  if (!/ffff/i.test(address)) return address;
  const ip = parseIp(address);
  return ip !== null && isV4Mapped(ip) ? formatIp(unmapIpv4(ip)) : address;
}

/** Formats an address canonically: dotted quad, or RFC 5952 IPv6 (lower case, `::` rule). */
export function formatIp(ip: IpAddress): string {
  return ip.version === 4 ? formatIpv4(ip.value) : formatIpv6(ip.value);
}

function parseIpv4(text: string): bigint {
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function parseIpv6(text: string): bigint {
  const [head = '', tail] = text.split('::', 2);
  const left = splitGroups(head);
  const right = tail === undefined ? [] : splitGroups(tail);
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length;
  const groups = [...left, ...new Array<number>(zeros).fill(0), ...right];
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(group), 0n);
}

function splitGroups(text: string): number[] {
  if (text === '') return [];
  return text.split(':').flatMap((part) => {
    if (!part.includes('.')) return [parseInt(part, 16)];
    const v4 = Number(parseIpv4(part));
    return [Math.floor(v4 / 0x10000), v4 % 0x10000];
  });
}

function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

function formatIpv6(value: bigint): string {
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((s) =>
    Number((value >> s) & 0xffffn),
  );
  const run = findLongestZeroRun(groups);
  const hex = (part: number[]): string => part.map((g) => g.toString(16)).join(':');
  if (run === null) return hex(groups);
  return `${hex(groups.slice(0, run.start))}::${hex(groups.slice(run.start + run.length))}`;
}

/** The first longest run of at least two zero groups (RFC 5952 section 4.2). */
function findLongestZeroRun(groups: number[]): { start: number; length: number } | null {
  let best: { start: number; length: number } | null = null;
  let start = -1;
  for (let i = 0; i <= groups.length; i += 1) {
    if (i < groups.length && groups[i] === 0) {
      if (start < 0) start = i;
      continue;
    }
    const length = start < 0 ? 0 : i - start;
    if (length >= 2 && (best === null || length > best.length)) best = { start, length };
    start = -1;
  }
  return best;
}
