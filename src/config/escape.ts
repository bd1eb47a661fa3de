/**
 * systemd's unit name escaping (unit-name.c as shipped in systemd 252), on UTF-8 bytes, and the
 * syntax of socketeer service names (`NAME`, template `NAME@`, instance `NAME@INSTANCE`).
 */

/** An expected failure as a value: `error` is one human-readable line. */
export type Outcome<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

const succeed = <T>(value: T): Outcome<T> => ({ ok: true, value });
const fail = (error: string): Outcome<never> => ({ ok: false, error });

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/** Bytes kept as they are by escaping: systemd's VALID_CHARS minus `-` and `\`. */
function isPlainByte(byte: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) ||
    (byte >= 0x41 && byte <= 0x5a) ||
    (byte >= 0x61 && byte <= 0x7a) ||
    byte === 0x3a || // :
    byte === 0x5f || // _
    byte === 0x2e // .
  );
}

const escapeByte = (byte: number): string => `\\x${byte.toString(16).padStart(2, '0')}`;

/**
 * `unit_name_escape`: `/` becomes `-`; a leading `.` and every byte outside `[A-Za-z0-9:_.]`
 * (so also `-` and `\`) becomes `\xNN` with lowercase hex. The empty string escapes to itself.
 */
export function escapeName(text: string): string {
  let escaped = '';
  encoder.encode(text).forEach((byte, index) => {
    if (byte === 0x2f) escaped += '-';
    else if (isPlainByte(byte) && !(index === 0 && byte === 0x2e))
      escaped += String.fromCharCode(byte);
    else escaped += escapeByte(byte);
  });
  return escaped;
}

const hexValue = (char: string | undefined): number =>
  char !== undefined && /^[0-9a-fA-F]$/.test(char) ? parseInt(char, 16) : -1;

/**
 * `unit_name_unescape`, the exact inverse of escapeName: `-` becomes `/`, `\xNN` (either case)
 * the byte NN, anything else stays. A `\` not followed by `x` and two hex digits is an error, and
 * so are bytes that do not form UTF-8 (systemd would hand them out raw). A `\x00` decodes to a
 * NUL character here; systemd's C strings end at it.
 */
export function unescapeName(text: string): Outcome<string> {
  const bytes: number[] = [];
  for (let at = 0; at < text.length; at++) {
    const char = text[at] as string;
    if (char === '-') {
      bytes.push(0x2f);
    } else if (char === '\\') {
      const high = hexValue(text[at + 2]);
      const low = hexValue(text[at + 3]);
      if (text[at + 1] !== 'x' || high < 0 || low < 0) {
        return fail(`"\\" at offset ${at} is not followed by "x" and two hex digits`);
      }
      bytes.push(high * 16 + low);
      at += 3;
    } else {
      bytes.push(...encoder.encode(char));
    }
  }
  try {
    return succeed(strictDecoder.decode(new Uint8Array(bytes)));
  } catch {
    return fail('the unescaped bytes are not valid UTF-8');
  }
}

const NAME_MAX = 255;
const PATH_MAX = 4096;
const byteLength = (text: string): number => encoder.encode(text).length;
const componentsOf = (path: string): string[] =>
  path.split('/').filter((c) => c !== '' && c !== '.');

/** `path_is_valid`: not empty, no NUL, every component under NAME_MAX bytes, under PATH_MAX. */
function isValidPath(path: string): boolean {
  if (path === '' || path.includes('\0') || byteLength(path) >= PATH_MAX) return false;
  return componentsOf(path).every((component) => byteLength(component) <= NAME_MAX);
}

/** `path_is_normalized`: valid, no `..`, no `.` component, no `//`. */
function isNormalizedPath(path: string): boolean {
  if (!isValidPath(path) || componentsOf(path).includes('..')) return false;
  if (path === '.' || path.startsWith('./') || path.endsWith('/.') || path.includes('/./')) {
    return false;
  }
  return !path.includes('//');
}

