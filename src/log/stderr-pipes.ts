import { closeSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { BucketRate } from '../limits/settings.js';
import type { EventLog } from './events.js';
import { readStderr, StderrLines, type StderrSink } from './line-splitter.js';

/** The addon's reader of stderr pipes (native/stderr-pipes.c). */
export interface StderrPipeAddon {
  stderrStart(onChunk: (id: number, chunk: Buffer | null, isEnded: boolean) => void): void;
  stderrWatch(fd: number): number;
  stderrRead(id: number): boolean;
}

/** Whose stderr it is: the `stderr` and `stderr-dropped` records go to `log` with `pid`. */
export interface StderrContext {
  readonly service: { readonly stderrRate: BucketRate };
  readonly log: EventLog;
  readonly pid: number;
}

/** The `stderr` and `stderr-dropped` records of one handler. */
export function stderrSink(context: StderrContext): StderrSink {
  const { log, pid } = context;
  return {
    line: (text, truncated) =>
      log.log('info', 'stderr', { pid, line: text, ...(truncated === 0 ? {} : { truncated }) }),
    dropped: (bytes, total) => log.log('warn', 'stderr-dropped', { pid, bytes, total }),
  };
}

/**
 * Handlers' stderr pipes read by the addon: one epoll set in C for all of them, and JS called
 * only with what a handler wrote. A handler that writes nothing costs an array slot here (its
 * context) and no call; its StderrLines (the line buffer and meter) is made at its first chunk. A full meter is
 * the same whenever it was made, so the lines and drops are exactly those of readStderr.
 */
export class StderrPipes {
  /** By watch id: the addon's ids are small integers (slots), reused once this is done. */
  private readonly contexts: (StderrContext | undefined)[] = [];
  private readonly lines: (StderrLines | undefined)[] = [];
  /** Handlers finished whose pipe is still open (a child of theirs holds it). */
  private readonly outliving = new Set<number>();
  private count = 0;

  constructor(
    private readonly addon: StderrPipeAddon,
    private readonly clock: () => number = () => performance.now(),
  ) {
    addon.stderrStart((id, chunk, isEnded) => this.take(id, chunk, isEnded));
  }

  /** Logs the pipe `fd` (the addon's from now on); null if the addon could not take it. */
  watch(fd: number, context: StderrContext): number | null {
    let id: number;
    try {
      id = this.addon.stderrWatch(fd);
    } catch {
      return null;
    }
    this.contexts[id] = context;
    this.count += 1;
    return id;
  }

  /**
   * The handler has exited (once per watch): what its pipe holds now (all it wrote, a last
   * line without newline included when the pipe is at its end) is logged before this returns,
   * then the bytes dropped so far. A pipe still open goes on being logged until its end.
   */
  finish(id: number): number {
    const isOpen = this.addon.stderrRead(id);
    const dropped = this.lines[id]?.droppedTotal ?? 0;
    if (isOpen) this.outliving.add(id);
    else this.forget(id);
    return dropped;
  }

  /** How many pipes are known here (for tests: none left once every handler ended). */
  get size(): number {
    return this.count;
  }

  private take(id: number, chunk: Buffer | null, isEnded: boolean): void {
    const now = this.clock();
    let lines = this.lines[id];
    if (lines === undefined) {
      const context = this.contexts[id];
      if (context === undefined) return;
      lines = new StderrLines(context.service.stderrRate, now, stderrSink(context));
      this.lines[id] = lines;
    }
    // a finished handler's pipe at its end: the id is free again in the addon already
    if (isEnded && this.outliving.delete(id)) this.forget(id);
    if (chunk !== null) lines.push(chunk, now);
    if (isEnded) lines.end(now);
  }

  private forget(id: number): void {
    if (this.contexts[id] === undefined) return;
    this.contexts[id] = undefined;
    this.lines[id] = undefined;
    this.count -= 1;
  }
}

let active: StderrPipes | null = null;

/**
 * The native spawner's: its handlers' stderr pipes are read by `addon` from now on. Once per
 * process; false (pipes are then read as streams) if the addon has no reader or it failed.
 */
export function useStderrPipes(addon: object): boolean {
  if (active !== null) return true;
  const { stderrStart, stderrWatch, stderrRead } = addon as Partial<StderrPipeAddon>;
  if (stderrStart === undefined || stderrWatch === undefined || stderrRead === undefined)
    return false;
  try {
    active = new StderrPipes(addon as StderrPipeAddon);
  } catch {
    return false;
  }
  return true;
}

/** The pipes known to the active reader (0 without one). */
export function watchedStderrPipes(): number {
  return active?.size ?? 0;
}

/** A handler's stderr being logged: its watch in the addon's reader, or its stream's lines. */
export type StderrLog = number | StderrLines;

/** Logs a stream's stderr lines within its service's `stderrRate`, and what it dropped. */
export function logStderr(stream: Readable, context: StderrContext): StderrLines {
  return readStderr(stream, context.service.stderrRate, stderrSink(context));
}

/**
 * Logs a handler's stderr as logStderr does: read by the addon when the spawner gave its fd
 * and the addon takes it, else as a stream; null without a pipe.
 */
export function logHandlerStderr(
  handler: { readonly stderr: Readable | null; readonly stderrFd?: number },
  context: StderrContext,
): StderrLog | null {
  const { stderrFd } = handler;
  const id = stderrFd !== undefined && active !== null ? active.watch(stderrFd, context) : null;
  if (id !== null) return id;
  const stream = handler.stderr;
  return stream === null ? null : logStderr(stream, context);
}

/**
 * At the handler's end, before its `end` record: what its pipe holds is logged (a stream's
 * lines are logged as they come), and the bytes dropped so far returned.
 */
export function finishStderr(stderr: StderrLog): number {
  if (typeof stderr !== 'number') return stderr.droppedTotal;
  return active === null ? 0 : active.finish(stderr);
}

/** A pipe's read end as a stream on libuv (non-blocking); destroying it closes the fd. */
export function openStderrStream(fd: number): Readable | null {
  try {
    return new net.Socket({ fd, readable: true, writable: false });
  } catch {
    closeSync(fd);
    return null;
  }
}
