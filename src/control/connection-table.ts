import type { Socket } from 'node:net';

/**
 * The open control connections. Those with no request in progress are idle, kept in the order
 * they became idle: at the limit the longest-idle one is closed to make room for a newcomer, so
 * that idle connections, however many are opened, never lock the daemon's owner out.
 */
export class ControlConnections {
  private readonly open = new Set<Socket>();
  /** Insertion order: the longest idle first. */
  private readonly idle = new Set<Socket>();

  get size(): number {
    return this.open.size;
  }

  /** Counts `socket` (as idle) until it closes. */
  add(socket: Socket): void {
    this.open.add(socket);
    this.idle.add(socket);
    socket.once('close', () => {
      this.open.delete(socket);
      this.idle.delete(socket);
    });
  }

  markBusy(socket: Socket): void {
    this.idle.delete(socket);
  }

  markIdle(socket: Socket): void {
    this.idle.delete(socket);
    if (this.open.has(socket)) this.idle.add(socket);
  }

  /** Closes the longest-idle connections until fewer than `limit` are open; false if all are busy. */
  makeRoom(limit: number): boolean {
    for (const socket of this.idle) {
      if (this.open.size < limit) break;
      this.open.delete(socket);
      this.idle.delete(socket);
      socket.destroy();
    }
    return this.open.size < limit;
  }

  closeAll(): void {
    for (const socket of this.open) socket.destroy();
  }
}
