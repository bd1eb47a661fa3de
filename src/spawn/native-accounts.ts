import { createGetentLookup, type AccountLookup } from '../config/accounts.js';
import { loadNativeAddon, type NativeAddon } from './native-addon.js';

/**
 * The account database as config resolution sees it: through the native addon's
 * getpwnam_r/getgrnam_r/getgrouplist when it is built (NSS sources count, no process per
 * name), else through getent(1). A numeric string is a name first, then an id, as getent does.
 */
export function createSystemAccountLookup(): AccountLookup {
  const addon = loadNativeAddon();
  return addon === null ? createGetentLookup() : createNativeLookup(addon);
}

function createNativeLookup(addon: NativeAddon): AccountLookup {
  const byNameThenId = <T>(
    lookup: (key: string | number) => T | null,
    key: string | number,
  ): T | null =>
    orNull(() => lookup(key)) ??
    (typeof key === 'string' && /^\d+$/.test(key) ? orNull(() => lookup(Number(key))) : null);
  return {
    user: (key) => byNameThenId((k) => addon.lookupUser(k), key),
    group: (key) => byNameThenId((k) => addon.lookupGroup(k), key),
    groupList: (user, gid) => orNull(() => addon.groupList(user, gid)),
  };
}

/** A system error from a look-up (an NSS source down) counts as not found. */
function orNull<T>(lookup: () => T | null): T | null {
  try {
    return lookup();
  } catch {
    return null;
  }
}
