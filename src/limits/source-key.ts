import { formatCidr, prefixOf } from '../access/cidr.js';
import { normaliseAddress, parsePeerAddress } from '../access/ip.js';
import type { Peer } from '../model/peer.js';

/**
 * The source a peer counts as for `perSource` and `perSourceRate`:
 * - IPv4 (also v4-mapped): the address, `10.1.2.3`;
 * - IPv6: its prefix of `prefix6` bits, canonical, `2001:db8::/64` (`2001:db8::7/128` at 128);
 * - Unix: `uid:N` when the peer's uid is known, else `unix` (one source for all such peers);
 * - a TCP address that does not parse: the normalised text itself.
 */
export function sourceKeyOf(peer: Peer, prefix6: number): string {
  if (peer.kind === 'unix') return peer.uid === null ? 'unix' : `uid:${peer.uid}`;
  // The per-connection path: an address without a colon is IPv4 or does not parse, and either
  // way its key is the text itself (normaliseAddress only rewrites v4-mapped IPv6).
  if (!peer.remoteAddress.includes(':')) return peer.remoteAddress;
  const ip = parsePeerAddress(peer.remoteAddress);
  if (ip === null) return normaliseAddress(peer.remoteAddress);
  if (ip.version === 4) return normaliseAddress(peer.remoteAddress);
  return formatCidr(prefixOf(ip, prefix6));
}
