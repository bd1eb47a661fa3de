import { decideAddress, describeAddressVerdict, type AddressVerdict } from './address-rule.js';
import { normaliseAddress } from './ip.js';
import {
  decideCredentials,
  describeCredentialVerdict,
  type CredentialVerdict,
  type Peer,
} from './peer.js';
import type { AccessRules } from './rules.js';
import { decideTime, describeTimeVerdict, type TimeVerdict } from './times.js';

/** An access step of the admission path: who (address or Unix credentials), then when. */
export type AccessCheck =
  | { readonly check: 'address'; readonly isAllowed: boolean; readonly verdict: AddressVerdict }
  | {
      readonly check: 'credentials';
      readonly isAllowed: boolean;
      readonly verdict: CredentialVerdict;
    }
  | { readonly check: 'time'; readonly isAllowed: boolean; readonly verdict: TimeVerdict };

/** `access.allow`/`access.deny` for a TCP peer, `access.uids`/`access.gids` for a Unix peer. */
export function checkPeerAccess(access: AccessRules, peer: Peer): AccessCheck {
  if (peer.family === 'unix') {
    const verdict = decideCredentials(access, peer.uid, peer.gid);
    return { check: 'credentials', isAllowed: verdict.isAllowed, verdict };
  }
  const verdict = decideAddress(access, normaliseAddress(peer.address));
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
      const { uid, gid } = peer.family === 'unix' ? peer : { uid: null, gid: null };
      return `access: ${describeCredentialVerdict(check.verdict, uid, gid, access)}`;
    }
    case 'time':
      return `access.times: ${describeTimeVerdict(check.verdict, access.times)}`;
  }
}
