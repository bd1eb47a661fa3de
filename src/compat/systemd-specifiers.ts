/**
 * systemd's specifiers in unit values (pure), as the system manager expands them. `%u` and `%h`
 * become socketeer's own (the user the service runs as, its home); the instance (`%i`, `%I`) of
 * an Accept=yes service is per connection in systemd (`N-LOCAL-PEER`): a problem. Specifiers
 * about the host (`%H`, `%m`, `%b`, ...) are problems too: they are not the same on every host.
 */
import { socketeerSpecifier } from './model.js';
import type { Maybe } from './values.js';

export interface SpecifierUnit {
  /** The unit file name: `git-daemon@.service`, `aptly.socket`. */
  readonly unit: string;
  /** `@` units started per connection (Accept=yes): the instance has no fixed value. */
  readonly perConnection: boolean;
}

const fixed: Record<string, string> = {
  t: '/run',
  S: '/var/lib',
  C: '/var/cache',
  L: '/var/log',
  E: '/etc',
  T: '/tmp',
  V: '/var/tmp',
  '%': '%',
};

export function expandUnitSpecifiers(text: string, unit: SpecifierUnit): Maybe<string> {
  let problem: string | null = null;
  const dot = unit.unit.lastIndexOf('.');
  const full = unit.unit.slice(0, dot);
  const [prefix = '', instance = ''] = full.split('@');
  const values: Record<string, string | null> = {
    ...fixed,
    n: unit.unit,
    N: full,
    p: prefix,
    P: unescapeName(prefix),
    u: socketeerSpecifier('u'),
    h: socketeerSpecifier('h'),
    i: unit.perConnection ? null : instance,
    I: unit.perConnection ? null : unescapeName(instance),
  };
  const result = text.replace(/%(.?)/g, (all, letter: string) => {
    const value = values[letter];
    if (value === undefined)
      problem ??= letter === '' ? 'a lone "%" at the end' : `specifier %${letter} is not supported`;
    else if (value === null)
      problem ??= `%${letter}: the instance of an Accept=yes service is per connection in systemd`;
    return value ?? '';
  });
  return problem === null ? { ok: true, value: result } : { ok: false, message: problem };
}

/** `\xNN` escapes of a unit name decoded (systemd-escape's inverse, without the path rules). */
function unescapeName(text: string): string {
  const bytes = Buffer.from(
    text.replace(/\\x([0-9a-fA-F]{2})/g, (_all, hex: string) =>
      String.fromCharCode(parseInt(hex, 16)),
    ),
    'latin1',
  );
  return bytes.toString('utf8');
}
