import type { HandlerOutcome } from '../model/spawn.js';
import type { Served } from './connection-server.js';
import type { AcceptedConnection } from './describe-connection.js';
import type { HandlerEnding, RunningHandler } from './handler-table.js';

/** A connection the daemon serves itself (a proxy, a built-in), as its server returns it. */
export interface InProcessParts {
  readonly accepted: AcceptedConnection;
  /** Wall-clock ms. */
  readonly startedAt: number;
  /** Resolves once the connection has ended and its last record is written. */
  readonly outcome: Promise<HandlerOutcome>;
  readonly ending: HandlerEnding;
  /** Closes it now (stop, quiesce, `kill`, runtimeMaxSec); `outcome` then resolves. */
  readonly close: () => void;
}

/** A slot like a handler's with pid null, until `outcome`; closing it marks `ending.requested`. */
export function servedInProcess(parts: InProcessParts): Served {
  const { accepted, startedAt, outcome, ending } = parts;
  const handler: RunningHandler = {
    conn: accepted.conn,
    pid: null,
    peer: accepted.peer,
    startedAt,
    outcome,
    ending,
    close: () => {
      ending.requested = true;
      parts.close();
    },
  };
  return { kind: 'running', handler, ending, ended: outcome };
}
