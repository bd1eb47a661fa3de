/**
 * systemd-style specifiers in every string value of a service (object keys are left alone):
 * `%i` the instance as written in the file name, `%I` that instance unescaped, `%p` the prefix
 * before `@`, `%n` the full service name (the file name without `.json`, e.g. `user-echo@alice`),
 * `%u` and `%h` the name and home of the user the service runs as, `%%` a percent sign.
 * The top-level `$schema` string is left as it is.
 */
import { unescapeName, type Outcome } from './escape.js';
import { appendPointer, isJsonObject } from './merge.js';

export interface SpecifierUser {
  readonly name: string;
  readonly home: string;
}

/**
 * Resolves the user for `%u`/`%h`: the service's `user` field (already expanded), or null when
 * it has none, meaning the daemon's own user. Called at most once per expansion, and only when
 * `%u` or `%h` is used.
 */
export type UserLookup = (user: string | number | null) => Outcome<SpecifierUser>;

export interface SpecifierContext {
  /** `%n`: the full service name without `.json`. */
  readonly name: string;
  /** `%p`: the part before `@` (the whole name for a plain service). */
  readonly prefix: string;
  /** `%i`: the escaped instance; null outside a template instance. */
  readonly instance: string | null;
  readonly lookupUser: UserLookup;
}

export interface SpecifierProblem {
  readonly pointer: string;
  readonly message: string;
}

export interface ExpandedValue<T> {
  readonly value: T;
  readonly problems: readonly SpecifierProblem[];
}

type Resolve = (specifier: string) => Outcome<string>;

/** The field naming the user that `%u` and `%h` describe. */
const userKey = 'user';
/** Metadata that is never expanded: a URL may well hold `%20`. */
const verbatimPointers = new Set(['/$schema']);

/** Expands specifiers in every string of `value`; problems carry the JSON pointer of the string. */
export function expandSpecifiers<T>(value: T, context: SpecifierContext): ExpandedValue<T> {
  const problems: SpecifierProblem[] = [];
  const basic = makeBasicResolver(context);
  const userPointer = appendPointer('', userKey);
  // The user field first, without %u and %h: it names the user they describe.
  const refuseUser: Resolve = (specifier) =>
    'uh'.includes(specifier)
      ? { ok: false, error: `specifier "%${specifier}" cannot be used in the ${userKey} field` }
      : basic(specifier);
  const user = makeWalker(
    refuseUser,
    problems,
    new Map(),
  )(isJsonObject(value) ? value[userKey] : undefined, userPointer);
  const resolve = makeUserResolver(basic, user, context.lookupUser);
  const walk = makeWalker(resolve, problems, new Map([[userPointer, user]]));
  return { value: walk(value, '') as T, problems };
}

/** A deep copy of a JSON value with specifiers expanded; `fixed` pointers keep the given value. */
function makeWalker(
  resolve: Resolve,
  problems: SpecifierProblem[],
  fixed: ReadonlyMap<string, unknown>,
): (node: unknown, pointer: string) => unknown {
  const walk = (node: unknown, pointer: string): unknown => {
    if (fixed.has(pointer)) return fixed.get(pointer);
    if (verbatimPointers.has(pointer)) return node;
    if (typeof node === 'string') {
      const expanded = expandString(node, resolve);
      problems.push(...expanded.problems.map((message) => ({ pointer, message })));
      return expanded.value;
    }
    if (Array.isArray(node)) return node.map((item, at) => walk(item, appendPointer(pointer, at)));
    if (!isJsonObject(node)) return node;
    const copy: Record<string, unknown> = {};
    for (const [key, member] of Object.entries(node)) {
      const expanded = walk(member, appendPointer(pointer, key));
      Object.defineProperty(copy, key, {
        value: expanded,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return copy;
  };
  return walk;
}

/** Adds %u and %h, looking the user up once, on first use. */
function makeUserResolver(basic: Resolve, user: unknown, lookupUser: UserLookup): Resolve {
  let account: Outcome<SpecifierUser> | null = null;
  return (specifier) => {
    if (specifier !== 'u' && specifier !== 'h') return basic(specifier);
    account ??= lookupUser(typeof user === 'string' || typeof user === 'number' ? user : null);
    if (!account.ok) return { ok: false, error: `cannot expand "%${specifier}": ${account.error}` };
    return { ok: true, value: specifier === 'u' ? account.value.name : account.value.home };
  };
}

function makeBasicResolver(context: SpecifierContext): Resolve {
  return (specifier) => {
    switch (specifier) {
      case '%':
        return { ok: true, value: '%' };
      case 'n':
        return { ok: true, value: context.name };
      case 'p':
        return { ok: true, value: context.prefix };
      case 'i':
      case 'I': {
        if (context.instance === null) {
          return { ok: false, error: `specifier "%${specifier}" used outside a template instance` };
        }
        if (specifier === 'i') return { ok: true, value: context.instance };
        const unescaped = unescapeName(context.instance);
        return unescaped.ok
          ? unescaped
          : { ok: false, error: `cannot expand "%I": ${unescaped.error}` };
      }
      default:
        return { ok: false, error: `unknown specifier "%${specifier}"` };
    }
  };
}

/** Expands one string; each distinct problem is reported once. */
export function expandString(
  text: string,
  resolve: Resolve,
): { value: string; problems: string[] } {
  const problems = new Set<string>();
  let value = '';
  const chars = Array.from(text);
  for (let at = 0; at < chars.length; at++) {
    const char = chars[at] as string;
    if (char !== '%') {
      value += char;
      continue;
    }
    const specifier = chars[++at];
    if (specifier === undefined) {
      problems.add('a lone "%" ends the string (write "%%" for a percent sign)');
      break;
    }
    const resolved = resolve(specifier);
    if (resolved.ok) value += resolved.value;
    else problems.add(resolved.error);
  }
  return { value, problems: [...problems] };
}
