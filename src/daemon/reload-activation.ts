import type { ServiceSpec } from '../config/types.js';
import { formatListenAddress } from '../config/listen-address.js';
import { formatProblem } from '../model/problem.js';

/**
 * What a reload cannot change for an `accept: false` service (pure), as problems in the grammar
 * of config problems: `accept` itself (the service's runner holds sockets or accepts, for good),
 * and the addresses of one that is bound (its process holds the sockets it was given). Every
 * other change takes effect at the process's next start.
 */
export function findActivationConflicts(
  current: readonly ServiceSpec[],
  next: readonly ServiceSpec[],
  unbound: ReadonlySet<string>,
): string[] {
  const byName = new Map(current.map((s) => [s.name, s]));
  const out: string[] = [];
  for (const spec of next) {
    const before = byName.get(spec.name);
    if (before === undefined) continue;
    const problem = (pointer: string, message: string): void =>
      void out.push(formatProblem({ file: spec.file, pointer, message }));
    if ((before.activation === null) !== (spec.activation === null))
      problem(
        '/accept',
        'a reload cannot change accept of a loaded service (remove it in one reload and add it back in the next)',
      );
    else if (spec.activation !== null && !unbound.has(spec.name) && !isSameListen(before, spec))
      problem(
        '/listen',
        'a reload cannot change the addresses of a bound accept: false service (stop it, reload, start it)',
      );
  }
  return out;
}

function isSameListen(a: ServiceSpec, b: ServiceSpec): boolean {
  const list = (s: ServiceSpec): string => s.listen.map(formatListenAddress).join(' ');
  return list(a) === list(b);
}
