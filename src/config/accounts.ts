import { execFileSync } from 'node:child_process';

export interface UserEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
}

/** Looks users and groups up by name or numeric id; null when there is no such account. */
export interface AccountLookup {
  user(nameOrId: string | number): UserEntry | null;
  group(nameOrId: string | number): GroupEntry | null;
  /** The user's groups as initgroups(3) would set them (the primary gid included); null on failure. */
  groupList(user: string, gid: number): number[] | null;
}

/** The system's account database through getent(1), so NSS sources (LDAP, sssd) count too. */
export function createGetentLookup(): AccountLookup {
  const users = new Map<string, UserEntry | null>();
  const groups = new Map<string, GroupEntry | null>();
  return {
    user(key) {
      const k = String(key);
      if (!users.has(k)) users.set(k, parseUser(getent('passwd', k)));
      return users.get(k) ?? null;
    },
    group(key) {
      const k = String(key);
      if (!groups.has(k)) groups.set(k, parseGroup(getent('group', k)));
      return groups.get(k) ?? null;
    },
    groupList(user, gid) {
      const ids = run('id', ['-G', user])?.trim().split(/\s+/).map(Number) ?? null;
      if (ids === null || ids.some((n) => !Number.isInteger(n))) return null;
      return ids.includes(gid) ? ids : [gid, ...ids];
    },
  };
}

/**
 * `lookup` with every answer kept: one load of the configuration asks about the same few
 * accounts for each of its services, and sees one answer per account.
 */
export function cacheAccounts(lookup: AccountLookup): AccountLookup {
  const users = new Map<string, UserEntry | null>();
  const groups = new Map<string, GroupEntry | null>();
  const lists = new Map<string, number[] | null>();
  const remember = <T>(cache: Map<string, T>, key: string, ask: () => T): T => {
    if (!cache.has(key)) cache.set(key, ask());
    return cache.get(key) as T;
  };
  return {
    user: (key) => remember(users, `${typeof key} ${key}`, () => lookup.user(key)),
    group: (key) => remember(groups, `${typeof key} ${key}`, () => lookup.group(key)),
    groupList: (user, gid) => remember(lists, `${gid} ${user}`, () => lookup.groupList(user, gid)),
  };
}

function getent(database: string, key: string): string | null {
  return run('getent', [database, key]);
}

function run(program: string, args: string[]): string | null {
  try {
    return execFileSync(program, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return null;
  }
}

function parseUser(line: string | null): UserEntry | null {
  const fields = line?.split('\n')[0]?.split(':');
  if (fields === undefined || fields.length < 7) return null;
  return {
    name: fields[0] ?? '',
    uid: Number(fields[2]),
    gid: Number(fields[3]),
    home: fields[5] ?? '/',
  };
}

function parseGroup(line: string | null): GroupEntry | null {
  const fields = line?.split('\n')[0]?.split(':');
  if (fields === undefined || fields.length < 3) return null;
  return { name: fields[0] ?? '', gid: Number(fields[2]) };
}
