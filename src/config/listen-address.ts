import { isIPv4, isIPv6 } from 'node:net';
import type { ListenAddress } from './types.js';

export type ParsedAddress = { ok: true; address: ListenAddress } | { ok: false; message: string };

const syntax =
  'expected tcp:HOST:PORT, tcp:[V6]:PORT, tcp:PORT, udp:HOST:PORT, udp:[V6]:PORT, udp:PORT, unix:/abs/path or unix:@name';

/** Parses one `listen` string. Hosts are IP literals; names are not resolved. */
export function parseListenAddress(text: string): ParsedAddress {
  if (text.startsWith('tcp:')) return parseInet('tcp', text.slice(4));
  if (text.startsWith('udp:')) return parseInet('udp', text.slice(4));
  if (text.startsWith('unix:')) return parseUnix(text.slice(5));
  return { ok: false, message: `"${text}": ${syntax}` };
}

function parseInet(kind: 'tcp' | 'udp', rest: string): ParsedAddress {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(rest);
  const plain = /^([^:]+):(\d+)$/.exec(rest);
  const portOnly = /^(\d+)$/.exec(rest);
  let host: string | null;
  let portText: string;
  if (bracketed !== null) {
    host = bracketed[1] ?? '';
    portText = bracketed[2] ?? '';
    if (!isIPv6(host))
      return { ok: false, message: `"${kind}:${rest}": "${host}" is not an IPv6 address` };
  } else if (plain !== null) {
    host = plain[1] ?? '';
    portText = plain[2] ?? '';
    if (!isIPv4(host))
      return {
        ok: false,
        message: `"${kind}:${rest}": "${host}" is not an IPv4 address (write IPv6 as [::1])`,
      };
  } else if (portOnly !== null) {
    host = null;
    portText = portOnly[1] ?? '';
  } else {
    return { ok: false, message: `"${kind}:${rest}": ${syntax}` };
  }
  const port = Number(portText);
  if (!Number.isInteger(port) || port > 65535)
    return { ok: false, message: `"${kind}:${rest}": port must be 0 to 65535` };
  return { ok: true, address: { kind, host, port } };
}

function parseUnix(rest: string): ParsedAddress {
  if (rest.startsWith('@')) {
    if (rest.length < 2) return { ok: false, message: '"unix:@": the abstract name is empty' };
    if (Buffer.byteLength(rest) > 108)
      return { ok: false, message: `"unix:${rest}": name longer than 107 bytes` };
    return { ok: true, address: { kind: 'unix', path: rest.slice(1), abstract: true } };
  }
  if (!rest.startsWith('/'))
    return { ok: false, message: `"unix:${rest}": the path must be absolute` };
  if (rest.endsWith('/'))
    return { ok: false, message: `"unix:${rest}": the path names a directory` };
  if (Buffer.byteLength(rest) > 107)
    return { ok: false, message: `"unix:${rest}": path longer than 107 bytes` };
  return { ok: true, address: { kind: 'unix', path: rest, abstract: false } };
}

/** The canonical text of an address, as logs and the readiness line show it. */
export function formatListenAddress(address: ListenAddress): string {
  if (address.kind === 'unix')
    return address.abstract ? `unix:@${address.path}` : `unix:${address.path}`;
  const { kind, host, port } = address;
  if (host === null) return `${kind}:${port}`;
  return isIPv6(host) ? `${kind}:[${host}]:${port}` : `${kind}:${host}:${port}`;
}

const wildcards = new Set(['0.0.0.0', '::']);

/** Whether binding both addresses would collide (port 0 never does; TCP and UDP never do). */
export function isSameBinding(a: ListenAddress, b: ListenAddress): boolean {
  if (a.kind === 'unix' || b.kind === 'unix') {
    return a.kind === 'unix' && b.kind === 'unix' && a.path === b.path && a.abstract === b.abstract;
  }
  if (a.kind !== b.kind) return false;
  if (a.port === 0 || a.port !== b.port) return false;
  const aWild = a.host === null || wildcards.has(a.host);
  const bWild = b.host === null || wildcards.has(b.host);
  if (a.host === null || b.host === null) return true;
  if (aWild && bWild) return a.host === b.host || a.host === '::' || b.host === '::';
  if (aWild || bWild)
    return isIPv4(a.host) === isIPv4(b.host) || a.host === '::' || b.host === '::';
  return a.host === b.host;
}
