import type { Socket } from 'node:net';
import type { BuiltinName } from '../config/types.js';
import { chargenCycle, daytimeLine, timeBytes } from './builtin-protocols.js';

/** How long a one-answer service (daytime, time) waits for the client's FIN after its own. */
export const lingerMs = 2000;

/**
 * Serves one built-in on a connected stream socket (`allowHalfOpen`). Memory stays bounded
 * whatever the client does: echo pauses reading while its write is pending (pipe), discard and
 * the one-answer services drop what they read, chargen writes again only once the last write
 * has drained.
 */
export function serveBuiltinStream(name: BuiltinName, socket: Socket, now: () => number): void {
  switch (name) {
    case 'echo':
      // pipe: pauses the read side while the socket's write buffer is over its mark; after the
      // client's EOF, ends writing once all is written (half-close)
      socket.pipe(socket);
      return;
    case 'discard':
      socket.on('end', () => socket.end());
      socket.resume();
      return;
    case 'chargen':
      serveChargen(socket);
      return;
    case 'daytime':
      answerOnce(socket, Buffer.from(daytimeLine(now()), 'latin1'));
      return;
    case 'time':
      answerOnce(socket, timeBytes(now()));
      return;
  }
}

/**
 * chargen (RFC 864): the rotating lines until the client closes (as inetd does, a client's
 * half-close does not stop it). One cycle (7030 bytes) is handed to the socket at a time, and
 * the next only once the socket's buffer is under its mark again ('drain').
 */
function serveChargen(socket: Socket): void {
  // what the client sends is read and dropped
  socket.resume();
  const write = (): void => {
    while (!socket.destroyed && socket.writable) {
      if (!socket.write(chargenCycle)) {
        socket.once('drain', write);
        return;
      }
    }
  };
  write();
}

/** daytime and time: the answer, then FIN; what the client sends is read and dropped. */
function answerOnce(socket: Socket, answer: Buffer): void {
  socket.resume();
  socket.on('end', () => socket.end());
  socket.end(answer, () => {
    // a client that never closes its side: its slot is freed after lingerMs
    setTimeout(() => socket.destroy(), lingerMs).unref();
  });
}
