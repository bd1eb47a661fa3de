import type { Socket } from 'node:net';
import { cleanText } from '../log/clean.js';
import type { ControlConnections } from './connection-table.js';
import {
  ControlError,
  formatReply,
  parseRequest,
  type ControlErrorBody,
  type ControlReply,
  type ControlRequest,
  type RequestId,
} from './protocol.js';

/** The subset of a winston logger the control channel uses: an event name and its fields. */
export interface ControlLogger {
  info(event: string, fields: Record<string, unknown>): void;
  warn(event: string, fields: Record<string, unknown>): void;
  error(event: string, fields: Record<string, unknown>): void;
}

export type ControlHandler = (request: ControlRequest) => Promise<unknown>;

export interface ConversationOptions {
  readonly handle: ControlHandler;
  readonly log: ControlLogger;
  readonly maxLineBytes: number;
  /**
   * A connection with no request in progress is closed this long after it became idle (accepted,
   * or its last reply written), whatever it sends meanwhile: a partial line or blank lines do not
   * keep it open.
   */
  readonly idleTimeoutMs: number;
  readonly table: ControlConnections;
}

/** Input is read no further while this many requests wait (pipelining backpressure). */
const maxQueuedLines = 16;
/** How long a connection we are closing may still send before it is cut. */
const lingerMs = 1000;

type Item = { readonly kind: 'line'; readonly text: string } | { readonly kind: 'too-large' };

/**
 * Speaks JSON lines on one accepted control connection: requests are answered one at a time,
 * in order; an invalid request gets an error reply and the connection stays usable; a line over
 * `maxLineBytes` gets a `too-large` reply and the connection is closed. A connection that does
 * not complete a request within `idleTimeoutMs` of becoming idle is closed. Never throws.
 */
export function serveConversation(socket: Socket, options: ConversationOptions): void {
  const conversation = new Conversation(socket, options);
  socket.on('data', (chunk: Buffer) => conversation.receive(chunk));
  socket.on('end', () => conversation.receiveEnd());
  socket.once('close', () => conversation.stopClock());
}

class Conversation implements LineBuffer {
  parts: Buffer[] = [];
  size = 0;
  private readonly queue: Item[] = [];
  private isBusy = false;
  private hasEnded = false;
  private isDiscarding = false;
  private hasWarned = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly options: ConversationOptions,
  ) {
    this.becomeIdle();
  }

  stopClock(): void {
    clearTimeout(this.idleTimer);
  }

  /** Evictable from now on, and closed when no request completes within the idle timeout. */
  private becomeIdle(): void {
    if (this.socket.destroyed) return;
    this.options.table.markIdle(this.socket);
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.socket.destroy(), this.options.idleTimeoutMs);
  }

  private becomeBusy(): void {
    this.options.table.markBusy(this.socket);
    clearTimeout(this.idleTimer);
  }

  receive(chunk: Buffer): void {
    if (this.isDiscarding) return;
    this.isDiscarding = !splitLines(chunk, this, this.options.maxLineBytes, (item) => {
      this.queue.push(item);
      if (this.queue.length >= maxQueuedLines) this.socket.pause();
    });
    if (this.isDiscarding) this.socket.resume(); // read and drop the rest until we close
    void this.pump();
  }

  receiveEnd(): void {
    this.hasEnded = true;
    if (!this.isBusy && !this.isDiscarding) this.socket.end();
  }

  private async pump(): Promise<void> {
    if (this.isBusy || this.queue.length === 0) return; // a partial or blank line is no request
    this.isBusy = true;
    const { socket, queue, options } = this;
    this.becomeBusy(); // a request in progress is not idleness
    for (let item = queue.shift(); item && !socket.destroyed; item = queue.shift()) {
      if (!this.isDiscarding && queue.length < maxQueuedLines) socket.resume();
      if (item.kind === 'too-large') return this.refuseTooLarge();
      const reply = await answerLine(item.text, options, (error) => this.warnOnce(error));
      if (socket.destroyed) return;
      if (!socket.write(serialiseReply(reply, options.log))) await this.waitForDrain();
    }
    this.isBusy = false;
    this.becomeIdle();
    if (this.hasEnded && !socket.destroyed) socket.end();
  }

  /** A peer that stops reading our replies is idle too. */
  private async waitForDrain(): Promise<void> {
    this.becomeIdle();
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
    this.becomeBusy();
  }

  private refuseTooLarge(): void {
    const message = `request exceeds ${this.options.maxLineBytes} bytes`;
    const error: ControlErrorBody = { code: 'too-large', message };
    this.warnOnce(error);
    this.becomeIdle();
    endGently(this.socket, formatReply({ id: null, ok: false, error }));
  }

  /** One warning per connection: a client sending garbage must not flood the log. */
  private warnOnce(error: ControlErrorBody): void {
    if (!this.hasWarned) this.options.log.warn('control-bad-request', { ...error });
    this.hasWarned = true;
  }
}

interface LineBuffer {
  parts: Buffer[];
  size: number;
}

/** Cuts a chunk into lines; false once a line is over the limit (the rest is to be dropped). */
function splitLines(
  chunk: Buffer,
  buffer: LineBuffer,
  maxLineBytes: number,
  enqueue: (item: Item) => void,
): boolean {
  let start = 0;
  for (let end = chunk.indexOf(10); ; end = chunk.indexOf(10, start)) {
    const piece = chunk.subarray(start, end === -1 ? chunk.length : end);
    if (buffer.size + piece.length > maxLineBytes) {
      enqueue({ kind: 'too-large' });
      return false;
    }
    buffer.parts.push(piece);
    buffer.size += piece.length;
    if (end === -1) return true;
    const text = Buffer.concat(buffer.parts).toString('utf8');
    buffer.parts = [];
    buffer.size = 0;
    if (text.trim() !== '') enqueue({ kind: 'line', text });
    start = end + 1;
  }
}

async function answerLine(
  line: string,
  options: ConversationOptions,
  warnOnce: (error: ControlErrorBody) => void,
): Promise<ControlReply> {
  const parsed = parseRequest(line);
  if (!parsed.ok) {
    warnOnce(parsed.error);
    return { id: parsed.id, ok: false, error: parsed.error };
  }
  const { id, cmd } = parsed.request;
  try {
    const result = await options.handle(parsed.request);
    return { id, ok: true, result: result ?? null };
  } catch (error) {
    if (error instanceof ControlError) {
      return { id, ok: false, error: { code: error.code, message: error.message } };
    }
    options.log.error('control-failed', { cmd, error: cleanText(String(error), 500) });
    return internalError(id);
  }
}

function internalError(id: RequestId | null): ControlReply {
  return {
    id,
    ok: false,
    error: { code: 'internal', message: 'internal error; see the daemon log' },
  };
}

function serialiseReply(reply: ControlReply, log: ControlLogger): string {
  try {
    return formatReply(reply);
  } catch (error) {
    log.error('control-failed', { error: cleanText(String(error), 500) });
    return formatReply(internalError(reply.id));
  }
}

/**
 * Sends a last line and closes without resetting the peer: what it still sends is read and
 * dropped (so that it can read our line) until it closes too (the socket then destroys itself)
 * or `lingerMs` passes.
 */
export function endGently(socket: Socket, lastLine: string): void {
  socket.removeAllListeners('data');
  socket.on('data', () => undefined);
  socket.resume();
  socket.end(lastLine);
  const timer = setTimeout(() => socket.destroy(), lingerMs).unref();
  socket.once('close', () => clearTimeout(timer));
}
