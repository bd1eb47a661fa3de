/**
 * Values shared by the foreign formats: listen addresses, access entries, resource limits.
 * Each returns the socketeer value or a message saying why it cannot.
 */
import { isIP } from 'node:net';

export type Maybe<T> = { ok: true; value: T } | { ok: false; message: string };

const ok = <T>(value: T): Maybe<T> => ({ ok: true, value });
const fail = <T>(message: string): Maybe<T> => ({ ok: false, message });

/** `tcp:PORT`, `tcp:HOST:PORT` or `tcp:[V6]:PORT` (and `udp:`); host null: every address. */
export function formatListen(kind: 'tcp' | 'udp', host: string | null, port: number): string {
  if (host === null) return `${kind}:${port}`;
  return isIP(host) === 6 ? `${kind}:[${host}]:${port}` : `${kind}:${host}:${port}`;
}

/**
 * One entry of xinetd's only_from/no_access (or an inetd bind address) as access entries:
 * an address, a CIDR prefix, `0.0.0.0` (everyone), an IPv4 address whose rightmost zero
 * components are wildcards (`10.1.0.0` is 10.1/16), `{a,b}` factorized last components and
 * `localhost`. Host and network names are not resolved: a problem.
 */
export function parseAccessEntry(text: string): Maybe<string[]> {
  const factorized = /^(\d+(?:\.\d+){0,2})\.\{([\d,\s]+)\}$/.exec(text);
  if (factorized !== null) {
    const parts = (factorized[2] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '');
    // a shorter address is a network: 192.168.{1,2} is 192.168.1.0/24 and 192.168.2.0/24
    const pad = (address: string) => [...address.split('.'), '0', '0', '0'].slice(0, 4).join('.');
    const entries = parts.map((last) => parseAccessEntry(pad(`${factorized[1] ?? ''}.${last}`)));
    const bad = entries.find((e) => !e.ok);
    if (bad !== undefined) return bad;
    return ok(entries.flatMap((e) => (e.ok ? e.value : [])));
  }
  if (text === 'localhost') return ok(['127.0.0.1', '::1']);
  if (text === '0.0.0.0') return ok(['0.0.0.0/0']);
  const [address = '', prefix, ...rest] = text.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) {
    return fail(`"${text}" is not an address or a CIDR prefix (names are not resolved)`);
  }
  if (prefix !== undefined) return ok([text]);
  if (family === 4) return ok([ipv4Wildcard(address)]);
  return ok([address]);
}

/** `10.1.0.0` → `10.1.0.0/16` (xinetd: rightmost zero components are wildcards). */
function ipv4Wildcard(address: string): string {
  const parts = address.split('.');
  let bits = 32;
  for (let i = 3; i > 0 && parts[i] === '0'; i--) bits -= 8;
  return bits === 32 ? address : `${address}/${bits}`;
}

/**
 * A resource limit: a number, a size with K, M or G, `infinity`/`unlimited`/`UNLIMITED`.
 * `sizes`: whether K/M/G suffixes are allowed.
 */
export function parseLimitValue(text: string): Maybe<string | number> {
  if (/^(infinity|unlimited)$/i.test(text)) return ok('infinity');
  if (/^\d+$/.test(text)) return ok(Number(text));
  const sized = /^(\d+)([KMG])$/i.exec(text);
  if (sized !== null) return ok(`${sized[1] ?? ''}${(sized[2] ?? '').toUpperCase()}`);
  return fail(`"${text}" is not a number, a size with K, M or G, or infinity`);
}

/** `022` or `0022` → `"0022"`. */
export function parseUmask(text: string): Maybe<string> {
  if (!/^0?[0-7]{3}$/.test(text)) return fail(`"${text}" is not an octal umask such as 022`);
  return ok(text.padStart(4, '0'));
}

/** An integer within bounds. */
export function parseInteger(text: string, min: number, max: number): Maybe<number> {
  if (!/^-?\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    return fail(`"${text}" is not an integer within ${min}-${max}`);
  }
  return ok(Number(text));
}

/** systemd and xinetd booleans: yes/no, true/false, on/off, 1/0. */
export function parseBoolean(text: string): Maybe<boolean> {
  if (/^(yes|true|on|1)$/i.test(text)) return ok(true);
  if (/^(no|false|off|0)$/i.test(text)) return ok(false);
  return fail(`"${text}" is not a boolean (yes or no)`);
}

/** `H:MM-HH:MM` → `0H:MM-HH:MM` (access.times). */
export function parseTimeWindow(text: string): Maybe<string> {
  const match = /^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$/.exec(text);
  if (match === null) return fail(`"${text}" is not a time window HH:MM-HH:MM`);
  const [, h1 = '', m1, h2 = '', m2] = match;
  return ok(`${h1.padStart(2, '0')}:${m1 ?? ''}-${h2.padStart(2, '0')}:${m2 ?? ''}`);
}
