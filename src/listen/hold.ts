import { watchOnce, type NativeAcceptWatch } from './native-accept.js';

/**
 * The part of the native addon that holds listening sockets for an `accept: false` service
 * (native/readable.c): the daemon keeps its own copy of each socket, accepts nothing on it, and
 * learns when a connection (or a datagram) is pending.
 */
export interface SocketHolder {
  /** One-shot: calls `onReadable` once when `fd` is readable; reads and accepts nothing. */
  watchReadable(fd: number, onReadable: () => void): void;
  /** Stops a watch set by watchReadable (no-op if none); before the fd is closed. */
  unwatchReadable(fd: number): void;
  /** dup(2) with close-on-exec, ≥ 3. Throws a system error. */
  dupFd(fd: number): number;
  /** close(2). Throws a system error. */
  closeFd(fd: number): void;
}

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
