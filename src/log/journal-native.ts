// The journal's native protocol (systemd.journal-fields(7), "Native Protocol" of
// systemd-journald.service(8)): one datagram per record to /run/systemd/journal/socket, every
// record field a journal field, so that `journalctl SOCKETEER_SERVICE=git` and
// `journalctl -p warning` select records.
import type { LogLevel } from './events.js';
import { severity } from './journal.js';
import { formatValue } from './format-value.js';

/** Where journald listens for native-protocol datagrams. */
export const journalSocketPath = '/run/systemd/journal/socket';

/** `exitCode` → `SOCKETEER_EXIT_CODE`: a journal field name (A-Z, 0-9, _; pure). */
export function journalFieldName(key: string): string {
  const snake = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toUpperCase();
  return `SOCKETEER_${snake}`.slice(0, 64);
}

/** One field: `NAME=value\n`, or the length-prefixed form when the value has a newline. */
function encodeField(name: string, value: string): Buffer {
  if (!value.includes('\n')) return Buffer.from(`${name}=${value}\n`);
  const data = Buffer.from(value);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(data.length));
  return Buffer.concat([Buffer.from(`${name}\n`), size, data, Buffer.from('\n')]);
}

/**
 * A JSON record line (as the json format writes it) as one native-protocol datagram (pure):
 * PRIORITY from its level, SYSLOG_IDENTIFIER, MESSAGE the record as text (`event key=value ...`),
 * and each field as SOCKETEER_FIELD (`event` as SOCKETEER_EVENT). null: not a record.
 */
export function encodeJournalRecord(line: string, identifier = 'socketeer'): Buffer | null {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
  const { level, event, ...rest } = record;
  // the journal stamps each entry itself
  const fields = Object.fromEntries(Object.entries(rest).filter(([key]) => key !== 'time'));
  const priority = severity[level as LogLevel];
  if (priority === undefined || typeof event !== 'string') return null;
  const text = Object.entries(fields).map(([k, v]) => `${k}=${formatValue(v)}`);
  const parts = [
    encodeField('PRIORITY', String(priority)),
    encodeField('SYSLOG_IDENTIFIER', identifier),
    encodeField('MESSAGE', [event, ...text].join(' ')),
    encodeField('SOCKETEER_EVENT', event),
    ...Object.entries(fields).map(([k, v]) =>
      encodeField(journalFieldName(k), typeof v === 'string' ? v : JSON.stringify(v)),
    ),
  ];
  return Buffer.concat(parts);
}
