import type { DaemonStatus, ServiceStatus } from '../daemon/state.js';
import type { RecentRecord } from '../daemon/recent-records.js';
import { formatValue } from '../log/format-value.js';
import type { ProcessStatus } from '../connection/activation-server.js';
import { ExitCode } from '../model/errors.js';
import { askDaemon, type ControlArgs, type Out } from './ask-daemon.js';

export interface StatusArgs extends ControlArgs {
  readonly service?: string | undefined;
  readonly json: boolean;
}

const statusTimeoutMs = 10000;

/** `status [SERVICE] [--json]`: every service (or one) with its listeners, counters and connections. */
export async function runStatus(args: StatusArgs, out: Out): Promise<number> {
  const status = await askDaemon(
    args,
    args.service === undefined ? { cmd: 'status' } : { cmd: 'status', service: args.service },
    statusTimeoutMs,
  );
  out(args.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  return ExitCode.ok;
}

/** The status as tables for people (pure). */
export function formatStatus(status: DaemonStatus): string {
  const lines = [`socketeer pid ${status.pid}, up since ${status.startedAt}, ${status.configDir}`];
  if (status.services.length === 0) return `${lines[0]}\nno services\n`;
  lines.push(
    '',
    ...table([
      ['SERVICE', 'STATE', 'ACTIVE', 'ACCEPTED', 'REFUSED', 'SPAWN-FAILED', 'LISTENERS'],
      ...status.services.map((s) => [
        s.name,
        s.state,
        String(s.counters.active),
        String(s.counters.accepted),
        formatRefused(s.counters.refused),
        String(s.counters.spawnFailed),
        s.listeners.join(' ') || '-',
      ]),
    ]),
  );
  for (const service of status.services) {
    if (service.process !== undefined) lines.push('', formatProcess(service.name, service.process));
    if (service.connections.length > 0) lines.push('', ...formatConnections(service));
  }
  // one service asked for: its last records too, as `systemctl status UNIT` shows its journal
  const [only] = status.services;
  if (status.services.length === 1 && only?.recent !== undefined && only.recent.length > 0)
    lines.push('', `${only.name}: last records`, ...only.recent.map(formatRecent));
  return `${lines.join('\n')}\n`;
}

function formatConnections(service: ServiceStatus): string[] {
  const count = service.connections.length;
  return [
    `${service.name}: ${count} connection${count === 1 ? '' : 's'}`,
    ...table([
      ['INSTANCE', 'PID', 'PEER', 'AGE'],
      ...service.connections.map((c) => [
        c.instance,
        c.pid === null ? '-' : c.inherited ? `${c.pid}*` : String(c.pid),
        c.peer,
        formatAge(c.ageSec),
      ]),
    ]).map((line) => `  ${line}`),
    ...(service.connections.some((c) => c.inherited)
      ? ['  * started by the process this daemon took over from']
      : []),
  ];
}

/** `web: process pid 42, up 4.2s, 1 restart, last exit: code 1` (an `accept: false` service). */
function formatProcess(name: string, p: ProcessStatus): string {
  const now = p.pid === null ? p.phase : `pid ${p.pid}, up ${formatAge(p.uptimeSec ?? 0)}`;
  const last = p.lastExit;
  const exit =
    last === null
      ? 'none'
      : last.spawnError !== null
        ? `spawn failed (${last.spawnError})`
        : last.signal !== null
          ? `signal ${last.signal}`
          : `code ${last.exitCode ?? '?'}`;
  const restarts = `${p.restarts} restart${p.restarts === 1 ? '' : 's'}`;
  return `${name}: process ${now}, ${restarts}, last exit: ${exit}${formatNotify(p)}`;
}

/** `, main pid 43, ready, stopping, status "Serving 3 clients", 2 stored fds (conn, conn)`. */
function formatNotify(p: ProcessStatus): string {
  const parts = [
    p.mainPid !== null && p.mainPid !== p.pid ? `main pid ${p.mainPid}` : '',
    p.ready ? 'ready' : '',
    p.stopping ? 'stopping' : '',
    p.statusText === null ? '' : `status ${JSON.stringify(p.statusText)}`,
    p.storedFds.count === 0
      ? ''
      : `${p.storedFds.count} stored fd${p.storedFds.count === 1 ? '' : 's'} (${p.storedFds.names.join(', ')})`,
  ];
  return parts
    .filter((part) => part !== '')
    .map((part) => `, ${part}`)
    .join('');
}

/** `0`, or `3 (rate 2, instances 1)`. */
function formatRefused(refused: Readonly<Record<string, number>>): string {
  const entries = Object.entries(refused).filter(([, n]) => n > 0);
  if (entries.length === 0) return '0';
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  return `${total} (${entries.map(([reason, n]) => `${reason} ${n}`).join(', ')})`;
}

/** `4.2s`, `12m03s`, `3h07m`, `2d05h`. */
export function formatAge(sec: number): string {
  if (sec < 59.95) return `${sec.toFixed(1)}s`;
  const s = Math.round(sec);
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor(s / 3600) % 24)}h`;
}

/** Left-aligned columns two spaces apart, trailing spaces trimmed. */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}

/** `TIME EVENT key=value ...`, as the text log writes a record. */
function formatRecent(record: RecentRecord): string {
  const fields = Object.entries(record.fields).map(([k, v]) => `${k}=${formatValue(v)}`);
  return [record.time, record.event, ...fields].join(' ');
}
