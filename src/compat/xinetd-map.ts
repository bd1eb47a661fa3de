/**
 * xinetd services in socketeer's terms (pure). A service's identity (`type`, `socket_type`,
 * `protocol`, `wait`, `port`, `bind`, `flags`, `server`, `server_args`) makes its `listen`,
 * `exec` and `accept`; every other attribute is mapped by xinetd-options.ts.
 */
import { Findings, ServiceBuilder } from './model.js';
import type { CompatResult, CompatService, Origin } from './model.js';
import { resolvePort, type ServicesDb } from './services-db.js';
import { formatListen } from './values.js';
import type { XinetdBlock, XinetdFile } from './xinetd.js';
import { defaultsSwitches, effectiveAttributes, type XinetdValue } from './xinetd-attributes.js';
import { mapOptions } from './xinetd-options.js';

type Attributes = ReadonlyMap<string, XinetdValue>;

interface MapContext {
  readonly findings: Findings;
  readonly services: ServicesDb;
}

/** Every service block of the files (the main file first, then what it includes). */
export function mapXinetdFiles(files: readonly XinetdFile[], services: ServicesDb): CompatResult {
  const findings = new Findings();
  for (const file of files) findings.problems.push(...file.problems);
  const blocks = files.flatMap((file) => file.blocks);
  const defaultsBlocks = blocks.filter((block) => block.kind === 'defaults');
  for (const extra of defaultsBlocks.slice(1)) {
    findings.problem(
      { file: extra.file, line: extra.line, directive: 'defaults' },
      'a second defaults block',
    );
  }
  const defaults = defaultsBlocks[0] ?? null;
  const switches = defaultsSwitches(defaults);
  const result: CompatService[] = [];
  for (const block of blocks.filter((b) => b.kind === 'service')) {
    const attributes = effectiveAttributes(block, defaults);
    const service = mapService(block, attributes, { findings, services });
    if (service === null) continue;
    const off = switches.disabled.get(service.name) ?? switches.disabled.get(block.name);
    const notEnabled =
      switches.enabled !== null &&
      !switches.enabled.has(service.name) &&
      !switches.enabled.has(block.name);
    if (off !== undefined) service.builder.set('/disabled', true, off);
    else if (notEnabled)
      service.builder.set('/disabled', true, { ...blockOrigin(block), directive: 'enabled' });
    result.push(service.builder.build(service.name, blockOrigin(block)));
  }
  return findings.result(result);
}

function blockOrigin(block: XinetdBlock): Origin {
  return { file: block.file, line: block.line, directive: 'service' };
}

function mapService(
  block: XinetdBlock,
  attributes: Attributes,
  ctx: MapContext,
): { name: string; builder: ServiceBuilder } | null {
  const type = attributes.get('type');
  const types = type?.values ?? [];
  if (type !== undefined && types.includes('INTERNAL'))
    return mapInternal(block, attributes, { ...ctx, type });
  const badType = types.find((t) => t !== 'UNLISTED');
  if (type !== undefined && badType !== undefined) {
    ctx.findings.problem(type.origin, `${badType} services are not supported (only UNLISTED)`);
  }
  const name = attributes.get('id')?.values[0] ?? block.name;
  const before = ctx.findings.problems.length;
  const builder = new ServiceBuilder();
  const accept = mapListen(block, attributes, { ...ctx, builder });
  mapExec(block, attributes, { ...ctx, builder });
  // mapped even when listen is wrong, so that one run reports every problem
  const waits = attributes.get('wait')?.values[0] === 'yes';
  mapOptions(attributes, { ...ctx, builder, accept: accept ?? !waits });
  // a service with a problem is not passed on: validating it would repeat the problem
  return ctx.findings.problems.length > before || block.damaged ? null : { name, builder };
}

/** The INTERNAL services socketeer serves (`builtin`), by xinetd's service name. */
const builtinNames: readonly string[] = ['echo', 'discard', 'chargen', 'daytime', 'time'];

/** What a built-in ignores: it runs in the daemon, as no user and with no process. */
const processAttributes = new Set(['user', 'group', 'groups', 'umask', 'nice', 'env', 'passenv']);

/**
 * `type = INTERNAL`: echo, discard, chargen, daytime and time (by the block's service name)
 * become `builtin` services on their socket_type's protocol; limits and access are mapped as
 * for any service; `wait` and the process attributes are notes. Other names are skipped.
 */
function mapInternal(
  block: XinetdBlock,
  attributes: Attributes,
  ctx: MapContext & { type: XinetdValue },
): { name: string; builder: ServiceBuilder } | null {
  const name = attributes.get('id')?.values[0] ?? block.name;
  if (!builtinNames.includes(block.name)) {
    const message = `INTERNAL service ${block.name} is not one of socketeer's built-ins (${builtinNames.join(', ')}); service ${name} skipped`;
    ctx.findings.skip(ctx.type.origin, message);
    return null;
  }
  const before = ctx.findings.problems.length;
  const builder = new ServiceBuilder();
  const kept = new Map<string, XinetdValue>();
  const noEffect = 'accepted, no effect: a built-in is served by the daemon itself, no process';
  for (const [key, value] of attributes) {
    const ignored = processAttributes.has(key) || key === 'wait' || key.startsWith('rlimit_');
    if (ignored) ctx.findings.note(value.origin, noEffect);
    else kept.set(key, value);
  }
  mapListen(block, kept, { ...ctx, builder, internal: true });
  builder.set('/builtin', block.name, ctx.type.origin);
  mapOptions(kept, { ...ctx, builder, accept: true });
  return ctx.findings.problems.length > before || block.damaged ? null : { name, builder };
}

