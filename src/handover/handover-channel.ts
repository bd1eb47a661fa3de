import type { Socket } from 'node:net';
import type { ProcessCarry } from '../connection/activation-carry.js';
import type { Peer } from '../model/peer.js';
import type { CarriedHandler } from './inherited-handlers.js';

/** The environment variable that gives the new process the fd of its channel to the old one. */
export const handoverFdVariable = 'SOCKETEER_HANDOVER_FD';

/**
 * The environment variable that gives the new process a second Unix socket, on which the old one
 * sends the fds of its queued connections (SCM_RIGHTS, in `order`), right after `state`.
 */
export const handoverQueueFdVariable = 'SOCKETEER_HANDOVER_QUEUE_FD';

/**
 * The hand-over conversation, one JSON line each, in this order:
 * old → new `hello` (at spawn), new → old `prepared` (config loaded, fresh addresses bound,
 * control socket bound, inherited fds not yet served), old → new `state` (sent once the old
 * process has stopped accepting, so it is complete), new → old `ready` (serving).
 */
export type HandoverMessage =
  | {
      readonly kind: 'hello';
      readonly version: 1;
      readonly from: number;
      /** Services that stay unbound (stopped, or draining in the old process). */
      readonly stopped: readonly string[];
    }
  | {
      readonly kind: 'prepared';
      readonly pid: number;
      /** It can take queued connections (it has the queue socket and the addon). */
      readonly queue?: boolean;
    }
  | { readonly kind: 'state'; readonly services: Readonly<Record<string, CarriedService>> }
  | { readonly kind: 'ready'; readonly pid: number; readonly addresses: readonly string[] };

export type CarriedService = {
  /** The runner's counters (accepted, spawnFailed, refused by reason, ...). */
  readonly counters: Readonly<Record<string, unknown>>;
  readonly handlers: readonly CarriedHandler[];
  /** Connections waiting in the queue, their fds sent on the queue socket. */
  readonly queued?: readonly CarriedWaiter[];
  /** `accept: false`: its process (left running: the new process adopts it) and counters. */
  readonly process?: CarriedProcess;
};

/** An `accept: false` service's process as a hand-over carries it. */
export type CarriedProcess = ProcessCarry & {
  /** The running one's start time in clock ticks since boot (/proc), to tell a reused pid apart. */
  readonly startTicks: number | null;
  /**
   * Fds carried with it, sent on the queue socket right after the queued connections' (in
   * `order`, which goes on from theirs): `stderr`, the read end of its stderr pipe.
   */
  readonly fds?: readonly CarriedFd[];
};

/** An fd carried with an `accept: false` service's process; the `order`-th one sent. */
export type CarriedFd = {
  readonly name: string;
  readonly order: number;
  /** Never sent: the fd the new process received for it. */
  readonly fd?: number;
};

/** A queued connection as a hand-over carries it; its fd is the `order`-th one sent. */
export type CarriedWaiter = {
  readonly conn: string;
  readonly peer: Peer;
  /** How long it had waited when it was passed (ms). */
  readonly waitedMs: number;
  /** Its place among every passed connection, in arrival order across services (from 0). */
  readonly order: number;
  /** Never sent: the fd the new process received for it. */
  readonly fd?: number;
};

/** Reads and writes hand-over messages on one socket; never throws. */
export class HandoverChannel {
  private buffer = '';
  private readonly lines: string[] = [];
  private waiter: (() => void) | null = null;
  private isClosed = false;

  constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (let nl = this.buffer.indexOf('\n'); nl !== -1; nl = this.buffer.indexOf('\n')) {
        this.lines.push(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.isClosed = true;
      this.wake();
    });
  }

  send(message: HandoverMessage): void {
    if (!this.socket.destroyed) this.socket.write(`${JSON.stringify(message)}\n`);
  }

  /** The next message of `kind`, or null if the channel closes or `timeoutMs` passes first. */
  async receive<K extends HandoverMessage['kind']>(
    kind: K,
    timeoutMs: number,
  ): Promise<Extract<HandoverMessage, { kind: K }> | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) {
        const message = parseMessage(line);
        if (message?.kind === kind) return message as Extract<HandoverMessage, { kind: K }>;
        continue;
      }
      if (this.isClosed || Date.now() >= deadline) return null;
      await this.wait(deadline - Date.now());
    }
  }

  /** Sends the last message (if any) and closes our end. */
  end(message?: HandoverMessage): void {
    this.socket.end(message === undefined ? '' : `${JSON.stringify(message)}\n`);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake(), ms);
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }
}

function parseMessage(line: string): HandoverMessage | null {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && 'kind' in value
      ? (value as HandoverMessage)
      : null;
  } catch {
    return null;
  }
}
