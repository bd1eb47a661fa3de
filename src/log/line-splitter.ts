import type { Readable } from 'node:stream';

/**
 * Reads a stream to its end and hands over each line (without the newline); a line longer
 * than `maxBytes` is handed over in pieces of `maxBytes`. Keeps the stream drained.
 */
export function forEachLine(
  stream: Readable,
  maxBytes: number,
  onLine: (line: string) => void,
): void {
  let pending: Buffer = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let newline: number;
    while ((newline = pending.indexOf(0x0a)) !== -1 || pending.length >= maxBytes) {
      const end = newline !== -1 && newline < maxBytes ? newline : maxBytes;
      onLine(pending.subarray(0, end).toString('utf8').replace(/\r$/, ''));
      pending = pending.subarray(newline !== -1 && newline < maxBytes ? end + 1 : end);
    }
  });
  stream.on('end', () => {
    if (pending.length > 0) onLine(pending.toString('utf8'));
    pending = Buffer.alloc(0);
  });
  stream.on('error', () => {
    // a broken pipe from a dying handler: what was read is already logged
  });
}
