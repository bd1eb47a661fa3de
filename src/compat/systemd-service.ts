/**
 * The [Service] section of a socket-activated service in socketeer's terms (pure): ExecStart=
 * (quoting, prefixes, specifiers, $VARIABLES), the account, environment and process settings,
 * StandardInput/Output/Error, Restart= and RuntimeMaxSec=. Sandboxing settings (PrivateTmp=,
 * ProtectSystem=, ...) are problems: socketeer makes no namespaces, and dropping them silently
 * would weaken the service.
 */
import { entryOrigin, type UnitEntry } from './systemd-unit.js';
import { parseExecStart, splitWords, substituteVariables } from './systemd-exec.js';
import { expandUnitSpecifiers } from './systemd-specifiers.js';
import { socketeerSpecifier, type Findings, type ServiceBuilder } from './model.js';
import { parseBoolean, parseInteger, parseUmask, type Maybe } from './values.js';
import { mapEnvironmentFile, mapLimit, mapStdio } from './systemd-process.js';
import type { LoadedUnit } from './systemd-socket.js';

export interface ServiceSectionContext {
  readonly findings: Findings;
  readonly builder: ServiceBuilder;
  readonly accept: boolean;
  readonly service: LoadedUnit;
}

type Handler = (
  entry: UnitEntry,
  ctx: ServiceSectionContext & { env: Map<string, string> },
) => void;

export function mapServiceSection(
  settings: Map<string, UnitEntry[]>,
  ctx: ServiceSectionContext,
): void {
  const env = new Map<string, string>();
  const all = { ...ctx, env };
  for (const entry of settings.get('Environment') ?? []) mapEnvironment(entry, all);
  // as in systemd, a file's variables override Environment='s
  for (const entry of settings.get('EnvironmentFile') ?? []) mapEnvironmentFile(entry, all);
  const exec = settings.get('ExecStart') ?? [];
  if (exec.length !== 1) {
    const origin =
      exec[1] === undefined
        ? { file: ctx.service.file, line: 1, directive: 'ExecStart' }
        : entryOrigin(exec[1]);
    ctx.findings.problem(
      origin,
      exec.length === 0 ? 'missing' : 'more than one command is not supported',
    );
  }
  mapStdio(settings, all);
  if (!settings.has('User') && !settings.has('DynamicUser')) {
    const origin = { file: ctx.service.file, line: 1, directive: 'User (not set)' };
    const message =
      'systemd runs the service as root; socketeer as nobody (root daemon) or as itself: write User=root to keep root';
    ctx.findings.note(origin, message);
  }
  for (const [key, entries] of settings) {
    if (key.startsWith('Environment') || key.startsWith('Standard')) continue;
    for (const entry of entries) {
      const handler = key.startsWith('Limit') ? mapLimit : handlers[key];
      if (handler === undefined)
        ctx.findings.problem(
          entryOrigin(entry),
          sandboxing.has(key)
            ? 'not supported: socketeer makes no namespaces or sandbox; remove it only if the service is safe without'
            : 'not supported',
        );
      else handler(entry, all);
    }
  }
}

const sandboxing = new Set([
  'PrivateTmp',
  'PrivateDevices',
  'PrivateNetwork',
  'PrivateUsers',
  'ProtectSystem',
  'ProtectHome',
  'ProtectKernelTunables',
  'ProtectKernelModules',
  'ProtectControlGroups',
  'ReadOnlyPaths',
  'ReadWritePaths',
  'InaccessiblePaths',
  'CapabilityBoundingSet',
  'AmbientCapabilities',
  'SystemCallFilter',
  'RestrictAddressFamilies',
  'MemoryDenyWriteExecute',
  'LockPersonality',
  'RestrictNamespaces',
  'RestrictRealtime',
  'ProtectHostname',
  'ProtectClock',
  'ProtectKernelLogs',
  'IPAddressAllow',
  'IPAddressDeny',
  'MemoryMax',
  'CPUQuota',
  'TasksMax',
]);

function expand(text: string, ctx: ServiceSectionContext): Maybe<string> {
  return expandUnitSpecifiers(text, { unit: ctx.service.unit, perConnection: ctx.accept });
}

function setExpanded(pointer: string, entry: UnitEntry, ctx: ServiceSectionContext): void {
  const value = expand(entry.value, ctx);
  if (value.ok)
    ctx.builder.set(
      pointer,
      /^\d+$/.test(value.value) ? Number(value.value) : value.value,
      entryOrigin(entry),
    );
  else ctx.findings.problem(entryOrigin(entry), value.message);
}

function setParsed(pointer: string, parse: (text: string) => Maybe<unknown>): Handler {
  return (entry, ctx) => {
    const parsed = parse(entry.value);
    if (parsed.ok) ctx.builder.set(pointer, parsed.value, entryOrigin(entry));
    else ctx.findings.problem(entryOrigin(entry), parsed.message);
  };
}

