import type { Peer } from '../model/peer.js';
import { decideAddress, describeAddressVerdict, type AddressVerdict } from './address-rule.js';
import {
  decideCredentials,
  describeCredentialVerdict,
  type CredentialVerdict,
} from './credential-rule.js';
import { normaliseAddress } from './ip.js';
import type { AccessRules } from './rules.js';
import { decideTime, describeTimeVerdict, type TimeVerdict } from './times.js';

/** One access step: which check ran, whether it let the peer in, and the verdict behind it. */
interface Checked<Name extends string, Verdict> {
  readonly check: Name;
  readonly isAllowed: boolean;
  readonly verdict: Verdict;
}

/** An access step of the admission path: who (address or Unix credentials), then when. */
export type AccessCheck =
  | Checked<'address', AddressVerdict>
  | Checked<'credentials', CredentialVerdict>
  | Checked<'time', TimeVerdict>;

/** `access.allow`/`access.deny` for a TCP peer, `access.uids`/`access.gids` for a Unix peer. */
export function checkPeerAccess(access: AccessRules, peer: Peer): AccessCheck {
  if (peer.kind === 'unix') {
    const verdict = decideCredentials(access, peer);
    return { check: 'credentials', isAllowed: verdict.isAllowed, verdict };
  }
  const verdict = decideAddress(access, normaliseAddress(peer.remoteAddress));
  return { check: 'address', isAllowed: verdict.isAllowed, verdict };
}

/** `access.times` at local `minuteOfDay`. */
export function checkAccessTime(access: AccessRules, minuteOfDay: number): AccessCheck {
  const verdict = decideTime(access.times, minuteOfDay);
  return { check: 'time', isAllowed: verdict.isAllowed, verdict };
}

/** An access check as `label: text`, e.g. `access: deny 10.0.0.0/8 in access.deny`. */
export function describeAccessCheck(check: AccessCheck, access: AccessRules, peer: Peer): string {
  switch (check.check) {
    case 'address':
      return `access: ${describeAddressVerdict(check.verdict)}`;
    case 'credentials': {
      const ids = peer.kind === 'unix' ? peer : { uid: null, gid: null };
      return `access: ${describeCredentialVerdict(check.verdict, ids, access)}`;
    }
    case 'time':
      return `access.times: ${describeTimeVerdict(check.verdict, access.times)}`;
  }
}
