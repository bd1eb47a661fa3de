import type { AccessRules } from './rules.js';

/** A Unix peer's credentials as SO_PEERCRED gave them (null: unknown). */
export interface PeerIds {
  readonly uid: number | null;
  readonly gid: number | null;
}

/** Which rule decided a Unix peer (see `decideCredentials`). */
export type CredentialRule = 'no-lists' | 'uid' | 'gid' | 'no-match' | 'unknown';

export interface CredentialVerdict {
  readonly isAllowed: boolean;
  readonly rule: CredentialRule;
}

/**
 * Decides a Unix peer against `access.uids` and `access.gids`: with neither list set, allow;
 * otherwise allow when the peer's uid is in `access.uids` or its (primary) gid is in
 * `access.gids`, and deny when neither matches or the peer's credentials are unknown.
 * Supplementary groups are not consulted. A list set to `[]` matches nobody.
 */
export function decideCredentials(rules: AccessRules, { uid, gid }: PeerIds): CredentialVerdict {
  if (rules.uids === null && rules.gids === null) return { isAllowed: true, rule: 'no-lists' };
  if (uid !== null && rules.uids?.has(uid) === true) return { isAllowed: true, rule: 'uid' };
  if (gid !== null && rules.gids?.has(gid) === true) return { isAllowed: true, rule: 'gid' };
  return { isAllowed: false, rule: uid === null && gid === null ? 'unknown' : 'no-match' };
}

/** The decision in words, e.g. `allow uid 1000 in access.uids`. */
export function describeCredentialVerdict(
  v: CredentialVerdict,
  { uid, gid }: PeerIds,
  rules: AccessRules,
): string {
  const lists = [
    rules.uids === null ? '' : 'access.uids',
    rules.gids === null ? '' : 'access.gids',
  ];
  switch (v.rule) {
    case 'no-lists':
      return 'allow: no access.uids or access.gids list';
    case 'uid':
      return `allow uid ${uid ?? '?'} in access.uids`;
    case 'gid':
      return `allow gid ${gid ?? '?'} in access.gids`;
    case 'unknown':
      return 'deny: peer credentials unknown';
    case 'no-match':
      return `deny uid ${uid ?? '?'} gid ${gid ?? '?'}: no match in ${lists.filter(Boolean).join(' or ')}`;
  }
}
