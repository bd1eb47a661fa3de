import type { EventLog, LogJson } from '../log/events.js';
import { finishStderr, logHandlerStderr, logStderr, type StderrLog } from '../log/stderr-pipes.js';
import { formatPeer, type Peer } from '../model/peer.js';
import type { HandlerExit, HandlerOutcome, Spawner } from '../model/spawn.js';
import { buildHandlerEnv } from '../spawn/env.js';
import { buildSpawnPlan } from '../spawn/plan.js';
import type { ConnectionServer, ServeRequest, Served } from './connection-server.js';
import type { HandlerEnding, RunningHandler } from './handler-table.js';

export interface SpawnServerOptions {
  readonly spawner: Spawner;
  /** Wall-clock ms: `startedAt`, `durationMs`. */
  readonly now: () => number;
}

/**
 * The spawn server: a handler per connection, the socket as its fd 0 and 1, the daemon's copy
 * dropped at once. Writes the connection's `accept`, `stderr`, `end` and `spawn-failed`
 * records.
 */
export function createSpawnServer(options: SpawnServerOptions): ConnectionServer {
  return { serve: (request) => startHandler(options, request) };
}

function startHandler(options: SpawnServerOptions, request: ServeRequest): Served {
  const { service, accepted, waitedMs } = request;
  const { incoming, fd, peer, conn, log } = accepted;
  const env = buildHandlerEnv({
    service,
    peer,
    connectionId: conn,
    sourceConnections: request.peerHandlers + 1,
  });
  const spawned = options.spawner.spawn(buildSpawnPlan(service, env), fd);
  incoming.close();
  if (spawned.pid === null) {
    const ended = spawned.outcome.then((outcome) => {
      reportFailure(log, peer, outcome);
      return outcome;
    });
    return { kind: 'not-started', ended };
  }
  const ending: HandlerEnding = { timedOut: false, forced: false, stopSignal: service.killSignal };
  const { pid } = spawned;
  const handler: RunningHandler = {
    conn,
    pid,
    peer,
    startedAt: options.now(),
    outcome: spawned.outcome,
    ending,
  };
  const peerText = formatPeer(peer);
  log.log(
    'info',
    'accept',
    waitedMs === null ? { peer: peerText, pid } : { peer: peerText, pid, waitedMs },
  );
  const stderr = logHandlerStderr(spawned, { service, log, pid });
  const ended = spawned.outcome.then((outcome) => {
    if (outcome.kind === 'spawn-failed') {
      if (stderr !== null) finishStderr(stderr);
      reportFailure(log, peer, outcome);
    } else
      reportEnd(log, {
        pid,
        exit: outcome,
        ending,
        stderr,
        startedAt: handler.startedAt,
        now: options.now(),
      });
    return outcome;
  });
  return { kind: 'running', handler, ending, ended };
}

/** For the activation server: a handler's stderr logged as this server logs it. */
export { logStderr };

/** What a handler's `end` record tells. */
export interface HandlerEnd {
  readonly pid: number;
  readonly exit: HandlerExit;
  readonly ending: HandlerEnding;
  /** Read to this instant first: the lines it wrote are logged before the `end` record. */
  readonly stderr: StderrLog | null;
  /** Wall-clock ms, when it started and now. */
  readonly startedAt: number;
  readonly now: number;
}

export function reportEnd(log: EventLog, end: HandlerEnd): void {
  const stderrDropped = end.stderr === null ? 0 : finishStderr(end.stderr);
  const fields: Record<string, LogJson> = {
    pid: end.pid,
    exitCode: end.exit.exitCode,
    signal: end.exit.signal,
    durationMs: end.now - end.startedAt,
    timedOut: end.ending.timedOut,
    forced: end.ending.forced,
  };
  // Added, not spread in: a spread in a literal is a slow runtime copy (every connection).
  if (stderrDropped !== 0) fields.stderrDropped = stderrDropped;
  log.log('info', 'end', fields);
}

function reportFailure(log: EventLog, peer: Peer, outcome: HandlerOutcome): void {
  if (outcome.kind !== 'spawn-failed') return;
  log.log('error', 'spawn-failed', {
    peer: formatPeer(peer),
    code: outcome.error.code,
    error: outcome.error.message,
  });
}
