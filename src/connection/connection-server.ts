import type { ServiceSpec } from '../config/types.js';
import type { HandlerOutcome } from '../model/spawn.js';
import type { AcceptedConnection } from './describe-connection.js';
import type { HandlerEnding, RunningHandler } from './handler-table.js';

/** An admitted connection, handed to a server to serve. */
export interface ServeRequest {
  /** The service's definition now; the handler keeps it. */
  readonly service: ServiceSpec;
  readonly accepted: AcceptedConnection;
  /** Handlers of the service running for the same peer now (this one not counted). */
  readonly peerHandlers: number;
  /** How long it waited in the queue (ms), for its `accept` record; null: it did not wait. */
  readonly waitedMs: number | null;
}

/**
 * What a server started for a connection. `ended` resolves once the handler has exited or
 * never started, after the server wrote its last record (`end` or `spawn-failed`); its owner
 * then frees the slot. A running handler's `ending` is what the `end` record will say: whoever
 * signals the handler updates it.
 */
export type Served =
  | {
      readonly kind: 'running';
      readonly handler: RunningHandler;
      readonly ending: HandlerEnding;
      readonly ended: Promise<HandlerOutcome>;
    }
  | { readonly kind: 'not-started'; readonly ended: Promise<HandlerOutcome> };

/**
 * A way to serve an admitted connection. Never throws: a failure is a record in the
 * connection's log and a `spawn-failed` outcome. The spawn server (spawn-server.ts) starts a
 * handler per connection; proxy, builtin and `accept: false` servers plug in beside it.
 */
export interface ConnectionServer {
  serve(request: ServeRequest): Served;
}
