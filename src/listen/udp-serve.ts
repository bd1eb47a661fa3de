// A UDP socket the daemon reads itself (a `builtin` service): bound by node:dgram, every
// datagram handed on as it is read. The kernel queues datagrams until they are read; nothing is
// read and thrown away (xinetd throws away the one waiting after each answer).
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { ListenAddress } from '../config/types.js';
import { describeSystemError } from '../model/errors.js';
import { bindFailure } from './bind.js';
import { datagramFd } from './udp.js';

type UdpAddress = ListenAddress & { kind: 'udp' };

/** Where a datagram came from and the local address it was read on. */
export interface DatagramFrom {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

export interface DatagramEvents {
  onMessage(message: Buffer, from: DatagramFrom): void;
  onError(error: NodeJS.ErrnoException): void;
}

/** A bound UDP socket being read. */
export interface DatagramServer {
  readonly bound: string;
  readonly port: number;
  /** The socket's fd (what `upgrade` passes on); null if Node shows none. */
  readonly fd: number | null;
  /** Sends `answer` to `from`; a failure is the caller's `onError`, never thrown. */
  send(answer: Buffer, from: DatagramFrom): void;
  /** Answers handed to the kernel's queue and not yet sent (Node's send queue). */
  pendingSends(): number;
  close(): Promise<void>;
}

/** SO_RCVBUF asked for: datagrams the kernel keeps for the daemon between two reads. */
export const receiveBufferBytes = 4 * 1024 * 1024;

/**
 * Binds `address` (no SO_REUSEADDR), or serves the inherited bound socket `fd` (LISTEN_FDS) for
 * it, and reads every datagram into `events`. Throws a FatalError.
 */
export async function serveDatagrams(
  address: UdpAddress,
  events: DatagramEvents,
  fd?: number,
): Promise<DatagramServer> {
  const v6 = address.host === null || isIPv6(address.host);
  const socket = createSocket({
    type: v6 ? 'udp6' : 'udp4',
    reuseAddr: false,
    ipv6Only: false,
    // room for a burst while the loop is busy (the kernel caps it at net.core.rmem_max)
    recvBufferSize: receiveBufferBytes,
  });
  try {
    await bind(socket, address, fd);
  } catch (error) {
    socket.close();
    throw bindFailure(address, describeSystemError(error));
  }
  const info = socket.address();
  const shown = info.family === 'IPv6' ? `[${info.address}]` : info.address;
  socket.on('error', (error) => events.onError(error));
  socket.on('message', (message: Buffer, remote: RemoteInfo) =>
    events.onMessage(message, {
      remoteAddress: remote.address,
      remotePort: remote.port,
      localAddress: info.address,
      localPort: info.port,
    }),
  );
  return {
    bound: `udp:${shown}:${info.port}`,
    port: info.port,
    fd: datagramFd(socket),
    send: (answer, to) =>
      socket.send(answer, to.remotePort, to.remoteAddress, (error) => {
        if (error !== null) events.onError(error);
      }),
    pendingSends: () => socket.getSendQueueCount(),
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

function bind(socket: Socket, address: UdpAddress, fd: number | undefined): Promise<void> {
  const options =
    fd === undefined
      ? { port: address.port, address: address.host ?? '::', exclusive: true }
      : { fd, exclusive: true };
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(options, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}
