import { connect } from 'node:net';
import { ExitCode, FatalError, describeSystemError } from '../model/errors.js';
import {
  parseReply,
  type ControlCommand,
  type ControlReply,
  type ControlRequestOf,
  type RequestId,
} from './protocol.js';

export interface SendOptions {
  /** From the connect attempt to the end of the reply line. */
  readonly timeoutMs: number;
}

/**
 * Sends one request on a fresh connection and resolves to the daemon's reply, whether `ok` or
 * not (the reply's id is the request's, or null when the daemon refused the connection or the
 * line). Throws FatalError: exit 102 when the daemon cannot be reached or does not answer,
 * 101 when its answer is not a reply.
 */
export function sendControlRequest<C extends ControlCommand>(
  path: string,
  request: ControlRequestOf<C>,
  options: SendOptions,
): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const parts: Buffer[] = [];
    let isConnected = false;
    const settle = (outcome: ControlReply | FatalError): void => {
      clearTimeout(timer);
      socket.destroy();
      if (outcome instanceof FatalError) reject(outcome);
      else resolve(outcome);
    };
    const timer = setTimeout(
      () =>
        settle(unreachable(`no reply from the daemon at ${path} within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    socket.once('connect', () => {
      isConnected = true;
      socket.write(`${JSON.stringify(request)}\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      const end = chunk.indexOf(10);
      parts.push(end === -1 ? chunk : chunk.subarray(0, end));
      if (end !== -1) settle(readReply(Buffer.concat(parts).toString('utf8'), request.id, path));
    });
    socket.once('error', (error) => {
      const reason = describeSystemError(error);
      settle(
        isConnected
          ? unreachable(`no reply from the daemon at ${path}: ${reason}`)
          : unreachable(`daemon not reachable at ${path}: ${reason}`),
      );
    });
    socket.once('close', () => {
      settle(unreachable(`no reply from the daemon at ${path}: connection closed`));
    });
  });
}

function readReply(line: string, id: RequestId, path: string): ControlReply | FatalError {
  const reply = parseReply(line);
  if (reply === null || (reply.id !== null && reply.id !== id)) {
    return new FatalError(`malformed reply from the daemon at ${path}`, ExitCode.bug);
  }
  return reply;
}

function unreachable(message: string): FatalError {
  return new FatalError(message, ExitCode.unreachable);
}