function mapEnvironment(
  entry: UnitEntry,
  ctx: ServiceSectionContext & { env: Map<string, string> },
): void {
  const words = splitWords(entry.value);
  if (!words.ok) return ctx.findings.problem(entryOrigin(entry), words.message);
  for (const word of words.value) {
    const at = word.indexOf('=');
    const value = expand(word.slice(at + 1), ctx);
    if (at < 1 || !value.ok)
      ctx.findings.problem(
        entryOrigin(entry),
        value.ok ? `"${word}" is not NAME=VALUE` : value.message,
      );
    else {
      ctx.env.set(word.slice(0, at), value.value);
      ctx.builder.set(`/env/${word.slice(0, at)}`, value.value, entryOrigin(entry));
    }
  }
}

const note =
  (message: string): Handler =>
  (entry, ctx) =>
    ctx.findings.note(entryOrigin(entry), `accepted, no effect: ${message}`);

const handlers: Record<string, Handler> = {
  ExecStart: (entry, ctx) => {
    const line = parseExecStart(entry.value, (word) => {
      const expanded = expand(word, ctx);
      return expanded.ok ? substituteVariables(expanded.value, ctx.env) : expanded;
    });
    if (!line.ok) return ctx.findings.problem(entryOrigin(entry), line.message);
    ctx.builder.set('/exec', line.value.argv, entryOrigin(entry));
    if (line.value.prefixes.includes('-'))
      ctx.findings.note(
        entryOrigin(entry),
        'the "-" prefix: accepted; socketeer logs the exit status and nothing else depends on it',
      );
  },
  Type: (entry, ctx) => {
    if (['simple', 'exec'].includes(entry.value)) return;
    if (entry.value === 'notify')
      return note('socketeer sets no NOTIFY_SOCKET; the service is taken as ready when started')(
        entry,
        ctx,
      );
    ctx.findings.problem(
      entryOrigin(entry),
      `Type=${entry.value} is not supported (simple, exec, notify)`,
    );
  },
  User: (entry, ctx) => setExpanded('/user', entry, ctx),
  Group: (entry, ctx) => setExpanded('/group', entry, ctx),
  SupplementaryGroups: (entry, ctx) => {
    const old = (ctx.builder.json.groups as unknown[] | undefined) ?? [];
    const added = entry.value.split(/\s+/).map((g) => (/^\d+$/.test(g) ? Number(g) : g));
    ctx.builder.set('/groups', [...old, ...added], entryOrigin(entry));
  },
  DynamicUser: (entry, ctx) => {
    const yes = parseBoolean(entry.value);
    if (yes.ok && !yes.value) return;
    ctx.findings.problem(
      entryOrigin(entry),
      yes.ok ? 'not supported: name an account with User=' : yes.message,
    );
  },
  PassEnvironment: (entry, ctx) => {
    const old = (ctx.builder.json.passEnv as string[] | undefined) ?? [];
    ctx.builder.set(
      '/passEnv',
      [...new Set([...old, ...entry.value.split(/\s+/)])],
      entryOrigin(entry),
    );
  },
  WorkingDirectory: (entry, ctx) => {
    const text = entry.value.replace(/^-/, '');
    setExpanded('/cwd', { ...entry, value: text === '~' ? socketeerSpecifier('h') : text }, ctx);
  },
  RootDirectory: (entry, ctx) => setExpanded('/chroot', entry, ctx),
  UMask: setParsed('/umask', parseUmask),
  Nice: setParsed('/nice', (t) => parseInteger(t, -20, 19)),
  NoNewPrivileges: setParsed('/noNewPrivileges', parseBoolean),
  RuntimeMaxSec: (entry, ctx) => {
    const seconds = parseSeconds(entry.value);
    if (!ctx.accept)
      ctx.findings.problem(
        entryOrigin(entry),
        'not supported with Accept=no (socketeer limits handlers, not the one process)',
      );
    else if (seconds === null)
      ctx.findings.problem(
        entryOrigin(entry),
        `"${entry.value}" is not a time span (30, 30s, 5min, 1h)`,
      );
    else if (seconds !== Infinity)
      ctx.builder.set('/limits/runtimeMaxSec', seconds, entryOrigin(entry));
  },
  Restart: (entry, ctx) => {
    if (ctx.accept) return note('with Accept=yes a process serves one connection')(entry, ctx);
    if (['always', 'on-failure', 'no'].includes(entry.value))
      ctx.builder.set('/restart', entry.value, entryOrigin(entry));
    else
      ctx.findings.problem(
        entryOrigin(entry),
        `Restart=${entry.value} is not supported (always, on-failure, no)`,
      );
  },
  RestartSec: note('socketeer restarts after 100 ms, doubling up to 30 s on quick failures'),
  TimeoutStopSec: note('socketeer waits serve --kill-grace seconds between SIGTERM and SIGKILL'),
  KillMode: note('socketeer ends the whole process group'),
  SyslogIdentifier: note('stderr lines are logged with the service name'),
};

function parseSeconds(text: string): number | null {
  if (text === 'infinity') return Infinity;
  const match = /^(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr)?$/.exec(text);
  if (match === null) return null;
  const unit = { s: 1, sec: 1, m: 60, min: 60, h: 3600, hr: 3600 }[match[2] ?? 's'] ?? 1;
  return Number(match[1]) * unit;
}
