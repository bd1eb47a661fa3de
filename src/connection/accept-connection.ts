import type { Readable } from 'node:stream';
import type { ListenAddress, ServiceSpec } from '../config/types.js';
import type { IncomingConnection } from '../listen/incoming.js';
import type { EventLog } from '../log/events.js';
import { readStderr, type StderrLines } from '../log/line-splitter.js';
import { buildHandlerEnv } from '../spawn/env.js';
import { buildSpawnPlan } from '../spawn/plan.js';
import type { HandlerOutcome, Spawner } from '../model/spawn.js';
import { describePeer } from './describe-peer.js';
import { connectionId, formatPeer, type Peer, type PeerCredentials } from '../model/peer.js';

/** How a handler was ended by the daemon; set by whoever signals it, read by the `end` record. */
export interface HandlerEnding {
  /** It ran past `limits.runtimeMaxSec`. */
  timedOut: boolean;
  /** The daemon sent SIGKILL to its process group (SIGTERM was not enough). */
  forced: boolean;
}

/** A handler that is running now. */
export interface RunningHandler {
  readonly conn: string;
  readonly pid: number;
  readonly peer: Peer;
  readonly startedAt: number;
  readonly outcome: Promise<HandlerOutcome>;
  /** Started here (not handed over): what its `end` record will say. */
  readonly ending?: HandlerEnding;
}

/** An accepted connection, described, before the admission decision. */
export interface AcceptedConnection {
  readonly incoming: IncomingConnection;
  readonly fd: number;
  readonly peer: Peer;
  readonly conn: string;
  /** Bound to `{conn}`. */
  readonly log: EventLog;
}

export interface DescribeDeps {
  readonly log: EventLog;
  readonly peerCredentials: (fd: number) => PeerCredentials | null;
}

export interface AcceptDeps {
  readonly service: ServiceSpec;
  readonly spawner: Spawner;
  readonly now: () => number;
  /** Live handlers of this service from the same source as `peer`. */
  readonly countFromSource: (peer: Peer) => number;
  /** `ending` is what the `end` record will say; whoever signals the handler updates it. */
  readonly onStart: (handler: RunningHandler, ending: HandlerEnding) => void;
  readonly onEnd: (handler: RunningHandler, outcome: HandlerOutcome) => void;
  readonly onSpawnFailed: () => void;
  /** Exactly once per startHandler call: the handler has exited or never started. */
  readonly onGone: () => void;
}

/**
 * Describes an accepted (unread) connection: its fd, its peer and its connection id `n`. Returns
 * null when it has no fd: then it is logged (`spawn-failed`, EBADF) and closed.
 */
export function describeConnection(
  deps: DescribeDeps,
  incoming: IncomingConnection,
  listener: ListenAddress,
  n: number,
): AcceptedConnection | null {
  const { fd } = incoming;
  const peer = describePeer(
    incoming.ends,
    listener,
    fd !== null && listener.kind === 'unix' ? deps.peerCredentials(fd) : null,
  );
  const conn = connectionId(n, peer);
  const log = deps.log.child({ conn });
  if (fd === null) {
    log.log('error', 'spawn-failed', {
      peer: formatPeer(peer),
      code: 'EBADF',
      error: 'the accepted socket has no file descriptor',
    });
    incoming.close();
    return null;
  }
  return { incoming, fd, peer, conn, log };
}

/**
 * The per-connection path of an admitted connection: build the plan, spawn with the socket as
 * fd 0 and 1, and drop the daemon's copy at once. Never throws: failures become log records.
 * `waitedMs` (a connection that was queued) goes into the `accept` record.
 */
export function startHandler(
  deps: AcceptDeps,
  accepted: AcceptedConnection,
  waitedMs: number | null = null,
): void {
  const { incoming, fd, peer, conn, log } = accepted;
  const env = buildHandlerEnv({
    service: deps.service,
    peer,
    connectionId: conn,
    sourceConnections: deps.countFromSource(peer) + 1,
  });
  const spawned = deps.spawner.spawn(buildSpawnPlan(deps.service, env), fd);
  incoming.close();
  if (spawned.pid === null) {
    void spawned.outcome.then((outcome) => {
      reportFailure(deps, log, peer, outcome);
      deps.onGone();
    });
    return;
  }
  const ending: HandlerEnding = { timedOut: false, forced: false };
  const handler: RunningHandler = {
    conn,
    pid: spawned.pid,
    peer,
    startedAt: deps.now(),
    outcome: spawned.outcome,
    ending,
  };
  deps.onStart(handler, ending);
  log.log('info', 'accept', {
    peer: formatPeer(peer),
    pid: handler.pid,
    ...(waitedMs === null ? {} : { waitedMs }),
  });
  const stderr =
    spawned.stderr === null ? null : logStderr(spawned.stderr, deps.service, log, handler.pid);
  void spawned.outcome.then((outcome) => {
    if (outcome.kind === 'spawn-failed') reportFailure(deps, log, peer, outcome);
    else
      log.log('info', 'end', {
        pid: handler.pid,
        exitCode: outcome.exitCode,
        signal: outcome.signal,
        durationMs: deps.now() - handler.startedAt,
        timedOut: ending.timedOut,
        forced: ending.forced,
        ...(stderr === null || stderr.droppedTotal === 0
          ? {}
          : { stderrDropped: stderr.droppedTotal }),
      });
    deps.onEnd(handler, outcome);
    deps.onGone();
  });
}

/** Logs a handler's stderr lines, within the service's `stderrRate`, and what it dropped. */
function logStderr(
  stream: Readable,
  service: ServiceSpec,
  log: EventLog,
  pid: number,
): StderrLines {
  return readStderr(stream, service.stderrRate, {
    line: (text, truncated) =>
      log.log('info', 'stderr', {
        pid,
        line: text,
        ...(truncated === 0 ? {} : { truncated }),
      }),
    dropped: (bytes, total) => log.log('warn', 'stderr-dropped', { pid, bytes, total }),
  });
}

function reportFailure(deps: AcceptDeps, log: EventLog, peer: Peer, outcome: HandlerOutcome): void {
  if (outcome.kind !== 'spawn-failed') return;
  log.log('error', 'spawn-failed', {
    peer: formatPeer(peer),
    code: outcome.error.code,
    error: outcome.error.message,
  });
  deps.onSpawnFailed();
}
