import schema from '../../schema/service.schema.json' with { type: 'json' };
import { parseListenAddress } from './listen-address.js';
import { serviceFileKeys, type ProxySpec, type ProxyTarget, type ServiceFile } from './types.js';

/** The keys of a service file that choose between a handler and a proxy. */
export type ProxySettings = Partial<ServiceFile> & Pick<ServiceFile, 'accept'>;

export interface ResolvedProxy {
  /** null: an `exec` service (or a problem). */
  readonly proxy: ProxySpec | null;
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

/** The handler keys a proxy service sets to anything but their default: each a warning. */
function findHandlerKeys(value: ProxySettings): { pointer: string; message: string }[] {
  return handlerKeys
    .filter((key) => {
      const set = value[key];
      if (set === undefined) return false;
      const fallback = defaultOf(key);
      return fallback === undefined || canonical(set) !== canonical(fallback);
    })
    .map((key) => ({
      pointer: `/${key}`,
      message: 'has no effect on a proxy service (no handler runs; the daemon connects itself)',
    }));
}

/**
 * `exec` or `proxy` of a schema-valid service file (pure): exactly one of them, `proxy` only
 * with `accept: true`, its target parsed; the proxy keys refused on an `exec` service.
 */
export function resolveProxy(value: ProxySettings): ResolvedProxy {
  const problems: { pointer: string; message: string }[] = [];
  if (value.proxy === undefined) {
    if (value.exec === undefined)
      problems.push({ pointer: '/exec', message: 'is required (or proxy instead)' });
    for (const key of proxyOnlyKeys)
      if (value[key] !== undefined) problems.push({ pointer: `/${key}`, message: 'needs proxy' });
    return { proxy: null, problems, warnings: [] };
  }
  if (value.exec !== undefined)
    problems.push({ pointer: '/proxy', message: 'cannot be given with exec: use one of them' });
  if (!value.accept)
    problems.push({ pointer: '/proxy', message: 'needs accept true (the daemon accepts)' });
  const target = parseProxyTarget(value.proxy);
  if (!target.ok) problems.push({ pointer: '/proxy', message: target.message });
  if (problems.length > 0 || !target.ok) return { proxy: null, problems, warnings: [] };
  const idle = value.proxyIdleTimeoutSec;
  return {
    proxy: {
      target: target.target,
      text: value.proxy,
      protocol: value.proxyProtocol ?? null,
      connectTimeoutMs: (value.proxyConnectTimeoutSec ?? defaultProxyConnectTimeoutSec) * 1000,
      idleTimeoutMs: idle === undefined ? null : idle * 1000,
    },
    problems,
    warnings: findHandlerKeys(value),
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
