import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { createMeter, refillMeter, spendMeter, type Meter } from '../limits/meter.js';
import type { BucketRate } from '../limits/settings.js';
import { cleanText } from './clean.js';

/** The most bytes of one stderr line that are logged; the rest of the line is only counted. */
export const maxLineBytes = 4096;
/** What a logged line costs on top of its text and newline: the record around it. */
export const lineRecordCost = 128;
/** While lines are dropped, one report at most this often; and one when the pipe closes. */
export const dropReportMs = 10_000;

/** Where the lines of one handler's stderr go. */
export interface StderrSink {
  /**
   * One line without its newline (nor a `\r` before it), cleaned for the log (control bytes as
   * `\xNN`, see clean.ts); `truncated`: the bytes cut off after maxLineBytes.
   */
  line(text: string, truncated: number): void;
  /** `bytes` dropped since the last report, `total` since the handler started. */
  dropped(bytes: number, total: number): void;
}

/**
 * Splits a handler's stderr into lines and meters them against `rate`, in bytes of log: a
 * line is cut at maxLineBytes, cleaned, and costs its cleaned text's UTF-8 bytes (a control
 * byte costs 4, as `\xNN`), 1 for its newline and lineRecordCost, at most the whole burst. A
 * line over the budget is dropped whole and counted, with the rest of the lines its chunk
 * completes. Every byte read is either in a line (logged or cut off) or counted as dropped.
 * Pure: chunks in with the time, lines and reports out; memory is one line buffer, whatever
 * the handler writes.
 */
export class StderrLines {
  /** Bytes dropped since the handler started. */
  droppedTotal = 0;
  private readonly meter: Meter;
  private head: Buffer | null = null;
  private headBytes = 0;
  /** Bytes of the current line so far, those past maxLineBytes included. */
  private lineBytes = 0;
  private unreported = 0;
  private firstUnreportedAt = 0;
  private isEnded = false;

  constructor(
    private readonly rate: BucketRate,
    now: number,
    private readonly sink: StderrSink,
  ) {
    this.meter = createMeter(rate, now);
  }

  push(chunk: Buffer, now: number): void {
    let pos = 0;
    while (pos < chunk.length) {
      const newline = chunk.indexOf(0x0a, pos);
      if (newline === -1) {
        this.extend(chunk, pos, chunk.length);
        break;
      }
      if (refillMeter(this.meter, this.rate, now) < 1 + lineRecordCost) {
        pos = this.dropLines(chunk, pos, now); // not even an empty line fits
        continue;
      }
      this.extend(chunk, pos, newline);
      const isLogged = this.finishLine(1, now);
      pos = newline + 1;
      if (!isLogged) pos = this.dropLines(chunk, pos, now);
    }
    this.report(now, false);
  }

  /** The pipe closed: the last line (without a newline) and the last report. Idempotent. */
  end(now: number): void {
    if (this.isEnded) return;
    this.isEnded = true;
    if (this.lineBytes > 0) this.finishLine(0, now);
    this.report(now, true);
  }

  private extend(chunk: Buffer, from: number, to: number): void {
    const keep = Math.min(to - from, maxLineBytes - this.headBytes);
    if (keep > 0) {
      this.head ??= Buffer.allocUnsafe(maxLineBytes);
      chunk.copy(this.head, this.headBytes, from, from + keep);
      this.headBytes += keep;
    }
    this.lineBytes += to - from;
  }

  /** Logs or drops the current line; whether it was logged. */
  private finishLine(newline: 0 | 1, now: number): boolean {
    const cut = this.lineBytes - this.headBytes;
    let text = this.head === null ? '' : this.head.toString('utf8', 0, this.headBytes);
    if (newline === 1 && cut === 0 && text.endsWith('\r')) text = text.slice(0, -1);
    const line = cleanText(text, maxLineBytes);
    const cost = Buffer.byteLength(line) + 1 + lineRecordCost;
    const isLogged = spendMeter(this.meter, this.rate, Math.min(cost, this.rate.burst), now);
    if (isLogged) this.sink.line(line, cut);
    else this.drop(this.lineBytes + newline, now);
    this.headBytes = 0;
    this.lineBytes = 0;
    return isLogged;
  }

  /**
   * Drops every line that the chunk completes from `pos` on, without a look at each (a flood
   * over the budget costs one scan per chunk); returns where the next line starts.
   */
  private dropLines(chunk: Buffer, pos: number, now: number): number {
    const last = chunk.lastIndexOf(0x0a);
    if (last < pos) return pos;
    this.drop(this.lineBytes + last + 1 - pos, now);
    this.headBytes = 0;
    this.lineBytes = 0;
    return last + 1;
  }

  private drop(bytes: number, now: number): void {
    if (bytes <= 0) return;
    if (this.unreported === 0) this.firstUnreportedAt = now;
    this.unreported += bytes;
    this.droppedTotal += bytes;
  }

  private report(now: number, isFinal: boolean): void {
    if (this.unreported === 0) return;
    if (!isFinal && now - this.firstUnreportedAt < dropReportMs) return;
    const bytes = this.unreported;
    this.unreported = 0;
    this.sink.dropped(bytes, this.droppedTotal);
  }
}

/**
 * Reads a handler's stderr pipe to its end through StderrLines. The pipe is always drained,
 * dropped lines included, so the handler never blocks on it.
 */
export function readStderr(
  stream: Readable,
  rate: BucketRate,
  sink: StderrSink,
  clock: () => number = () => performance.now(),
): StderrLines {
  const lines = new StderrLines(rate, clock(), sink);
  stream.on('data', (chunk: Buffer) => lines.push(chunk, clock()));
  stream.on('error', () => {
    // a broken pipe from a dying handler: 'close' follows, and what was read is accounted
  });
  stream.once('close', () => lines.end(clock()));
  return lines;
}