interface BuildContext extends MapContext {
  readonly builder: ServiceBuilder;
  /** A built-in: no `wait` (the daemon serves it; UDP too). */
  readonly internal?: boolean;
}

function required(
  name: string,
  block: XinetdBlock,
  attributes: Attributes,
  ctx: MapContext,
): XinetdValue | null {
  const value = attributes.get(name);
  if (value !== undefined && value.values.length > 0) return value;
  const origin = value?.origin ?? { file: block.file, line: block.line, directive: name };
  ctx.findings.problem({ ...origin, directive: name }, 'missing: xinetd requires it');
  return null;
}

/** `listen`, `accept` and `listenerOn`; returns `accept` (null when the service cannot be). */
function mapListen(block: XinetdBlock, attributes: Attributes, ctx: BuildContext): boolean | null {
  const socketType = required('socket_type', block, attributes, ctx);
  const wait = ctx.internal === true ? null : required('wait', block, attributes, ctx);
  if (socketType === null || (wait === null && ctx.internal !== true)) return null;
  const kind = socketType.values[0];
  if (kind !== 'stream' && kind !== 'dgram') {
    ctx.findings.problem(
      socketType.origin,
      `${kind ?? ''} sockets are not supported (stream or dgram)`,
    );
    return null;
  }
  const protocol = kind === 'stream' ? 'tcp' : 'udp';
  const given = attributes.get('protocol');
  if (given !== undefined && given.values[0] !== protocol) {
    ctx.findings.problem(
      given.origin,
      `"${given.values.join(' ')}" does not go with socket_type ${kind} (${protocol})`,
    );
    return null;
  }
  if (wait === null) return mapAddress(block, attributes, { ...ctx, protocol, socketType });
  const waits = wait.values[0] === 'yes';
  if (!waits && wait.values[0] !== 'no') {
    ctx.findings.problem(wait.origin, `"${wait.values.join(' ')}" is not yes or no`);
    return null;
  }
  if (kind === 'dgram' && !waits) {
    ctx.findings.problem(
      wait.origin,
      'dgram with wait = no (a process per datagram) is not supported; use wait = yes',
    );
    return null;
  }
  if (mapAddress(block, attributes, { ...ctx, protocol, socketType }) === null) return null;
  if (waits) {
    ctx.builder.set('/accept', false, wait.origin);
    ctx.builder.set('/listenerOn', 'stdin', wait.origin);
  }
  return !waits;
}

/** `listen` from `port` (or the service name) and `bind`; null: a problem, else true. */
function mapAddress(
  block: XinetdBlock,
  attributes: Attributes,
  ctx: BuildContext & { protocol: 'tcp' | 'udp'; socketType: XinetdValue },
): true | null {
  const port = mapPort(block, attributes, ctx);
  const host = mapHost(attributes, ctx);
  if (port === null || host === undefined) return null;
  const origin = attributes.get('port')?.origin ?? ctx.socketType.origin;
  ctx.builder.set('/listen', formatListen(ctx.protocol, host, port), origin);
  return true;
}

function mapPort(
  block: XinetdBlock,
  attributes: Attributes,
  ctx: BuildContext & { protocol: 'tcp' | 'udp' },
): number | null {
  const given = attributes.get('port');
  const text = given?.values[0] ?? block.name;
  const port = resolvePort(text, ctx.protocol, ctx.services);
  if (typeof port === 'number') return port;
  const origin = given?.origin ?? { file: block.file, line: block.line, directive: 'port' };
  ctx.findings.problem(
    { ...origin, directive: 'port' },
    given === undefined ? `no port, and ${port}` : port,
  );
  return null;
}

/** The bind address (`bind`/`interface`, or the IPv4/IPv6 flag); null: every address; undefined: a problem. */
function mapHost(attributes: Attributes, ctx: BuildContext): string | null | undefined {
  const bind = attributes.get('bind') ?? attributes.get('interface');
  const flags = attributes.get('flags')?.values ?? [];
  if (bind === undefined)
    return flags.includes('IPv4') ? '0.0.0.0' : flags.includes('IPv6') ? '::' : null;
  const host = bind.values[0] ?? '';
  if (/^[\d.]+$/.test(host) || host.includes(':')) return host;
  ctx.findings.problem(bind.origin, `"${host}" is not an IP address (names are not resolved)`);
  return undefined;
}

/** `exec` from `server` and `server_args` (with NAMEINARGS the first argument is argv[0]). */
function mapExec(block: XinetdBlock, attributes: Attributes, ctx: BuildContext): void {
  const server = required('server', block, attributes, ctx);
  if (server === null) return;
  const path = server.values[0] ?? '';
  if (!path.startsWith('/')) {
    ctx.findings.problem(server.origin, `"${path}" is not an absolute path`);
    return;
  }
  const args = attributes.get('server_args');
  const argv = [...(args?.values ?? [])];
  if (attributes.get('flags')?.values.includes('NAMEINARGS') === true) {
    const argv0 = argv.shift();
    if (argv0 !== undefined && argv0 !== path && argv0 !== path.split('/').pop()) {
      const origin = args?.origin ?? server.origin;
      ctx.findings.problem(
        origin,
        `NAMEINARGS: argv[0] "${argv0}" other than the server is not supported (a handler's argv[0] is its path)`,
      );
    }
  }
  ctx.builder.set('/exec', [path, ...argv], args?.origin ?? server.origin);
}
