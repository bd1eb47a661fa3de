import { formatIp, isV4Mapped, parseIp, widthOf, type IpAddress } from './ip.js';

/** A network prefix: the address with its host bits zero, and the prefix length. */
export interface Cidr {
  readonly version: 4 | 6;
  readonly network: bigint;
  readonly prefix: number;
}

export type CidrParse =
  { readonly ok: true; readonly cidr: Cidr } | { readonly ok: false; readonly message: string };

/**
 * Parses `ADDRESS` or `ADDRESS/PREFIX`. A bare address is a /32 (IPv4) or /128 (IPv6). An entry
 * written v4-mapped with a prefix of at least 96 (`::ffff:10.0.0.0/104`) is the IPv4 entry
 * (`10.0.0.0/8`). Host bits set below the prefix (`10.1.2.3/8`) are an error, never masked
 * silently.
 */
export function parseCidr(text: string): CidrParse {
  const [addressText = '', prefixText, extra] = text.split('/');
  const ip = parseIp(addressText);
  if (ip === null || extra !== undefined || addressText.includes('%')) {
    return { ok: false, message: `"${text}" is not an IPv4 or IPv6 address or CIDR prefix` };
  }
  const width = widthOf(ip.version);
  if (prefixText !== undefined && !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) {
    return { ok: false, message: `"${text}" has an invalid prefix length` };
  }
  const prefix = prefixText === undefined ? width : Number(prefixText);
  if (prefix > width) {
    return { ok: false, message: `"${text}" has a prefix longer than /${width}` };
  }
  const network = ip.value & maskOf(prefix, width);
  const cidr = toIpv4IfMapped({ version: ip.version, network, prefix });
  if (network !== ip.value) {
    return {
      ok: false,
      message: `"${text}" has host bits set; the network is ${formatCidr(cidr)}`,
    };
  }
  return { ok: true, cidr };
}

/** Canonical text: `10.0.0.0/8`, `2001:db8::/32`, `10.1.2.3/32`. */
export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ version: cidr.version, value: cidr.network })}/${cidr.prefix}`;
}

/** The prefix of `ip` of the given length, as a Cidr (e.g. the /64 an IPv6 peer belongs to). */
export function prefixOf(ip: IpAddress, prefix: number): Cidr {
  return { version: ip.version, network: ip.value & maskOf(prefix, widthOf(ip.version)), prefix };
}

/** A mask with the top `prefix` bits of `width` set. */
export function maskOf(prefix: number, width: number): bigint {
  return ((1n << BigInt(prefix)) - 1n) << BigInt(width - prefix);
}

function toIpv4IfMapped(cidr: Cidr): Cidr {
  if (cidr.prefix < 96 || !isV4Mapped({ version: cidr.version, value: cidr.network })) return cidr;
  return { version: 4, network: cidr.network & 0xffffffffn, prefix: cidr.prefix - 96 };
}

/** Prefixes compiled for longest-prefix lookup: per version, one map per prefix length. */
export interface PrefixList {
  readonly size: number;
  readonly levels: Readonly<Record<4 | 6, readonly PrefixLevel[]>>;
}

interface PrefixLevel {
  readonly prefix: number;
  readonly mask: bigint;
  readonly networks: ReadonlyMap<bigint, Cidr>;
}

/** Compiles prefixes for `findLongestMatch`. Duplicates are kept once. */
export function compilePrefixList(cidrs: readonly Cidr[]): PrefixList {
  return { size: cidrs.length, levels: { 4: buildLevels(cidrs, 4), 6: buildLevels(cidrs, 6) } };
}

function buildLevels(cidrs: readonly Cidr[], version: 4 | 6): PrefixLevel[] {
  const byPrefix = new Map<number, Map<bigint, Cidr>>();
  for (const cidr of cidrs) {
    if (cidr.version !== version) continue;
    const networks = byPrefix.get(cidr.prefix) ?? new Map<bigint, Cidr>();
    if (!networks.has(cidr.network)) networks.set(cidr.network, cidr);
    byPrefix.set(cidr.prefix, networks);
  }
  return [...byPrefix.entries()]
    .sort(([a], [b]) => b - a)
    .map(([prefix, networks]) => ({ prefix, mask: maskOf(prefix, widthOf(version)), networks }));
}

/**
 * The longest prefix of the list that contains `ip`, or null. IPv4 addresses are looked up among
 * IPv4 entries only, IPv6 among IPv6 entries only (unmap v4-mapped peers first).
 */
export function findLongestMatch(list: PrefixList, ip: IpAddress): Cidr | null {
  for (const level of list.levels[ip.version]) {
    const hit = level.networks.get(ip.value & level.mask);
    if (hit !== undefined) return hit;
  }
  return null;
}
