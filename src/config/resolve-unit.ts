/**
 * Turns one assembled unit (template, instance and drop-ins merged, specifiers expanded) into the
 * ServiceSpec the daemon runs, naming in every problem the file that supplied the offending value.
 */
import type { AssembledUnit } from './assemble-units.js';
import { findProvenance } from './merge.js';
import { defaultHandlerUser, resolveService, type ResolveContext } from './resolve.js';
import type { UserLookup } from './specifiers.js';
import type { ServiceSpec } from './types.js';
import type { ConfigProblem } from '../model/problem.js';
import { findNulBytes, validateServiceFile } from './validate.js';

export type UnitResult = { ok: true; spec: ServiceSpec } | { ok: false; problems: ConfigProblem[] };

/** Schema validation with defaults, then resolution; `files` and `sources` come from the unit. */
export function resolveUnit(unit: AssembledUnit, ctx: ResolveContext): UnitResult {
  const file = definingFile(unit);
  const nulBytes = findNulBytes(file, unit.value);
  const validated = validateServiceFile(file, unit.value);
  if (!validated.ok || nulBytes.length > 0) {
    const problems = [...nulBytes, ...(validated.ok ? [] : validated.problems)];
    return { ok: false, problems: problems.map((p) => blameProblem(unit, p)) };
  }
  const resolved = resolveService(unit.name, file, validated.value, ctx);
  if (!resolved.ok) {
    return { ok: false, problems: resolved.problems.map((p) => blameProblem(unit, p)) };
  }
  const sources = Object.fromEntries(unit.provenance);
  const warnings = resolved.spec.warnings.map((w) => blameProblem(unit, w));
  return { ok: true, spec: { ...resolved.spec, files: [...unit.files], sources, warnings } };
}

/** The file that defines the unit: the service file itself (for an instance, the instance's). */
function definingFile(unit: AssembledUnit): string {
  return unit.provenance.get('') ?? unit.files[0] ?? unit.name;
}

/**
 * Moves a problem to the file that supplied the value at its pointer (or the nearest enclosing
 * value); a file other than the unit's own gets `(in NAME)`, since a template or a drop-in may
 * serve several services.
 */
export function blameProblem(unit: AssembledUnit, problem: ConfigProblem): ConfigProblem {
  const own = definingFile(unit);
  const file = findProvenance(unit.provenance, problem.pointer) ?? own;
  const message = file === own ? problem.message : `${problem.message} (in ${unit.name})`;
  return { file, pointer: problem.pointer, message };
}

/** The file that supplied the value at `pointer` of a resolved service. */
export function findSource(service: ServiceSpec, pointer: string): string {
  return findProvenance(new Map(Object.entries(service.sources)), pointer) ?? service.file;
}

/**
 * `%u` and `%h`: the service's user as the accounts lookup knows it; no user is the one resolution
 * gives a service with no `user` (defaultHandlerUser for a root daemon, else the daemon's own).
 */
export function makeUserLookup(ctx: ResolveContext): UserLookup {
  return (user) => {
    if (user === null && !ctx.isRoot)
      return { ok: true, value: { name: ctx.self.user, home: ctx.self.home } };
    if (typeof user === 'string' && user.includes('\0'))
      return { ok: false, error: 'the user contains a NUL byte' };
    const entry = ctx.accounts.user(user ?? defaultHandlerUser);
    if (entry === null && user === null)
      return { ok: false, error: `no user "${defaultHandlerUser}" for a service with no "user"` };
    if (entry === null) return { ok: false, error: `unknown user ${JSON.stringify(user)}` };
    return { ok: true, value: { name: entry.name, home: entry.home } };
  };
}
