// A UDP socket for an `accept: false` service (inetd's `dgram wait`): bound by node:dgram, held
// by the addon like a listening socket (hold.ts), never read by the daemon. The first datagram
// makes it readable, which starts the process; the datagram stays queued for it.
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { ListenAddress } from '../config/types.js';
import { describeSystemError } from '../model/errors.js';
import { bindFailure } from './bind.js';
import type { NativeAcceptWatch } from './native-accept.js';

type UdpAddress = ListenAddress & { kind: 'udp' };

/** A bound UDP socket's fd (still owned by `socket`) and what it is bound to. */
export interface BoundDatagram {
  readonly fd: number;
  readonly bound: string;
  readonly port: number;
}

/**
 * Binds `address` (no SO_REUSEADDR: a second binder fails as with TCP), gives its fd to `take`
 * (which keeps its own duplicate), then closes the dgram socket: the socket stays bound through
 * the duplicate. Throws a FatalError.
 */
export async function bindDatagram(
  address: UdpAddress,
  take: (fd: number) => NativeAcceptWatch,
): Promise<{ watch: NativeAcceptWatch; bound: string; port: number }> {
  const v6 = address.host === null || isIPv6(address.host);
  const socket = createSocket({ type: v6 ? 'udp6' : 'udp4', reuseAddr: false, ipv6Only: false });
  try {
    const { fd, bound, port } = await bindSocket(socket, address);
    return { watch: take(fd), bound, port };
  } catch (error) {
    throw bindFailure(address, describeSystemError(error));
  } finally {
    closeQuietly(socket);
  }
}

function closeQuietly(socket: Socket): void {
  try {
    socket.close();
  } catch {
    // never bound (the bind failed): nothing to close
  }
}

function bindSocket(socket: Socket, address: UdpAddress): Promise<BoundDatagram> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    const host = address.host ?? '::';
    socket.bind({ port: address.port, address: host, exclusive: true }, () => {
      socket.off('error', reject);
      const fd = datagramFd(socket);
      if (fd === null) {
        reject(new Error('Node shows no fd for the socket, which accept: false must hold'));
        return;
      }
      const info = socket.address();
      const shown = info.family === 'IPv6' ? `[${info.address}]` : info.address;
      resolve({ fd, bound: `udp:${shown}:${info.port}`, port: info.port });
    });
  });
}

/**
 * The OS fd of a bound dgram socket. node:dgram has no public fd, and its `_handle` getter is
 * runtime-deprecated (DEP0112, a warning on stderr): the handle is read from the socket's
 * internal state object (a symbol-keyed property holding `handle`), as Node 20 lays it out.
 * null when that layout is not there.
 */
export function datagramFd(socket: Socket): number | null {
  for (const key of Object.getOwnPropertySymbols(socket)) {
    const state = (socket as unknown as Record<symbol, unknown>)[key];
    if (typeof state !== 'object' || state === null || !('handle' in state)) continue;
    const handle = (state as { handle?: { fd?: unknown } }).handle;
    return typeof handle?.fd === 'number' && handle.fd >= 0 ? handle.fd : null;
  }
  return null;
}
