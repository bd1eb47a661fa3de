import type { SettingsProblem } from '../model/problem.js';
import { compilePrefixList, formatCidr, parseCidr, type Cidr, type PrefixList } from './cidr.js';
import { parseTimeWindow, type TimeWindow } from './times.js';

/** The `access` object of a service file, as validated by the schema. */
export interface AccessSettings {
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
  readonly times?: readonly string[];
  readonly uids?: readonly number[];
  readonly gids?: readonly number[];
}

/** `access` compiled for matching; null: the key is not set. */
export interface AccessRules {
  readonly allow: PrefixList | null;
  readonly deny: PrefixList | null;
  readonly times: readonly TimeWindow[] | null;
  readonly uids: ReadonlySet<number> | null;
  readonly gids: ReadonlySet<number> | null;
}

/**
 * Compiles `access`. Every entry that does not parse is a problem (pointer `/access/allow/2`);
 * the rules are built from the valid entries, so use them only when there is no error.
 */
export function compileAccessRules(settings: AccessSettings | undefined): {
  rules: AccessRules;
  problems: SettingsProblem[];
} {
  const s = settings ?? {};
  const problems: SettingsProblem[] = [];
  const allow = parseList(s.allow, 'allow', problems);
  const deny = parseList(s.deny, 'deny', problems);
  if (allow !== null && deny !== null) problems.push(...findOverlaps(allow, deny));
  const times = s.times?.flatMap((text, i) => {
    const parsed = parseTimeWindow(text);
    if (parsed.ok) return [parsed.window];
    problems.push({ pointer: `/access/times/${i}`, message: parsed.message, severity: 'error' });
    return [];
  });
  const rules: AccessRules = {
    allow: allow === null ? null : compilePrefixList(allow.map((entry) => entry.cidr)),
    deny: deny === null ? null : compilePrefixList(deny.map((entry) => entry.cidr)),
    times: times ?? null,
    uids: s.uids === undefined ? null : new Set(s.uids),
    gids: s.gids === undefined ? null : new Set(s.gids),
  };
  return { rules, problems };
}

/** Checks `access` on its own: the problems of `compileAccessRules`. */
export function checkAccessSettings(settings: AccessSettings | undefined): SettingsProblem[] {
  return compileAccessRules(settings).problems;
}

function parseList(
  texts: readonly string[] | undefined,
  key: 'allow' | 'deny',
  problems: SettingsProblem[],
): ListEntry[] | null {
  if (texts === undefined) return null;
  return texts.flatMap((text, index) => {
    const parsed = parseCidr(text);
    if (parsed.ok) return [{ cidr: parsed.cidr, index }];
    problems.push({
      pointer: `/access/${key}/${index}`,
      message: parsed.message,
      severity: 'error',
    });
    return [];
  });
}

/** A parsed entry and its index in the list as written. */
interface ListEntry {
  readonly cidr: Cidr;
  readonly index: number;
}

function findOverlaps(allow: readonly ListEntry[], deny: readonly ListEntry[]): SettingsProblem[] {
  const allowed = new Set(allow.map((entry) => formatCidr(entry.cidr)));
  return deny.flatMap(({ cidr, index }) =>
    allowed.has(formatCidr(cidr))
      ? [
          {
            pointer: `/access/deny/${index}`,
            message: `${formatCidr(cidr)} is also in access.allow: deny wins`,
            severity: 'warning' as const,
          },
        ]
      : [],
  );
}
