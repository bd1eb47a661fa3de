/**
 * The xinetd attributes other than a service's identity, each mapped to its socketeer key:
 * limits (instances, per_source, cps, max_load), access (only_from, no_access, access_times),
 * the process (user, group, groups, env, passenv, umask, nice, rlimit_*), flags and disable.
 * A service with `wait = yes` (accept: false) has no connection to admit: limits and access
 * given by the service itself are problems, those from `defaults` notes.
 */
import type { Findings, ServiceBuilder } from './model.js';
import {
  parseAccessEntry,
  parseBoolean,
  parseInteger,
  parseLimitValue,
  parseTimeWindow,
  parseUmask,
} from './values.js';
import type { XinetdValue } from './xinetd-attributes.js';

export interface OptionsContext {
  readonly findings: Findings;
  readonly builder: ServiceBuilder;
  /** false for `wait = yes`. */
  readonly accept: boolean;
}

type Handler = (value: XinetdValue, ctx: OptionsContext) => void;

/** Handled by xinetd-map.ts (the identity of the service). */
const identity = new Set([
  'type',
  'id',
  'socket_type',
  'protocol',
  'wait',
  'port',
  'bind',
  'interface',
  'server',
  'server_args',
]);

const noEffect: Record<string, string> = {
  log_type: 'socketeer writes its own log (accept, refuse and end records)',
  log_on_success:
    'socketeer logs every connection and its end with the peer, pid, exit and duration',
  log_on_failure: 'socketeer logs every refusal with its reason',
  v6only: 'socketeer binds tcp:[::]:PORT as the kernel default decides; use bind to choose',
  deny_time: 'cps refusals heal by themselves (a token bucket); nothing is shut for a time',
  mdns: 'socketeer announces nothing',
  libwrap: 'socketeer has no TCP wrappers; use only_from and no_access',
};

const flagEffects: Record<string, [string, boolean] | string | null> = {
  NODELAY: ['/socket/noDelay', true],
  KEEPALIVE: ['/socket/keepAlive', true],
  IPv4: null,
  IPv6: null,
  NAMEINARGS: null,
  REUSE: 'socketeer always sets SO_REUSEADDR on TCP listeners',
  NORETRY: 'a failed spawn is logged and the connection closed; nothing is retried',
  NOLIBWRAP: 'socketeer has no TCP wrappers',
  IDONLY: '',
  INTERCEPT: '',
  SENSOR: '',
  LABELED: '',
  DISABLE: null,
};

export function mapOptions(
  attributes: ReadonlyMap<string, XinetdValue>,
  ctx: OptionsContext,
): void {
  for (const [name, value] of attributes) {
    if (identity.has(name)) continue;
    const reason = noEffect[name];
    if (reason !== undefined) ctx.findings.note(value.origin, `accepted, no effect: ${reason}`);
    else if (name.startsWith('rlimit_')) mapRlimit(value, ctx);
    else {
      const handler = handlers[name];
      if (handler === undefined) ctx.findings.problem(value.origin, 'not supported');
      else if (admission.has(name) && !ctx.accept) refuseForWait(value, ctx);
      else handler(value, ctx);
    }
  }
}

const admission = new Set([
  'instances',
  'per_source',
  'cps',
  'max_load',
  'only_from',
  'no_access',
  'access_times',
  'banner_fail',
]);

function refuseForWait(value: XinetdValue, ctx: OptionsContext): void {
  const message =
    'with wait = yes the process accepts by itself: socketeer has no connection to admit';
  if (value.fromDefaults)
    ctx.findings.note(value.origin, `from defaults, no effect here: ${message}`);
  else ctx.findings.problem(value.origin, `not honoured: ${message}`);
}

function single(value: XinetdValue, ctx: OptionsContext): string | null {
  if (value.values.length === 1) return value.values[0] ?? null;
  ctx.findings.problem(value.origin, value.values.length === 0 ? 'no value' : 'one value expected');
  return null;
}

/** A count or UNLIMITED (no key). */
function count(pointer: string): Handler {
  return (value, ctx) => {
    const text = single(value, ctx);
    if (text === null || text === 'UNLIMITED') return;
    const parsed = parseInteger(text, 1, 2 ** 31 - 1);
    if (parsed.ok) ctx.builder.set(pointer, parsed.value, value.origin);
    else ctx.findings.problem(value.origin, `${parsed.message} or UNLIMITED`);
  };
}

function accessList(pointer: string): Handler {
  return (value, ctx) => {
    const entries: string[] = [];
    for (const text of value.values) {
      const parsed = parseAccessEntry(text);
      if (parsed.ok) entries.push(...parsed.value);
      else ctx.findings.problem(value.origin, parsed.message);
    }
    ctx.builder.set(pointer, entries, value.origin);
  };
}

