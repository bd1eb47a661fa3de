import { findLongestMatch, formatCidr, type Cidr } from './cidr.js';
import { parsePeerAddress } from './ip.js';
import type { AccessRules } from './rules.js';

/** Which precedence rule decided a TCP peer (see `decideAddress`). */
export type AddressRule =
  | 'no-lists'
  | 'longest-allow'
  | 'longest-deny'
  | 'tie-deny'
  | 'no-allow-match'
  | 'no-deny-match'
  | 'no-match'
  | 'not-an-address';

export interface AddressVerdict {
  readonly isAllowed: boolean;
  readonly rule: AddressRule;
  /** The longest matching entry of each list (null: no match or no list). */
  readonly allowMatch: Cidr | null;
  readonly denyMatch: Cidr | null;
}

/**
 * Decides a TCP peer's address against `access.allow` and `access.deny`:
 *
 * 1. Neither list is set: allow.
 * 2. Otherwise the longest prefix matching the peer, across both lists, decides: allow when it
 *    is in `access.allow`, deny when it is in `access.deny`.
 * 3. The same prefix length matches in both lists: deny wins.
 * 4. Nothing matches: deny when `access.allow` is set (alone or with `access.deny`); allow when
 *    only `access.deny` is set.
 *
 * A list is set when its key is present, even as `[]` (so `"allow": []` denies every TCP peer).
 * An IPv4 peer, also when it arrives v4-mapped (`::ffff:10.1.2.3`), is matched against IPv4
 * entries only; an entry written v4-mapped (`::ffff:10.0.0.0/104`) is the IPv4 entry
 * `10.0.0.0/8`. An IPv6 peer is matched against IPv6 entries only. `0.0.0.0/0` matches every
 * IPv4 peer, `::/0` every IPv6 peer. A peer address that is not an IP address is denied when
 * either list is set.
 */
export function decideAddress(rules: AccessRules, address: string): AddressVerdict {
  if (rules.allow === null && rules.deny === null) return verdict('no-lists', null, null);
  const ip = parsePeerAddress(address);
  if (ip === null) return verdict('not-an-address', null, null);
  const allowMatch = rules.allow === null ? null : findLongestMatch(rules.allow, ip);
  const denyMatch = rules.deny === null ? null : findLongestMatch(rules.deny, ip);
  if (allowMatch !== null && denyMatch !== null) {
    if (allowMatch.prefix > denyMatch.prefix)
      return verdict('longest-allow', allowMatch, denyMatch);
    if (denyMatch.prefix > allowMatch.prefix) return verdict('longest-deny', allowMatch, denyMatch);
    return verdict('tie-deny', allowMatch, denyMatch);
  }
  if (allowMatch !== null) return verdict('longest-allow', allowMatch, null);
  if (denyMatch !== null) return verdict('longest-deny', null, denyMatch);
  if (rules.allow === null) return verdict('no-deny-match', null, null);
  return verdict(rules.deny === null ? 'no-allow-match' : 'no-match', null, null);
}

const allowingRules: ReadonlySet<AddressRule> = new Set([
  'no-lists',
  'longest-allow',
  'no-deny-match',
]);

function verdict(
  rule: AddressRule,
  allowMatch: Cidr | null,
  denyMatch: Cidr | null,
): AddressVerdict {
  return { isAllowed: allowingRules.has(rule), rule, allowMatch, denyMatch };
}

/** The decision in words, e.g. `deny 10.0.0.0/8 in access.deny`. */
export function describeAddressVerdict(v: AddressVerdict): string {
  const allow = v.allowMatch === null ? '' : `${formatCidr(v.allowMatch)} in access.allow`;
  const deny = v.denyMatch === null ? '' : `${formatCidr(v.denyMatch)} in access.deny`;
  switch (v.rule) {
    case 'no-lists':
      return 'allow: no access.allow or access.deny list';
    case 'longest-allow':
      return `allow ${allow}${deny === '' ? '' : `, longer than ${deny}`}`;
    case 'longest-deny':
      return `deny ${deny}${allow === '' ? '' : `, longer than ${allow}`}`;
    case 'tie-deny':
      return `deny ${deny}, as long as ${allow}`;
    case 'no-allow-match':
      return 'deny: no match in access.allow';
    case 'no-deny-match':
      return 'allow: no match in access.deny';
    case 'no-match':
      return 'deny: no match in access.allow or access.deny';
    case 'not-an-address':
      return 'deny: not an IP address';
  }
}
