// The bytes of inetd's built-in protocols (RFC 862, 863, 864, 867, 868), pure: time is a
// parameter. builtin-server.ts serves them on streams, builtin-datagrams.ts on UDP.

/** Seconds from 1900-01-01 (RFC 868's epoch) to 1970-01-01. */
export const rfc868Offset = 2_208_988_800;

/** The 95 printable ASCII characters, space to tilde, that chargen rotates through. */
const printable = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');

/** Characters per chargen line before its CRLF. */
export const chargenLineLength = 72;

/** chargen's line `index` (0: `!"#$%&...` from the first printable, space), without CRLF. */
export function chargenLine(index: number): string {
  const start = index % printable.length;
  return (printable + printable).slice(start, start + chargenLineLength);
}

/** One whole rotation of chargen lines, each with CRLF: 95 lines, 7030 bytes; a stream repeats it. */
export const chargenCycle: Buffer = Buffer.from(
  Array.from({ length: printable.length }, (_, i) => `${chargenLine(i)}\r\n`).join(''),
  'latin1',
);

/**
 * A chargen datagram (RFC 864: a random number of characters, 0 to 512): `length` characters
 * of the lines from line `line` on, each line ended with CRLF, cut at `length`.
 */
export function chargenDatagram(line: number, length: number): Buffer {
  const offset = (line % printable.length) * (chargenLineLength + 2);
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = chargenCycle[(offset + i) % chargenCycle.length] ?? 32;
  return out;
}

const weekdays = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const months = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/**
 * The daytime line (RFC 867's suggested `Weekday, Month Day, Year HH:MM:SS-ZONE`), always in
 * UTC: `Friday, December 4, 2026 22:40:00-UTC\r\n`.
 */
export function daytimeLine(nowMs: number): string {
  const d = new Date(nowMs);
  const two = (n: number): string => String(n).padStart(2, '0');
  const time = `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
  const day = `${weekdays[d.getUTCDay()] ?? ''}, ${months[d.getUTCMonth()] ?? ''} ${d.getUTCDate()}`;
  return `${day}, ${d.getUTCFullYear()} ${time}-UTC\r\n`;
}

/** RFC 868: seconds since 1900-01-01 00:00 UTC, 32 bits big-endian (wrapping in 2036). */
export function timeBytes(nowMs: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE((Math.floor(nowMs / 1000) + rfc868Offset) % 2 ** 32);
  return out;
}
