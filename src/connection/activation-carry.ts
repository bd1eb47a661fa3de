// An `accept: false` service's process across a hand-over (`upgrade`): what the old daemon's
// activation server tells of it, and how the new daemon's adopts it. The process is not the new
// daemon's child: the hand-over layer watches /proc for its end (its exit status is unknown then)
// and gives the activation server a running handler whose outcome resolves at that end.
import type { Readable } from 'node:stream';
import { handleFd } from '../listen/incoming.js';
import type { Peer } from '../model/peer.js';
import type { NotifySocket } from './activation-notify.js';
import type { StoredFd } from './fd-store.js';
import type { HandlerEnding, RunningHandler } from './handler-table.js';

/** The process as the service's one running handler: it always has a pid. */
export type ProcessHandler = RunningHandler & { readonly pid: number };

/** The process has no peer: it accepts its connections itself. */
export const processPeer: Peer = { kind: 'unix', localPath: '', pid: null, uid: null, gid: null };

/** How the process last ended, as `status` shows it (`lastExit`). */
export type LastExit = {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly spawnError: string | null;
  readonly at: string;
} | null;

/** What the old daemon's activation server tells the new one (`CarriedService.process`). */
export type ProcessCarry = {
  /** The process running now; null: none runs (the counters below still carry). */
  readonly running: {
    readonly pid: number;
    /** Wall-clock ms. */
    readonly startedAt: number;
    /** How long it had run when carried (the new daemon's uptime goes on from there). */
    readonly uptimeMs: number;
  } | null;
  /** Starts so far (`restarts` is one less). */
  readonly starts: number;
  readonly lastExit: LastExit;
  /** The restart delay reached (null: none yet), so quick failures go on doubling it. */
  readonly delayMs: number | null;
  /** The name NOTIFY_SOCKET gave the process (its socket is the fd named `notify`). */
  readonly notifyAddress?: string | null;
};

/** The fd name a stored fd travels under: `stored:` and its FDNAME. */
export const storedFdPrefix = 'stored:';

/** A carry as the old daemon's activation server gives it, with the fds to pass on. */
export interface ProcessHandOver {
  readonly state: ProcessCarry;
  /**
   * Sent on the queue socket after the queued connections: `stderr`, its stderr pipe; `notify`,
   * its NOTIFY_SOCKET; `stored:NAME`, each fd in the fd store, in order.
   */
  readonly fds: readonly { readonly name: string; readonly fd: number }[];
}

/** What the new daemon's activation server adopts: the carry, the running one watched. */
export type AdoptedProcess = Omit<ProcessCarry, 'running'> & {
  /** The carried process as a handler whose outcome resolves when /proc shows it gone. */
  readonly handler: RunningHandler | null;
  readonly uptimeMs: number;
  /** Its stderr pipe, carried too (`stderr: log`): logged here from now on. */
  readonly stderr: Readable | null;
  /** Its notify socket (the process keeps sending to the same name). */
  readonly notify: NotifySocket | null;
  /** The fd store, in order. */
  readonly stored: readonly StoredFd[];
};

/** The activation server's state a carry is made of. */
export interface ActivationState {
  readonly running: { readonly handler: ProcessHandler; readonly startedClock: number } | null;
  readonly starts: number;
  readonly lastExit: LastExit;
  readonly delayMs: number | null;
  /** The running process's stderr pipe (`stderr: log`). */
  readonly pipe: Readable | null;
  /** Its notify socket and fd store. */
  readonly notify: {
    readonly socket: NotifySocket | null;
    readonly store: { readonly entries: readonly StoredFd[] };
  };
}

/**
 * The carry of `state` at monotonic time `clock`, and its fds: the stderr pipe, paused (the old
 * daemon no longer reads it; `resume` after a failed hand-over).
 */
export function handOverProcess(state: ActivationState, clock: number): ProcessHandOver {
  const { pipe, notify } = state;
  const fd = pipe === null ? null : handleFd(pipe);
  if (pipe !== null) stopReading(pipe);
  const fds = [
    ...(fd === null ? [] : [{ name: 'stderr', fd }]),
    ...(notify.socket === null ? [] : [{ name: 'notify', fd: notify.socket.fd }]),
    ...notify.store.entries.map((s) => ({ name: `${storedFdPrefix}${s.name}`, fd: s.fd })),
  ];
  const notifyAddress = notify.socket?.address ?? null;
  return { state: { ...describeCarry(state, clock), notifyAddress }, fds };
}

/** A net.Socket's handle, as far as reading goes (Node's own fields). */
type ReadingHandle = { reading?: boolean; readStop?: () => number; readStart?: () => number };

const handleOf = (pipe: Readable): ReadingHandle | undefined =>
  (pipe as { _handle?: ReadingHandle })._handle;

/**
 * Stops reading a pipe at once: pause() alone lets Node read ahead into the stream's buffer, and
 * what it read would be lost with the old daemon.
 */
function stopReading(pipe: Readable): void {
  const handle = handleOf(pipe);
  if (handle?.readStop !== undefined) {
    handle.reading = false;
    handle.readStop();
  }
  pipe.pause();
}

/** Reads a pipe stopped by a hand-over again (a failed one); a no-op on one being read. */
export function resumeReading(pipe: Readable): void {
  const handle = handleOf(pipe);
  if (handle?.reading === false && handle.readStart !== undefined) {
    handle.reading = true;
    handle.readStart();
  }
  pipe.resume();
}

/** The carry of `state` at monotonic time `clock` (pure). */
function describeCarry(state: ActivationState, clock: number): ProcessCarry {
  const { running, starts, lastExit, delayMs } = state;
  return {
    running:
      running === null
        ? null
        : {
            pid: running.handler.pid,
            startedAt: running.handler.startedAt,
            uptimeMs: Math.max(0, clock - running.startedClock),
          },
    starts,
    lastExit,
    delayMs,
  };
}

/**
 * The adopted process as the activation server runs it (pure): started `uptimeMs` before
 * `clock`, with an ending of its own that the kill escalator marks when the daemon ends it.
 */
export function adoptedRunning(
  adopted: AdoptedProcess & {
    readonly handler: ProcessHandler;
    readonly stopSignal: NodeJS.Signals;
  },
  clock: number,
): { handler: ProcessHandler & { readonly ending: HandlerEnding }; startedClock: number } {
  const ending: HandlerEnding = { timedOut: false, forced: false, stopSignal: adopted.stopSignal };
  return { handler: { ...adopted.handler, ending }, startedClock: clock - adopted.uptimeMs };
}
