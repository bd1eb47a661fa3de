import schema from '../../schema/service.schema.json' with { type: 'json' };
import { resolveLimits } from '../limits/settings.js';
import type { SettingsProblem } from '../model/problem.js';
import { parseListenAddress } from './listen-address.js';
import type { ActivationSpec, ListenAddress, ServiceFile } from './types.js';

/** The keys of a service file that `accept: false` reads or refuses. */
export type ActivationSettings = Pick<
  ServiceFile,
  | 'accept'
  | 'listenerOn'
  | 'start'
  | 'restart'
  | 'fdName'
  | 'fdStoreMax'
  | 'stderr'
  | 'limits'
  | 'access'
> &
  Partial<Pick<ServiceFile, 'listen' | 'builtin'>>;

export interface ResolvedActivation {
  /** null: `accept: true`, a handler per connection. */
  readonly activation: ActivationSpec | null;
  /** Errors (what cannot work with `accept: false`) and warnings (keys without effect). */
  readonly problems: readonly SettingsProblem[];
}

/**
 * `limits` keys that decide on accepted connections or on handlers per connection: with
 * `accept: false` the daemon accepts nothing, so there is nothing for them to decide.
 */
const perConnectionLimits = [
  'instances',
  'perSource',
  'rate',
  'perSourceRate',
  'maxLoad',
  'runtimeMaxSec',
  'banner',
] as const;

/** `limits` keys that only matter with `onLimit` (refused when not at their default). */
const onLimitKeys = ['onLimit', 'queueSize', 'queueTimeoutSec'] as const;

/** What `limits` is when the file sets nothing (the schema's defaults). */
const defaultLimits = resolveLimits(undefined);

/** The activation keys that have no effect with `accept: true`, with their defaults. */
const activationKeys = ['listenerOn', 'start', 'restart'] as const;

/**
 * `accept`, `listenerOn`, `start`, `restart`, `fdName` and `fdStoreMax` of a schema-valid service file (pure):
 * the activation spec of an `accept: false` service, and what cannot work with it (refused, each
 * with its pointer), or the activation keys an `accept: true` service sets to no effect (warned).
 */
export function resolveActivation(
  name: string,
  value: ActivationSettings,
  listen: readonly ListenAddress[],
): ResolvedActivation {
  if (value.accept)
    return {
      activation: null,
      problems: [...findDatagrams(value), ...findFdStore(value), ...findUnusedKeys(value)],
    };
  const activation: ActivationSpec = {
    listenerOn: value.listenerOn,
    start: value.start,
    restart: value.restart,
    fdName: value.fdName ?? name,
    fdStoreMax: value.fdStoreMax,
  };
  return { activation, problems: findConflicts(value, listen) };
}

function findConflicts(
  value: ActivationSettings,
  listen: readonly ListenAddress[],
): SettingsProblem[] {
  const refuse = (pointer: string, why: string): SettingsProblem => ({
    pointer,
    message: `cannot work with accept: false (${why})`,
    severity: 'error',
  });
  const accepts = 'the process accepts its connections itself';
  const out: SettingsProblem[] = [];
  for (const key of perConnectionLimits)
    if (value.limits[key] !== undefined) out.push(refuse(`/limits/${key}`, accepts));
  const limits = resolveLimits(value.limits);
  for (const key of onLimitKeys)
    if (limits[key] !== defaultLimits[key]) out.push(refuse(`/limits/${key}`, accepts));
  if (value.access !== undefined)
    out.push(refuse('/access', `${accepts}: socketeer sees no peer to decide on`));
  if (value.stderr === 'socket')
    out.push(refuse('/stderr', 'there is no connection to write it to; use log or null'));
  if (value.listenerOn === 'stdin' && listen.length > 1)
    out.push(
      refuse('/listenerOn', `stdin holds one listening socket and listen has ${listen.length}`),
    );
  if (value.listenerOn === 'stdin' && value.fdStoreMax > 0)
    out.push(
      refuse(
        '/fdStoreMax',
        'listenerOn stdin passes no LISTEN_FDS to give stored fds back in; use fd3 or fdStoreMax 0',
      ),
    );
  return out;
}

/**
 * `udp:` addresses of an `accept: true` service: there is no connection to hand a handler (a
 * `builtin` service answers datagrams itself).
 */
function findDatagrams({ listen, builtin, limits }: ActivationSettings): SettingsProblem[] {
  const texts = typeof listen === 'string' ? [listen] : (listen ?? []);
  if (builtin !== undefined) {
    const unbounded = limits.rate === undefined && limits.perSourceRate === undefined;
    if (!unbounded || !texts.some(isDatagram)) return [];
    const message =
      'a builtin on udp answers every datagram it admits: without limits.rate or limits.perSourceRate nothing bounds what it sends (reflection)';
    return [{ pointer: '/limits', message, severity: 'warning' }];
  }
  return texts.flatMap((text, index) =>
    isDatagram(text)
      ? [
          {
            pointer: typeof listen === 'string' ? '/listen' : `/listen/${index}`,
            message:
              'udp needs accept: false or builtin: a handler per connection (accept: true) needs a stream socket, and UDP has no connections',
            severity: 'error' as const,
          },
        ]
      : [],
  );
}

/** `fdStoreMax` on a service that accepts: its handlers get no notify socket nor fd store. */
function findFdStore({ fdStoreMax }: ActivationSettings): SettingsProblem[] {
  if (fdStoreMax === 0) return [];
  return [
    {
      pointer: '/fdStoreMax',
      message:
        'needs accept: false: the fd store keeps fds for the one process of a service that takes its sockets, and handlers per connection have none',
      severity: 'error',
    },
  ];
}

function isDatagram(text: string): boolean {
  const parsed = parseListenAddress(text);
  return parsed.ok && parsed.address.kind === 'udp';
}

function findUnusedKeys(value: ActivationSettings): SettingsProblem[] {
  const unused = (key: string): SettingsProblem => ({
    pointer: `/${key}`,
    message: 'has no effect: the service accepts its connections (accept: true)',
    severity: 'warning',
  });
  const out: SettingsProblem[] = [];
  for (const key of activationKeys)
    if (value[key] !== schema.properties[key].default) out.push(unused(key));
  if (value.fdName !== undefined) out.push(unused('fdName'));
  return out;
}
