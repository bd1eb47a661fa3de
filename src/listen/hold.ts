import type { NativeAddon } from '../spawn/native-addon.js';
import { watchOnce, type NativeAcceptWatch } from './native-accept.js';

/**
 * The part of the native addon that holds listening sockets for an `accept: false` service
 * (native/readable.c): the daemon keeps its own copy of each socket, accepts nothing on it, and
 * learns when a connection (or a datagram) is pending; and its notify socket (native/notify.c).
 */
export type SocketHolder = Pick<
  NativeAddon,
  | 'watchReadable'
  | 'unwatchReadable'
  | 'dupFd'
  | 'closeFd'
  | 'datagramPort'
  | 'notifyOpen'
  | 'notifyReceive'
>;

/**
 * Holds the listening socket `serverFd` (a net.Server's, which the caller then closes): the
 * daemon's own duplicate, on which nothing is accepted; `stop` ends any readable watch and
 * closes it. Throws a system error.
 */
export function holdSocket(holder: SocketHolder, serverFd: number): NativeAcceptWatch {
  const fd = holder.dupFd(serverFd);
  return watchOnce(fd, () => {
    holder.unwatchReadable(fd);
    holder.closeFd(fd);
  });
}