const handlers: Record<string, Handler> = {
  instances: count('/limits/instances'),
  per_source: count('/limits/perSource'),
  only_from: accessList('/access/allow'),
  no_access: accessList('/access/deny'),
  cps: (value, ctx) => {
    const rate = Number(value.values[0]);
    if (value.values.length < 1 || value.values.length > 2 || !Number.isInteger(rate) || rate < 1) {
      ctx.findings.problem(value.origin, 'expected "cps = CONNECTIONS_PER_SECOND [WAIT_SECONDS]"');
      return;
    }
    ctx.builder.set('/limits/rate', { perSecond: rate, burst: rate }, value.origin);
  },
  max_load: (value, ctx) => {
    const load = Number(single(value, ctx) ?? 'x');
    if (Number.isFinite(load) && load > 0) ctx.builder.set('/limits/maxLoad', load, value.origin);
    else ctx.findings.problem(value.origin, 'expected a load average above 0');
  },
  access_times: (value, ctx) => {
    const windows = value.values.map((text) => parseTimeWindow(text));
    for (const w of windows) if (!w.ok) ctx.findings.problem(value.origin, w.message);
    ctx.builder.set(
      '/access/times',
      windows.flatMap((w) => (w.ok ? [w.value] : [])),
      value.origin,
    );
  },
  banner_fail: (value, ctx) =>
    ctx.findings.problem(
      value.origin,
      'not supported: write the text as limits.banner (with onLimit "banner") in a JSON service file',
    ),
  user: (value, ctx) => setText('/user', value, ctx),
  group: (value, ctx) => setText('/group', value, ctx),
  groups: (value, ctx) => {
    const yes = parseBoolean(single(value, ctx) ?? '');
    if (!yes.ok) ctx.findings.problem(value.origin, yes.message);
    else if (yes.value) ctx.builder.set('/groups', true, value.origin);
  },
  env: (value, ctx) => {
    for (const entry of value.values) {
      const at = entry.indexOf('=');
      if (at < 1) ctx.findings.problem(value.origin, `"${entry}" is not NAME=VALUE`);
      else ctx.builder.set(`/env/${entry.slice(0, at)}`, entry.slice(at + 1), value.origin);
    }
  },
  passenv: (value, ctx) => ctx.builder.set('/passEnv', [...new Set(value.values)], value.origin),
  umask: (value, ctx) => setParsed('/umask', parseUmask(single(value, ctx) ?? ''), value, ctx),
  nice: (value, ctx) =>
    setParsed('/nice', parseInteger(single(value, ctx) ?? '', -20, 19), value, ctx),
  disable: (value, ctx) => {
    const off = parseBoolean(single(value, ctx) ?? '');
    if (!off.ok) ctx.findings.problem(value.origin, off.message);
    else if (off.value) ctx.builder.set('/disabled', true, value.origin);
  },
  flags: mapFlags,
  banner: (value, ctx) =>
    ctx.findings.problem(value.origin, 'not supported: the handler writes its own greeting'),
  banner_success: (value, ctx) =>
    ctx.findings.problem(value.origin, 'not supported: the handler writes its own greeting'),
  redirect: (value, ctx) =>
    ctx.findings.problem(value.origin, 'not supported: socketeer does not proxy yet'),
};

function setText(pointer: string, value: XinetdValue, ctx: OptionsContext): void {
  const text = single(value, ctx);
  if (text !== null)
    ctx.builder.set(pointer, /^\d+$/.test(text) ? Number(text) : text, value.origin);
}

function setParsed<T>(
  pointer: string,
  parsed: { ok: true; value: T } | { ok: false; message: string },
  value: XinetdValue,
  ctx: OptionsContext,
): void {
  if (parsed.ok) ctx.builder.set(pointer, parsed.value, value.origin);
  else ctx.findings.problem(value.origin, parsed.message);
}

function mapFlags(value: XinetdValue, ctx: OptionsContext): void {
  for (const flag of value.values) {
    const effect = flagEffects[flag];
    if (effect === undefined || effect === '')
      ctx.findings.problem(value.origin, `flag ${flag} is not supported`);
    else if (typeof effect === 'string')
      ctx.findings.note(value.origin, `flag ${flag}: accepted, no effect: ${effect}`);
    else if (effect !== null) ctx.builder.set(effect[0], effect[1], value.origin);
  }
}

const rlimits: Record<string, string> = {
  rlimit_as: 'as',
  rlimit_cpu: 'cpu',
  rlimit_data: 'data',
  rlimit_files: 'nofile',
  rlimit_stack: 'stack',
};

function mapRlimit(value: XinetdValue, ctx: OptionsContext): void {
  const key = rlimits[value.origin.directive];
  if (key === undefined) {
    ctx.findings.problem(
      value.origin,
      'not supported (rlimit_as, rlimit_cpu, rlimit_data, rlimit_files, rlimit_stack are)',
    );
    return;
  }
  setParsed(`/rlimits/${key}`, parseLimitValue(single(value, ctx) ?? ''), value, ctx);
}
