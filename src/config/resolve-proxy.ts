import schema from '../../schema/service.schema.json' with { type: 'json' };
import { parseListenAddress } from './listen-address.js';
import {
  serviceFileKeys,
  type BuiltinName,
  type ProxySpec,
  type ProxyTarget,
  type ServiceFile,
} from './types.js';

/** The keys of a service file that choose between a handler, a proxy and a built-in. */
export type ProxySettings = Partial<ServiceFile> & Pick<ServiceFile, 'accept'>;

export interface ResolvedProxy {
  /** null: an `exec` or `builtin` service (or a problem). */
  readonly proxy: ProxySpec | null;
  /** A `builtin` service's protocol; null otherwise. */
  readonly builtin: BuiltinName | null;
  /** Each with its JSON pointer. */
  readonly problems: readonly { readonly pointer: string; readonly message: string }[];
  /** Keys set on a proxy service that only a handler reads (no effect). */
  readonly warnings: readonly { readonly pointer: string; readonly message: string }[];
}

/** `proxyConnectTimeoutSec` when the file does not set it. */
export const defaultProxyConnectTimeoutSec = 10;

const proxyOnlyKeys = ['proxyProtocol', 'proxyConnectTimeoutSec', 'proxyIdleTimeoutSec'] as const;

/** The keys that set up a handler process (`user` to `stderrRate`): a proxy service runs none. */
const handlerKeys = serviceFileKeys.slice(
  serviceFileKeys.indexOf('user'),
  serviceFileKeys.indexOf('stderrRate') + 1,
);

interface KeySchema {
  readonly default?: unknown;
  readonly properties?: Readonly<Record<string, { readonly default?: unknown }>>;
}

/** A key's default as validation fills it in (an object's properties their own defaults). */
function defaultOf(key: string): unknown {
  const sub = (schema.properties as Record<string, KeySchema>)[key];
  if (sub?.properties === undefined || sub.default === undefined) return sub?.default;
  const inner = Object.entries(sub.properties).filter(([, p]) => p.default !== undefined);
  return {
    ...(sub.default as object),
    ...Object.fromEntries(inner.map(([k, p]) => [k, p.default])),
  };
}

/** JSON with object keys sorted (`{burst, perSecond}` equals `{perSecond, burst}`). */
function canonical(value: unknown): string {
  const keys = value !== null && typeof value === 'object' ? Object.keys(value).sort() : null;
  return JSON.stringify(value, keys);
}

/** The handler keys a proxy or builtin service sets to anything but their default: warnings. */
function findHandlerKeys(
  value: ProxySettings,
  kind: 'proxy' | 'builtin',
): { pointer: string; message: string }[] {
  return handlerKeys
    .filter((key) => {
      const set = value[key];
      if (set === undefined) return false;
      const fallback = defaultOf(key);
      return fallback === undefined || canonical(set) !== canonical(fallback);
    })
    .map((key) => ({
      pointer: `/${key}`,
      message:
        kind === 'proxy'
          ? 'has no effect on a proxy service (no handler runs; the daemon connects itself)'
          : 'has no effect on a builtin service (no handler runs; the daemon serves it itself)',
    }));
}

/**
 * `exec`, `proxy` or `builtin` of a schema-valid service file (pure): exactly one of them,
 * `proxy` and `builtin` only with `accept: true`, a target parsed; the proxy keys refused
 * elsewhere.
 */
export function resolveProxy(value: ProxySettings): ResolvedProxy {
  const problems: { pointer: string; message: string }[] = [];
  if (value.proxy === undefined) {
    if (value.exec === undefined && value.builtin === undefined)
      problems.push({ pointer: '/exec', message: 'is required (or proxy or builtin instead)' });
    if (value.exec !== undefined && value.builtin !== undefined)
      problems.push({ pointer: '/builtin', message: 'cannot be given with exec: use one of them' });
    for (const key of proxyOnlyKeys)
      if (value[key] !== undefined) problems.push({ pointer: `/${key}`, message: 'needs proxy' });
    if (value.builtin !== undefined && !value.accept)
      problems.push({ pointer: '/builtin', message: 'needs accept true (the daemon serves it)' });
    const builtin = problems.length === 0 ? (value.builtin ?? null) : null;
    const warnings = builtin === null ? [] : findHandlerKeys(value, 'builtin');
    return { proxy: null, builtin, problems, warnings };
  }
  if (value.builtin !== undefined)
    problems.push({ pointer: '/builtin', message: 'cannot be given with proxy: use one of them' });
  if (value.exec !== undefined)
    problems.push({ pointer: '/proxy', message: 'cannot be given with exec: use one of them' });
  if (!value.accept)
    problems.push({ pointer: '/proxy', message: 'needs accept true (the daemon accepts)' });
  const target = parseProxyTarget(value.proxy);
  if (!target.ok) problems.push({ pointer: '/proxy', message: target.message });
  if (problems.length > 0 || !target.ok)
    return { proxy: null, builtin: null, problems, warnings: [] };
  const idle = value.proxyIdleTimeoutSec;
  return {
    proxy: {
      target: target.target,
      text: value.proxy,
      protocol: value.proxyProtocol ?? null,
      connectTimeoutMs: (value.proxyConnectTimeoutSec ?? defaultProxyConnectTimeoutSec) * 1000,
      idleTimeoutMs: idle === undefined ? null : idle * 1000,
    },
    builtin: null,
    problems,
    warnings: findHandlerKeys(value, 'proxy'),
  };
}

/** Parses a `proxy` target: `unix:/abs/path`, `unix:@name`, `tcp:HOST:PORT`, `tcp:[V6]:PORT`. */
export function parseProxyTarget(
  text: string,
): { ok: true; target: ProxyTarget } | { ok: false; message: string } {
  const syntax = 'expected unix:/abs/path, unix:@name, tcp:HOST:PORT or tcp:[V6]:PORT';
  if (!text.startsWith('tcp:') && !text.startsWith('unix:'))
    return { ok: false, message: `"${text}": ${syntax}` };
  const parsed = parseListenAddress(text);
  if (!parsed.ok) return parsed;
  const { address } = parsed;
  if (address.kind === 'unix') return { ok: true, target: address };
  if (address.kind !== 'tcp' || address.host === null || address.port === 0)
    return { ok: false, message: `"${text}": ${syntax} (a host and a port other than 0)` };
  return { ok: true, target: { kind: 'tcp', host: address.host, port: address.port } };
}
