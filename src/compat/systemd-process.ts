/**
 * [Service] settings of a socket-activated service that need more than a key: Limit*= (soft and
 * hard limits) and StandardInput/Output/Error (where fd 0, 1 and 2 go).
 */
import type { ServiceBuilder, Findings } from './model.js';
import { entryOrigin, type UnitEntry } from './systemd-unit.js';
import { parseLimitValue } from './values.js';

interface Context {
  readonly findings: Findings;
  readonly builder: ServiceBuilder;
  readonly accept: boolean;
  readonly service: {
    readonly file: string;
    readonly environmentFiles?: ReadonlyMap<string, string | null>;
  };
}

/**
 * EnvironmentFile=: `KEY=VALUE` lines of the file (quotes around the value removed, `#` and `;`
 * comment lines skipped), each value's source its own FILE:LINE. A `-` before the path: a file
 * that cannot be read is skipped, as systemd does (a note); without it, a problem.
 */
export function mapEnvironmentFile(
  entry: UnitEntry,
  ctx: Context & { env: Map<string, string> },
): void {
  const path = entry.value.replace(/^-/, '');
  if (!path.startsWith('/'))
    return ctx.findings.problem(entryOrigin(entry), `"${path}" is not an absolute path`);
  const text = ctx.service.environmentFiles?.get(path) ?? null;
  if (text === null) {
    if (entry.value.startsWith('-'))
      ctx.findings.note(entryOrigin(entry), `${path} could not be read; skipped ("-")`);
    else ctx.findings.problem(entryOrigin(entry), `${path} could not be read`);
    return;
  }
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const match = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    const origin = {
      file: path,
      line: index + 1,
      directive: match?.[1] ?? line.split('=')[0] ?? '',
    };
    if (match === null) return ctx.findings.problem(origin, 'expected "NAME=VALUE"');
    const value = (match[2] ?? '').replace(/^"(.*)"$|^'(.*)'$/, '$1$2');
    ctx.env.set(match[1] ?? '', value);
    ctx.builder.set(`/env/${match[1] ?? ''}`, value, origin);
  });
}

const limitKeys: Record<string, string> = {
  LimitNOFILE: 'nofile',
  LimitNPROC: 'nproc',
  LimitAS: 'as',
  LimitDATA: 'data',
  LimitSTACK: 'stack',
  LimitCPU: 'cpu',
  LimitFSIZE: 'fsize',
  LimitCORE: 'core',
  LimitMEMLOCK: 'memlock',
};

export function mapLimit(entry: UnitEntry, ctx: Context): void {
  const key = limitKeys[entry.key];
  if (key === undefined) return ctx.findings.problem(entryOrigin(entry), 'not supported');
  const [soft = '', hard] = entry.value.split(':');
  const parsedSoft = parseLimitValue(soft);
  const parsedHard = parseLimitValue(hard ?? soft);
  if (!parsedSoft.ok || !parsedHard.ok) {
    return ctx.findings.problem(
      entryOrigin(entry),
      parsedSoft.ok ? (parsedHard as { message: string }).message : parsedSoft.message,
    );
  }
  const value =
    hard === undefined ? parsedSoft.value : { soft: parsedSoft.value, hard: parsedHard.value };
  ctx.builder.set(`/rlimits/${key}`, value, entryOrigin(entry));
}

/**
 * Accept=yes: socketeer gives the connection on fd 0 and 1, so StandardInput=socket is required
 * (a program reading fd 3 would find nothing); stderr follows StandardError= (default: inherit,
 * the socket). Accept=no: stdout is /dev/null; stderr goes to socketeer's log.
 */
export function mapStdio(settings: Map<string, UnitEntry[]>, ctx: Context): void {
  const input = settings.get('StandardInput')?.at(-1);
  const output = settings.get('StandardOutput')?.at(-1);
  const error = settings.get('StandardError')?.at(-1);
  const origin = (entry: UnitEntry | undefined, key: string) =>
    entry === undefined ? { file: ctx.service.file, line: 1, directive: key } : entryOrigin(entry);
  if (ctx.accept && input?.value !== 'socket') {
    ctx.findings.problem(
      origin(input, 'StandardInput'),
      'Accept=yes needs StandardInput=socket: socketeer passes the connection on fd 0 and 1, not as fd 3',
    );
  }
  if (!ctx.accept && input !== undefined && input.value !== 'null')
    ctx.findings.problem(
      entryOrigin(input),
      `StandardInput=${input.value} is not supported with Accept=no`,
    );
  if (
    output !== undefined &&
    !['inherit', 'socket', 'journal', 'null', 'syslog', 'kmsg'].includes(output.value)
  ) {
    ctx.findings.problem(entryOrigin(output), `StandardOutput=${output.value} is not supported`);
  } else if (output !== undefined && ctx.accept !== ['inherit', 'socket'].includes(output.value)) {
    ctx.findings.problem(
      entryOrigin(output),
      `StandardOutput=${output.value}: socketeer puts ${ctx.accept ? 'the connection' : '/dev/null'} on fd 1`,
    );
  }
  const stderr = error?.value ?? 'inherit';
  const target =
    stderr === 'inherit'
      ? ctx.accept
        ? 'socket'
        : 'log'
      : { socket: 'socket', null: 'null', journal: 'log', syslog: 'log', kmsg: 'log' }[stderr];
  if (target === undefined)
    ctx.findings.problem(
      origin(error, 'StandardError'),
      `StandardError=${stderr} is not supported`,
    );
  else {
    // the default, inherit, follows stdout: the socket when StandardInput=socket
    const directive = error === undefined ? 'StandardError (default inherit)' : 'StandardError';
    ctx.builder.set('/stderr', target, { ...origin(error ?? input, 'StandardError'), directive });
  }
}
