import {
  rlimitNames,
  type ProcessFeature,
  type ResourceLimit,
  type RlimitName,
} from '../model/spawn.js';
import type { AccountLookup } from './accounts.js';

/** The process-setup part of a service file, as validated. */
export interface ProcessSetupFile {
  readonly groups?: boolean | readonly (string | number)[];
  readonly rlimits?: Readonly<
    Partial<Record<RlimitName, LimitValue | { soft: LimitValue; hard: LimitValue }>>
  >;
  readonly umask?: string;
  readonly nice?: number;
  readonly chroot?: string;
  readonly noNewPrivileges: boolean;
}

export type LimitValue = number | string;

/** What the spawn plan needs, resolved once at load. */
export interface ProcessSetup {
  readonly groups: readonly number[] | null;
  readonly rlimits: readonly ResourceLimit[];
  readonly umask: number | null;
  readonly nice: number | null;
  readonly chroot: string | null;
  readonly noNewPrivileges: boolean;
}

/** The features of a setup the active spawner cannot honour, each with why. */
export type ProcessFeatureCheck = (
  setup: ProcessSetup,
) => readonly { feature: ProcessFeature; message: string }[];

export interface ProcessSetupContext {
  readonly accounts: AccountLookup;
  readonly isRoot: boolean;
  readonly checkProcessFeatures?: ProcessFeatureCheck | undefined;
  /** The user the handler runs as, when the service switches user. */
  readonly user: { readonly name: string; readonly gid: number } | null;
}

type Note = (pointer: string, message: string) => void;

/** Resolves groups, rlimits, umask, nice, chroot and no_new_privs (pure over the lookup). */
export function resolveProcessSetup(
  value: ProcessSetupFile,
  ctx: ProcessSetupContext,
  note: Note,
): ProcessSetup {
  const setup: ProcessSetup = {
    groups: resolveGroups(value.groups, ctx, note),
    rlimits: resolveRlimits(value.rlimits ?? {}, note),
    umask: value.umask === undefined ? null : parseInt(value.umask, 8),
    nice: value.nice ?? null,
    chroot: value.chroot ?? null,
    noNewPrivileges: value.noNewPrivileges,
  };
  if (!ctx.isRoot && setup.chroot !== null) note('/chroot', 'chroot needs a root daemon');
  if (!ctx.isRoot && setup.nice !== null && setup.nice < 0) {
    note('/nice', 'a nice value below 0 needs a root daemon');
  }
  for (const { feature, message } of ctx.checkProcessFeatures?.(setup) ?? []) {
    note(`/${feature}`, message);
  }
  return setup;
}

function resolveGroups(
  groups: ProcessSetupFile['groups'],
  ctx: ProcessSetupContext,
  note: Note,
): number[] | null {
  if (groups === undefined || groups === false) return null;
  if (!ctx.isRoot) {
    note('/groups', 'setting supplementary groups needs a root daemon');
    return null;
  }
  if (groups === true) {
    if (ctx.user === null) {
      note('/groups', 'true (the user\'s groups) needs "user"');
      return null;
    }
    const list = ctx.accounts.groupList(ctx.user.name, ctx.user.gid);
    if (list === null) note('/groups', `unable to list the groups of user "${ctx.user.name}"`);
    return list;
  }
  const gids: number[] = [];
  groups.forEach((key, i) => {
    const entry = ctx.accounts.group(key);
    if (entry === null) note(`/groups/${i}`, `unknown group ${JSON.stringify(key)}`);
    else gids.push(entry.gid);
  });
  return gids;
}

function resolveRlimits(
  rlimits: NonNullable<ProcessSetupFile['rlimits']>,
  note: Note,
): ResourceLimit[] {
  const out: ResourceLimit[] = [];
  for (const resource of rlimitNames) {
    const given = rlimits[resource];
    if (given === undefined) continue;
    const pair = typeof given === 'object' ? given : { soft: given, hard: given };
    const soft = parseLimit(pair.soft);
    const hard = parseLimit(pair.hard);
    const at = typeof given === 'object' ? `/rlimits/${resource}` : `/rlimits/${resource}`;
    if (soft === undefined)
      note(
        typeof given === 'object' ? `${at}/soft` : at,
        `${JSON.stringify(pair.soft)} is not a limit (a number, NK, NM, NG or "infinity")`,
      );
    if (hard === undefined && typeof given === 'object')
      note(
        `${at}/hard`,
        `${JSON.stringify(pair.hard)} is not a limit (a number, NK, NM, NG or "infinity")`,
      );
    if (soft === undefined || hard === undefined) continue;
    if (hard !== null && (soft === null || soft > hard)) {
      note(at, `soft limit ${formatLimit(soft)} is above the hard limit ${formatLimit(hard)}`);
      continue;
    }
    out.push({ resource, soft, hard });
  }
  return out;
}

const units: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** `1024`, `"64K"`, `"1M"`, `"2G"` (powers of 1024), `"infinity"`/`"unlimited"` (null). */
export function parseLimit(value: LimitValue): number | null | undefined {
  if (typeof value === 'number')
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (value === 'infinity' || value === 'unlimited') return null;
  const m = /^(\d+)([KMG]?)$/.exec(value);
  if (m === null) return undefined;
  const n = Number(m[1]) * (units[m[2] ?? ''] ?? 1);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function formatLimit(value: number | null): string {
  return value === null ? 'infinity' : String(value);
}
