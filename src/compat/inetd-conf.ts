/**
 * inetd.conf lines (pure): `service socktype proto wait|nowait[.max] user[:group] program argv…`,
 * `#` comments. `proto` is tcp, tcp4, tcp6, udp, udp4, udp6 or unix (then `service` is the
 * socket's path); `[ADDRESS:]service` binds one address. `internal` echo, discard, chargen,
 * daytime and time become `builtin` services; other `internal` ones are skipped.
 */
import {
  Findings,
  ServiceBuilder,
  type CompatResult,
  type CompatService,
  type Origin,
} from './model.js';
import { resolvePort, type ServicesDb } from './services-db.js';
import { formatListen } from './values.js';

interface Fields {
  readonly service: string;
  readonly socktype: string;
  readonly proto: string;
  readonly wait: string;
  readonly user: string;
  readonly program: string;
  readonly argv: readonly string[];
}

const protocols: Record<string, { kind: 'tcp' | 'udp' | 'unix'; host: string | null }> = {
  tcp: { kind: 'tcp', host: '0.0.0.0' },
  tcp4: { kind: 'tcp', host: '0.0.0.0' },
  tcp6: { kind: 'tcp', host: '::' },
  tcp46: { kind: 'tcp', host: null },
  udp: { kind: 'udp', host: '0.0.0.0' },
  udp4: { kind: 'udp', host: '0.0.0.0' },
  udp6: { kind: 'udp', host: '::' },
  udp46: { kind: 'udp', host: null },
  unix: { kind: 'unix', host: null },
};

export function parseInetdConf(file: string, text: string, services: ServicesDb): CompatResult {
  const findings = new Findings();
  const result: CompatService[] = [];
  const names = new Set<string>();
  text.split('\n').forEach((raw, index) => {
    const content = raw.trim();
    if (content === '' || content.startsWith('#')) return;
    const at = { file, line: index + 1 };
    const words = content.split(/\s+/);
    if (words.length < 6) {
      const message =
        'expected "service socktype proto wait|nowait[.max] user[:group] program argv..."';
      findings.problem({ ...at, directive: words[0] ?? '' }, message);
      return;
    }
    const [service = '', socktype = '', proto = '', wait = '', user = '', program = '', ...argv] =
      words;
    const fields = { service, socktype, proto, wait, user, program, argv };
    const built = mapLine(fields, { at, findings, services });
    if (built === null) return;
    const name = uniqueName(fields, names);
    names.add(name);
    result.push(built.build(name, { ...at, directive: service }));
  });
  return findings.result(result);
}

function uniqueName(fields: Fields, taken: ReadonlySet<string>): string {
  const base =
    fields.proto === 'unix'
      ? (fields.service.split('/').pop() ?? 'unix')
      : (fields.service.split(':').pop() ?? '');
  const name = base.replace(/[^A-Za-z0-9_.:-]/g, '_');
  return taken.has(name) ? `${name}-${fields.proto}` : name;
}

interface LineContext {
  readonly at: { file: string; line: number };
  readonly findings: Findings;
  readonly services: ServicesDb;
}

function mapLine(fields: Fields, ctx: LineContext): ServiceBuilder | null {
  const origin = (directive: string): Origin => ({ ...ctx.at, directive });
  const before = ctx.findings.problems.length;
  const builder = new ServiceBuilder();
  if (fields.program === 'internal') return mapInternal(fields, { ...ctx, builder, origin });
  const accept = mapSocket(fields, { ...ctx, builder, origin });
  mapProcess(fields, { ...ctx, builder, origin });
  if (accept === null || ctx.findings.problems.length > before) return null;
  return builder;
}

/** The built-ins an `internal` line can name (by its service name, as inetd knows them). */
export const builtinNames: readonly string[] = ['echo', 'discard', 'chargen', 'daytime', 'time'];

/**
 * An `internal` line: `builtin` named by the service (`echo stream tcp nowait root internal`),
 * on the line's address; wait/nowait and the user change nothing (the daemon serves it).
 */
function mapInternal(fields: Fields, ctx: BuildContext): ServiceBuilder | null {
  const name = fields.service.slice(fields.service.lastIndexOf(':') + 1);
  const proto = protocols[fields.proto];
  if (!builtinNames.includes(name) || proto === undefined || proto.kind === 'unix') {
    const message = `internal ${name} is not one of socketeer's built-ins over tcp or udp (${builtinNames.join(', ')}); service ${fields.service} skipped`;
    ctx.findings.skip(ctx.origin('internal'), message);
    return null;
  }
  const expected = proto.kind === 'udp' ? 'dgram' : 'stream';
  if (fields.socktype !== expected) {
    const message = `"${fields.socktype}" with ${fields.proto}: expected ${expected}`;
    ctx.findings.problem(ctx.origin('socktype'), message);
    return null;
  }
  const before = ctx.findings.problems.length;
  const listen = mapAddress(fields, { ...ctx, kind: proto.kind, host: proto.host });
  if (listen === null || ctx.findings.problems.length > before) return null;
  ctx.builder.set('/listen', listen, ctx.origin('service'));
  ctx.builder.set('/builtin', name, ctx.origin('internal'));
  const message = 'accepted, no effect: a built-in is served by the daemon itself, no process';
  ctx.findings.note(ctx.origin('user'), message);
  return ctx.builder;
}

