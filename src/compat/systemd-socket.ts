/**
 * A `NAME.socket` unit with its service (`NAME@.service` for Accept=yes, `NAME.service` or
 * Service= for Accept=no) as one socketeer service NAME (pure). The [Socket] settings are
 * mapped here, the [Service] ones by systemd-service.ts; [Unit] and [Install] settings that
 * only order or enable units are accepted and listed.
 */
import { Findings, ServiceBuilder, type CompatResult, type Origin } from './model.js';
import { mapServiceSection, type ServiceSectionContext } from './systemd-service.js';
import { collectSection, entryOrigin, type UnitEntry } from './systemd-unit.js';
import { formatListen, parseBoolean, parseInteger, parseUmask, type Maybe } from './values.js';

export interface LoadedUnit {
  /** The unit's file name: `aptly.socket`, `git-daemon@.service`. */
  readonly unit: string;
  /** The path problems name. */
  readonly file: string;
  /** The unit's entries, then its drop-ins'. */
  readonly entries: readonly UnitEntry[];
  /** The files its EnvironmentFile= settings name: their text, or null when unreadable. */
  readonly environmentFiles?: ReadonlyMap<string, string | null>;
  /** It, or one of its drop-ins, could not be read or parsed (a problem said so already). */
  readonly damaged?: boolean;
}

export interface SocketUnitInput {
  readonly socket: LoadedUnit;
  /** The service unit by file name, or null when there is none. */
  readonly findService: (unit: string) => LoadedUnit | null;
}

type Settings = Map<string, UnitEntry[]>;

export function mapSocketUnit(input: SocketUnitInput): CompatResult {
  const findings = new Findings();
  const { socket } = input;
  const name = socket.unit.slice(0, -'.socket'.length);
  const origin: Origin = { file: socket.file, line: 1, directive: '[Socket]' };
  if (name.includes('@')) {
    findings.problem(origin, 'socket templates (NAME@.socket) are not supported');
    return findings.result([]);
  }
  const settings = collectSection(socket.entries, 'Socket');
  const accept = readAccept(settings, findings);
  const serviceUnit = serviceUnitName(name, accept, settings, findings);
  const service = input.findService(serviceUnit);
  if (socket.damaged === true && socket.entries.length === 0) return findings.result([]);
  if (service === null) {
    findings.problem(
      settings.get('Accept')?.[0] === undefined ? origin : entryOrigin(lastOf(settings, 'Accept')),
      `no ${serviceUnit} beside it`,
    );
    return findings.result([]);
  }
  const builder = new ServiceBuilder();
  mapSocketSection(settings, { findings, builder, accept, name, origin });
  const unitInfo = { findings, builder, accept, service };
  mapUnitSections(socket, unitInfo);
  mapUnitSections(service, unitInfo);
  mapServiceSection(
    collectSection(service.entries, 'Service'),
    unitInfo satisfies ServiceSectionContext,
  );
  // a service with a problem is not passed on: validating it would repeat the problem
  const isWhole =
    findings.problems.length === 0 && socket.damaged !== true && service.damaged !== true;
  return findings.result(isWhole ? [builder.build(name, origin)] : []);
}

function lastOf(settings: Settings, key: string): UnitEntry {
  const list = settings.get(key) ?? [];
  return list[list.length - 1] as UnitEntry;
}

function readAccept(settings: Settings, findings: Findings): boolean {
  const entry = settings.get('Accept')?.at(-1);
  if (entry === undefined) return false;
  const parsed = parseBoolean(entry.value);
  if (!parsed.ok) findings.problem(entryOrigin(entry), parsed.message);
  return parsed.ok && parsed.value;
}

function serviceUnitName(
  name: string,
  accept: boolean,
  settings: Settings,
  findings: Findings,
): string {
  const named = settings.get('Service')?.at(-1);
  if (named === undefined) return accept ? `${name}@.service` : `${name}.service`;
  if (accept)
    findings.problem(entryOrigin(named), 'Service= is not allowed with Accept=yes (as in systemd)');
  return named.value;
}

interface SocketContext {
  readonly findings: Findings;
  readonly builder: ServiceBuilder;
  readonly accept: boolean;
  readonly name: string;
  readonly origin: Origin;
}

type Handler = (entry: UnitEntry, ctx: SocketContext) => void;

function mapSocketSection(settings: Settings, ctx: SocketContext): void {
  const listen: string[] = [];
  for (const [key, entries] of settings) {
    for (const entry of entries) {
      if (key === 'ListenStream' || key === 'ListenDatagram') {
        const address = parseListen(entry.value, key === 'ListenStream' ? 'tcp' : 'udp');
        if (address.ok) listen.push(address.value);
        else ctx.findings.problem(entryOrigin(entry), address.message);
        continue;
      }
      const handler = socketHandlers[key];
      if (handler === undefined) ctx.findings.problem(entryOrigin(entry), 'not supported');
      else handler(entry, ctx);
    }
  }
  const first = settings.get('ListenStream')?.[0] ?? settings.get('ListenDatagram')?.[0];
  if (first === undefined)
    ctx.findings.problem(
      { file: '', line: 0, directive: 'ListenStream' },
      'no ListenStream= or ListenDatagram=',
    );
  else ctx.builder.set('/listen', listen.length === 1 ? listen[0] : listen, entryOrigin(first));
  if (ctx.accept && !ctx.builder.has('/limits/instances')) {
    const accept = lastOf(settings, 'Accept');
    ctx.builder.set('/limits/instances', 64, {
      ...entryOrigin(accept),
      directive: 'MaxConnections (systemd default 64)',
    });
  }
  if (!ctx.accept) {
    const accept = settings.get('Accept')?.at(-1);
    const origin =
      accept === undefined
        ? { ...ctx.origin, directive: 'Accept (default no)' }
        : entryOrigin(accept);
    ctx.builder.set('/accept', false, origin);
    const directive = 'FileDescriptorName (systemd default: the socket unit)';
    if (!settings.has('FileDescriptorName')) {
      ctx.builder.set('/fdName', `${ctx.name}.socket`, { ...origin, directive });
    }
  }
}

