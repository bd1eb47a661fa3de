import type { Socket } from 'node:net';
import type { BuiltinName } from '../config/types.js';
import type { EventLog } from '../log/events.js';
import { formatPeer } from '../model/peer.js';
import type { HandlerOutcome } from '../model/spawn.js';
import { serveBuiltinStream } from './builtin-streams.js';
import type { ConnectionServer, ServeRequest, Served } from './connection-server.js';
import type { HandlerEnding } from './handler-table.js';
import { servedInProcess } from './in-process.js';

/**
 * The builtin server (`now`: wall-clock ms, for records and the daytime and time answers): no
 * process; each admitted stream connection is served by the daemon itself
 * (builtin-streams.ts), in a slot with pid null until the socket has closed. Writes the
 * connection's `accept` and `end` records.
 */
export function createBuiltinServer(now: () => number): ConnectionServer {
  return {
    serve(request: ServeRequest): Served {
      const { service, accepted, waitedMs } = request;
      const builtin = service.builtin as BuiltinName;
      const socket = accepted.incoming.takeSocket();
      const ending: HandlerEnding = { timedOut: false, forced: false };
      const startedAt = now();
      accepted.log.log('info', 'accept', {
        peer: formatPeer(accepted.peer),
        builtin,
        ...(waitedMs === null ? {} : { waitedMs }),
      });
      const outcome = endOf(socket, { log: accepted.log, builtin, ending, startedAt, now });
      serveBuiltinStream(builtin, socket, now);
      return servedInProcess({
        accepted,
        startedAt,
        outcome,
        ending,
        close: () => socket.destroy(),
      });
    },
  };
}

interface EndContext {
  readonly log: EventLog;
  readonly builtin: BuiltinName;
  readonly ending: HandlerEnding;
  readonly startedAt: number;
  readonly now: () => number;
}

/** Resolves once `socket` has closed, after its `end` record (an error ends it too). */
function endOf(socket: Socket, context: EndContext): Promise<HandlerOutcome> {
  const { log, builtin, ending } = context;
  let failure: NodeJS.ErrnoException | null = null;
  socket.on('error', (error: NodeJS.ErrnoException) => {
    failure ??= error;
    socket.destroy();
  });
  return new Promise<HandlerOutcome>((resolve) => {
    socket.once('close', () => {
      const code = failure === null ? null : (failure.code ?? 'EIO');
      log.log('info', 'end', {
        pid: null,
        builtin,
        bytesFromClient: socket.bytesRead,
        bytesToClient: socket.bytesWritten,
        durationMs: context.now() - context.startedAt,
        timedOut: ending.timedOut,
        closed: ending.requested === true,
        ...(code === null ? {} : { code, syscall: failure?.syscall ?? 'read' }),
      });
      resolve({ kind: 'exit', exitCode: code === null ? 0 : 1, signal: null });
    });
  });
}