interface BuildContext extends LineContext {
  readonly builder: ServiceBuilder;
  readonly origin: (directive: string) => Origin;
}

/** `listen`, `accept`, `listenerOn` and the `nowait.max` rate; returns accept (null: a problem). */
function mapSocket(fields: Fields, ctx: BuildContext): boolean | null {
  const proto = protocols[fields.proto];
  if (proto === undefined) {
    ctx.findings.problem(
      ctx.origin('proto'),
      `"${fields.proto}" is not supported (tcp, tcp6, udp, udp6, unix)`,
    );
    return null;
  }
  const expected = proto.kind === 'udp' ? 'dgram' : 'stream';
  if (fields.socktype !== expected) {
    ctx.findings.problem(
      ctx.origin('socktype'),
      `"${fields.socktype}" with ${fields.proto}: expected ${expected}`,
    );
    return null;
  }
  const wait = /^(wait|nowait)(?:\.(\d+))?$/.exec(fields.wait);
  if (wait === null) {
    ctx.findings.problem(ctx.origin('wait'), `"${fields.wait}" is not wait, nowait or nowait.MAX`);
    return null;
  }
  const listen = mapAddress(fields, { ...ctx, kind: proto.kind, host: proto.host });
  if (listen === null) return null;
  ctx.builder.set('/listen', listen, ctx.origin('service'));
  const waits = wait[1] === 'wait';
  if (proto.kind === 'udp' && !waits) {
    ctx.findings.problem(
      ctx.origin('nowait'),
      'dgram nowait (a process per datagram) is not supported; use wait',
    );
    return null;
  }
  if (waits) {
    ctx.builder.set('/accept', false, ctx.origin('wait'));
    ctx.builder.set('/listenerOn', 'stdin', ctx.origin('wait'));
    if (wait[2] !== undefined) {
      const message =
        'accepted, no effect: .MAX limits spawns per minute; one process serves the socket';
      ctx.findings.note(ctx.origin('wait'), message);
    }
  } else if (wait[2] !== undefined) {
    const max = Number(wait[2]);
    ctx.builder.set(
      '/limits/rate',
      { perSecond: max / 60, burst: Math.max(1, max) },
      ctx.origin('nowait'),
    );
  }
  return !waits;
}

function mapAddress(
  fields: Fields,
  ctx: BuildContext & { kind: 'tcp' | 'udp' | 'unix'; host: string | null },
): string | null {
  if (ctx.kind === 'unix') {
    if (fields.service.startsWith('/')) return `unix:${fields.service}`;
    ctx.findings.problem(
      ctx.origin('service'),
      `"${fields.service}" is not an absolute socket path`,
    );
    return null;
  }
  const colon = fields.service.lastIndexOf(':');
  const host = colon < 0 ? ctx.host : fields.service.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const name = fields.service.slice(colon + 1);
  if (host !== null && host !== '*' && !/^[\d.]+$/.test(host) && !host.includes(':')) {
    ctx.findings.problem(
      ctx.origin('service'),
      `"${host}" is not an IP address (names are not resolved)`,
    );
    return null;
  }
  const port = resolvePort(name, ctx.kind, ctx.services);
  if (typeof port === 'string') {
    ctx.findings.problem(ctx.origin('service'), port);
    return null;
  }
  return formatListen(ctx.kind, host === '*' ? null : host, port);
}

/** `user`, `group` and `exec` (argv[0] is the program's own path, as a handler's is). */
function mapProcess(fields: Fields, ctx: BuildContext): void {
  const [user = '', group] = fields.user.split(/[:.]/);
  ctx.builder.set('/user', /^\d+$/.test(user) ? Number(user) : user, ctx.origin('user'));
  if (group !== undefined && group !== '')
    ctx.builder.set('/group', /^\d+$/.test(group) ? Number(group) : group, ctx.origin('user'));
  if (!fields.program.startsWith('/')) {
    ctx.findings.problem(ctx.origin('program'), `"${fields.program}" is not an absolute path`);
    return;
  }
  const base = fields.program.split('/').pop() ?? '';
  if (base === 'tcpd') {
    ctx.findings.problem(
      ctx.origin('program'),
      'tcpd (TCP wrappers) is not supported: name the server itself and use access.allow/deny',
    );
    return;
  }
  const [argv0, ...args] = fields.argv;
  if (argv0 !== undefined && argv0 !== fields.program && argv0 !== base) {
    ctx.findings.note(
      ctx.origin('argv'),
      `argv[0] "${argv0}" is not passed: the program gets its path as argv[0]`,
    );
  }
  ctx.builder.set('/exec', [fields.program, ...args], ctx.origin('program'));
}
