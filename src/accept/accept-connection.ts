import type { Socket } from 'node:net';
import type { ListenAddress, ServiceSpec } from '../config/types.js';
import type { EventLog } from '../log/events.js';
import { cleanText } from '../log/clean.js';
import { forEachLine } from '../log/line-splitter.js';
import { buildHandlerEnv } from '../spawn/env.js';
import { buildSpawnPlan } from '../spawn/plan.js';
import type { HandlerOutcome, Spawner } from '../spawn/types.js';
import { connectionId, describePeer, formatPeer, type Peer, type PeerCredentials } from './peer.js';

/** A handler that is running now. */
export interface RunningHandler {
  readonly conn: string;
  readonly pid: number;
  readonly peer: Peer;
  readonly startedAt: number;
  readonly outcome: Promise<HandlerOutcome>;
}

export interface AcceptDeps {
  readonly service: ServiceSpec;
  readonly spawner: Spawner;
  readonly log: EventLog;
  readonly now: () => number;
  readonly peerCredentials: (fd: number) => PeerCredentials | null;
  /** Live handlers of this service from the same source as `peer`. */
  readonly countFromSource: (peer: Peer) => number;
  readonly onStart: (handler: RunningHandler) => void;
  readonly onEnd: (handler: RunningHandler, outcome: HandlerOutcome) => void;
  readonly onSpawnFailed: () => void;
}

const maxStderrLine = 4096;

/**
 * The per-connection path: describe the peer, build the plan, spawn with the socket as fd 0
 * and 1, and drop the daemon's copy at once. Never throws: failures become log records.
 */
export function acceptConnection(
  deps: AcceptDeps,
  socket: Socket,
  listener: ListenAddress,
  n: number,
): void {
  socket.on('error', () => {
    // a reset from a peer that left before its handler started: nothing to do
  });
  const fd = socketFd(socket);
  const peer = describePeer(
    socket,
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
    socket.destroy();
    deps.onSpawnFailed();
    return;
  }
  const env = buildHandlerEnv({
    service: deps.service,
    peer,
    connectionId: conn,
    sourceConnections: deps.countFromSource(peer) + 1,
  });
  const spawned = deps.spawner.spawn(buildSpawnPlan(deps.service, env), fd);
  socket.destroy();
  if (spawned.pid === null) {
    void spawned.outcome.then((outcome) => reportFailure(deps, log, peer, outcome));
    return;
  }
  const handler: RunningHandler = {
    conn,
    pid: spawned.pid,
    peer,
    startedAt: deps.now(),
    outcome: spawned.outcome,
  };
  deps.onStart(handler);
  log.log('info', 'accept', { peer: formatPeer(peer), pid: handler.pid });
  if (spawned.stderr !== null) {
    forEachLine(spawned.stderr, maxStderrLine, (line) =>
      log.log('info', 'stderr', { pid: handler.pid, line: cleanText(line, maxStderrLine) }),
    );
  }
  void spawned.outcome.then((outcome) => {
    if (outcome.kind === 'spawn-failed') reportFailure(deps, log, peer, outcome);
    else
      log.log('info', 'end', {
        pid: handler.pid,
        exitCode: outcome.exitCode,
        signal: outcome.signal,
        durationMs: deps.now() - handler.startedAt,
      });
    deps.onEnd(handler, outcome);
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

/** The OS fd of an accepted socket (Node keeps it on the internal handle). */
export function socketFd(socket: Socket): number | null {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } })._handle;
  return typeof handle?.fd === 'number' && handle.fd >= 0 ? handle.fd : null;
}