/** `path_simplify`: drops `.` components and repeated or trailing slashes; keeps `..`. */
function simplifyPath(path: string): string {
  if (path === '') return '';
  const joined = componentsOf(path).join('/');
  if (path.startsWith('/')) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

export interface EscapedPath {
  readonly value: string;
  /** Set when the input escapes but will not unescape to the same string (systemd warns too). */
  readonly warning: string | null;
}

/**
 * `unit_name_path_escape` with systemd-escape's checks and messages: simplify, the root (or an
 * empty path) becomes `-`, otherwise strip the leading `/` and escape. `..` and paths that are
 * not valid after simplification are refused.
 */
export function escapePath(path: string): Outcome<EscapedPath> {
  const simplified = simplifyPath(path);
  let value: string;
  if (simplified === '' || simplified === '/') value = '-';
  else if (isNormalizedPath(simplified)) value = escapeName(simplified.replace(/^\//, ''));
  else return fail(`Input '${path}' is ${describePathFlaw(path)}, failed to escape.`);
  const flaw = !isValidPath(path) || !path.startsWith('/') ? describePathFlaw(path) : null;
  const warning =
    flaw === null
      ? null
      : `Input '${path}' is ${flaw}, escaping is likely not going to be reversible.`;
  return succeed({ value, warning });
}

function describePathFlaw(path: string): string {
  if (!isValidPath(path)) return 'not a valid file system path';
  if (!path.startsWith('/')) return 'not an absolute file system path';
  return 'not a normalized file system path';
}

/**
 * `unit_name_path_unescape`: `-` is the root; otherwise unescape, refuse a leading or trailing
 * `/`, prefix `/` and refuse a path that is not normalized. Like systemd, a `\x00` ends the string.
 */
export function unescapePath(text: string): Outcome<string> {
  if (text === '') return fail('an empty string is not an escaped path');
  if (text === '-') return succeed('/');
  const unescaped = unescapeName(text);
  if (!unescaped.ok) return unescaped;
  const relative = unescaped.value.split('\0')[0] as string;
  if (relative.startsWith('/') || relative.endsWith('/') || !isNormalizedPath(`/${relative}`)) {
    return fail(`"${text}" does not unescape to a normalized absolute path`);
  }
  return succeed(`/${relative}`);
}

/** The bytes systemd allows in a unit name prefix; an instance may also hold `@`. */
const prefixPattern = /^[A-Za-z0-9:_.\\-]+$/;
const instancePattern = /^[A-Za-z0-9:_.\\@-]+$/;
/** systemd's unit types: `--template=foo@.service` works as with systemd-escape. */
const unitSuffixes = new Set(
  ['json', 'service', 'socket', 'target', 'device', 'mount', 'automount', 'swap', 'timer', 'path']
    .concat(['slice', 'scope'])
    .map((type) => `.${type}`),
);
const UNIT_NAME_MAX = 256;

export interface TemplateName {
  readonly prefix: string;
  /** `''` (socketeer's bare `NAME@`), `.json`, or a systemd unit suffix such as `.service`. */
  readonly suffix: string;
}

/** Parses `--template=` values: `NAME@`, `NAME@.json`, or `NAME@.service` and the like. */
export function parseTemplateName(template: string): Outcome<TemplateName> {
  const at = template.indexOf('@');
  const prefix = template.slice(0, Math.max(at, 0));
  const suffix = template.slice(at + 1);
  const isValid =
    at > 0 &&
    prefixPattern.test(prefix) &&
    (suffix === '' || unitSuffixes.has(suffix)) &&
    byteLength(template) < UNIT_NAME_MAX;
  if (!isValid) return fail(`Template name ${template} is not valid.`);
  return succeed({ prefix, suffix });
}

/** `unit_name_replace_instance`: `NAME@` + escaped instance + suffix, at most 255 bytes. */
export function instantiateTemplate(template: TemplateName, instance: string): Outcome<string> {
  const name = `${template.prefix}@${instance}${template.suffix}`;
  const fileName = template.suffix === '' ? `${name}.json` : name;
  if (!instancePattern.test(instance) || byteLength(fileName) >= UNIT_NAME_MAX) {
    return fail(
      `cannot use "${instance}" as the instance of ${template.prefix}@${template.suffix}`,
    );
  }
  return succeed(name);
}

/** The instance part of `name` when it is an instance of `template` (`unit_name_to_instance`). */
export function extractInstance(name: string, template: TemplateName): Outcome<string> {
  const head = `${template.prefix}@`;
  const rest = name.startsWith(head) ? name.slice(head.length) : null;
  const instance = rest?.endsWith(template.suffix)
    ? rest.slice(0, rest.length - template.suffix.length)
    : '';
  if (!instancePattern.test(instance)) {
    return fail(`${name} is not an instance of ${head}${template.suffix}`);
  }
  return succeed(instance);
}

export interface ServiceName {
  /** The whole name, file name without `.json`: `echo`, `getty@`, `getty@ttyS2`. */
  readonly name: string;
  /** The part before `@` (the whole name when there is none). */
  readonly prefix: string;
  /** The instance as written (escaped); `''` for a template, null for a plain service. */
  readonly instance: string | null;
}

/** Parses the name of a service file (without `.json`) with systemd's unit name rules. */
export function parseServiceName(name: string): Outcome<ServiceName> {
  const at = name.indexOf('@');
  const prefix = at < 0 ? name : name.slice(0, at);
  const instance = at < 0 ? null : name.slice(at + 1);
  if (!prefixPattern.test(prefix)) {
    return fail(`invalid service name "${name}": ${describeBadChars(prefix)}`);
  }
  if (instance !== null && instance !== '') {
    if (!instancePattern.test(instance)) {
      return fail(`invalid instance "${instance}": ${describeBadChars(instance)}`);
    }
    const unescaped = unescapeName(instance);
    if (!unescaped.ok) return fail(`invalid instance "${instance}": ${unescaped.error}`);
    if (unescaped.value.includes('\0'))
      return fail(`invalid instance "${instance}": it holds \\x00`);
  }
  return succeed({ name, prefix, instance });
}

function describeBadChars(part: string): string {
  if (part === '') return 'the part before "@" is empty';
  const bad = [...part].find((char) => !/[A-Za-z0-9:_.\\@-]/.test(char)) ?? '@';
  return `"${bad}" is not allowed (escape it as ${escapeName(bad)}, see "socketeer escape")`;
}

/**
 * systemd-escape --mangle for socketeer: a valid service file name stays as it is; otherwise `/`
 * becomes `-`, bytes outside `[A-Za-z0-9:_.@\-]` become `\xNN`, and `.json` is appended.
 * Unlike systemd, absolute paths do not become `.mount` or `.device` names.
 */
export function mangleName(text: string): Outcome<string> {
  if (text === '') return fail('an empty string cannot be mangled into a service name');
  if (text.endsWith('.json') && parseServiceName(text.slice(0, -5)).ok) return succeed(text);
  let mangled = '';
  for (const byte of encoder.encode(text)) {
    const isKept = isPlainByte(byte) || byte === 0x40 || byte === 0x2d || byte === 0x5c;
    mangled += byte === 0x2f ? '-' : isKept ? String.fromCharCode(byte) : escapeByte(byte);
  }
  return succeed(`${mangled}.json`);
}
