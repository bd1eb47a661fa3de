import { compileAccessRules, type AccessRules, type AccessSettings } from '../access/rules.js';
import {
  checkLimitsSettings,
  resolveLimits,
  type LimitsSettings,
  type ResolvedLimits,
} from '../limits/settings.js';
import type { ConfigProblem, SettingsProblem } from '../model/problem.js';
import type { ListenAddress } from './types.js';

/** A service's `limits` and `access`, compiled once per configuration: what admission decides on. */
export interface AdmitPolicy {
  readonly limits: ResolvedLimits;
  readonly access: AccessRules;
}

/** The keys of a service file the policy is compiled from. */
export interface PolicySettings {
  readonly limits?: LimitsSettings;
  readonly access?: AccessSettings;
}

export interface ResolvedPolicy {
  readonly admitPolicy: AdmitPolicy;
  /** Errors: the service is invalid. */
  readonly problems: ConfigProblem[];
  /** Valid but without effect (or surprising): shown by check and logged by serve. */
  readonly warnings: ConfigProblem[];
}

/**
 * The one admission-policy compiler (the daemon's, `check`'s and the tests'): compiles `limits`
 * and `access` of a schema-valid service file, and adds what only the listeners tell: access
 * lists for a kind of peer the service never sees.
 */
export function resolvePolicy(
  file: string,
  value: PolicySettings,
  listen: readonly ListenAddress[],
): ResolvedPolicy {
  const access = compileAccessRules(value.access);
  const found = [
    ...checkLimitsSettings(value.limits),
    ...access.problems,
    ...findUnusedAccessLists(value, listen),
  ];
  const toProblem = (p: SettingsProblem): ConfigProblem => ({
    file,
    pointer: p.pointer,
    message: p.message,
  });
  return {
    admitPolicy: { limits: resolveLimits(value.limits), access: access.rules },
    problems: found.filter((p) => p.severity === 'error').map(toProblem),
    warnings: found.filter((p) => p.severity === 'warning').map(toProblem),
  };
}

function findUnusedAccessLists(
  value: PolicySettings,
  listen: readonly ListenAddress[],
): SettingsProblem[] {
  if (listen.length === 0) return [];
  const hasTcp = listen.some((a) => a.kind === 'tcp');
  const hasUnix = listen.some((a) => a.kind === 'unix');
  const access = value.access ?? {};
  const unused = (key: string, kind: string): SettingsProblem => ({
    pointer: `/access/${key}`,
    message: `has no effect: the service has no ${kind} listener`,
    severity: 'warning',
  });
  const out: SettingsProblem[] = [];
  for (const key of ['allow', 'deny'] as const)
    if (!hasTcp && access[key] !== undefined) out.push(unused(key, 'TCP'));
  for (const key of ['uids', 'gids'] as const)
    if (!hasUnix && access[key] !== undefined) out.push(unused(key, 'Unix'));
  return out;
}