/** `PORT`, `IPV4:PORT`, `[IPV6]:PORT`, `/path` and `@abstract` (a path only for streams). */
export function parseListen(text: string, kind: 'tcp' | 'udp'): Maybe<string> {
  if (text.startsWith('/') || text.startsWith('@')) {
    if (kind === 'udp') return { ok: false, message: 'Unix datagram sockets are not supported' };
    return { ok: true, value: `unix:${text}` };
  }
  const match = /^(?:(\d+\.\d+\.\d+\.\d+)|\[([0-9a-fA-F:.]+)\]):(\d+)$|^(\d+)$/.exec(text);
  const port = Number(match?.[3] ?? match?.[4]);
  if (match === null || port < 1 || port > 65535) {
    return {
      ok: false,
      message: `"${text}" is not PORT, ADDRESS:PORT, [IPV6]:PORT or an absolute path`,
    };
  }
  return { ok: true, value: formatListen(kind, match[1] ?? match[2] ?? null, port) };
}

function set(pointer: string, parse: (text: string) => Maybe<unknown>): Handler {
  return (entry, ctx) => {
    const parsed = parse(entry.value);
    if (parsed.ok) ctx.builder.set(pointer, parsed.value, entryOrigin(entry));
    else ctx.findings.problem(entryOrigin(entry), parsed.message);
  };
}

const account = (text: string): Maybe<string | number> => ({
  ok: true,
  value: /^\d+$/.test(text) ? Number(text) : text,
});

function acceptOnly(pointer: string, parse: (text: string) => Maybe<unknown>): Handler {
  const inner = set(pointer, parse);
  return (entry, ctx) => {
    if (ctx.accept) inner(entry, ctx);
    else
      ctx.findings.note(entryOrigin(entry), 'accepted, no effect with Accept=no (as in systemd)');
  };
}

const note =
  (message: string): Handler =>
  (entry, ctx) =>
    ctx.findings.note(entryOrigin(entry), `accepted, no effect: ${message}`);

const socketHandlers: Record<string, Handler> = {
  Accept: () => undefined,
  Service: () => undefined,
  SocketMode: set('/socket/mode', parseUmask),
  SocketUser: set('/socket/user', account),
  SocketGroup: set('/socket/group', account),
  Backlog: set('/socket/backlog', (t) => parseInteger(t, 1, 65535)),
  NoDelay: set('/socket/noDelay', parseBoolean),
  KeepAlive: set('/socket/keepAlive', parseBoolean),
  MaxConnections: acceptOnly('/limits/instances', (t) => parseInteger(t, 1, 2 ** 31 - 1)),
  MaxConnectionsPerSource: acceptOnly('/limits/perSource', (t) => parseInteger(t, 1, 2 ** 31 - 1)),
  FileDescriptorName: (entry, ctx) => {
    if (ctx.accept) note('with Accept=yes the connection is on fd 0 and 1')(entry, ctx);
    else set('/fdName', (t) => ({ ok: true, value: t }))(entry, ctx);
  },
  RemoveOnStop: note(
    'socketeer removes the Unix socket paths it created when it stops, whatever this says',
  ),
  DirectoryMode: note("socketeer creates no directory: the socket's directory must exist"),
  BindIPv6Only: note('socketeer binds as the kernel default says'),
  ReusePort: note('socketeer sets SO_REUSEADDR only'),
};

/** [Unit] and [Install]: Description maps; ordering, dependencies and enabling are listed. */
function mapUnitSections(
  unit: LoadedUnit,
  ctx: { findings: Findings; builder: ServiceBuilder },
): void {
  for (const entry of unit.entries) {
    if (entry.section === 'Socket' || entry.section === 'Service') continue;
    const origin = entryOrigin(entry);
    if (entry.section === 'Unit' && entry.key === 'Description')
      ctx.builder.set('/description', entry.value, origin);
    else if (
      entry.section === 'Install' ||
      (entry.section === 'Unit' && unitNoEffect.has(entry.key))
    ) {
      ctx.findings.note(
        origin,
        `accepted, no effect: socketeer binds every socket at start and needs no ${entry.section === 'Install' ? 'enabling' : 'ordering'}`,
      );
    } else ctx.findings.problem(origin, `not supported in [${entry.section}]`);
  }
}

const unitNoEffect = new Set([
  'Documentation',
  'After',
  'Before',
  'Wants',
  'Requires',
  'PartOf',
  'BindsTo',
  'Conflicts',
  'DefaultDependencies',
  'RefuseManualStart',
  'RefuseManualStop',
]);
