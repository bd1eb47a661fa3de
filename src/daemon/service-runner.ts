import type { Socket } from 'node:net';
import { acceptConnection, type RunningHandler } from '../accept/accept-connection.js';
import type { Peer, PeerCredentials } from '../accept/peer.js';
import type { ServiceSpec } from '../config/types.js';
import type { EventLog } from '../log/events.js';
import { bindListener, type BoundListener } from '../listen/listener.js';
import type { Spawner } from '../spawn/types.js';
import { terminateHandlers } from './terminate.js';

export interface RunnerDeps {
  readonly spawner: Spawner;
  readonly log: EventLog;
  readonly now: () => number;
  readonly peerCredentials: (fd: number) => PeerCredentials | null;
}

export interface ServiceCounters {
  accepted: number;
  spawnFailed: number;
}

/** One service at run time: its listeners, its running handlers and its counters. */
export class ServiceRunner {
  readonly spec: ServiceSpec;
  readonly handlers = new Map<string, RunningHandler>();
  readonly counters: ServiceCounters = { accepted: 0, spawnFailed: 0 };
  private listeners: BoundListener[] = [];
  private readonly deps: RunnerDeps;
  private readonly log: EventLog;

  constructor(spec: ServiceSpec, deps: RunnerDeps) {
    this.spec = spec;
    this.deps = deps;
    this.log = deps.log.child({ service: spec.name });
  }

  get boundAddresses(): string[] {
    return this.listeners.map((l) => l.bound);
  }

  /** Binds every address of the service; on a failure unbinds what was bound and throws. */
  async bind(): Promise<void> {
    for (const address of this.spec.listen) {
      try {
        const listener = await bindListener(address, this.spec.socket, (socket) =>
          this.onConnection(socket, listener.address),
        );
        this.watchAcceptErrors(listener);
        this.listeners.push(listener);
        this.log.log('info', 'listen', { address: listener.bound });
      } catch (error) {
        await this.closeListeners();
        throw error;
      }
    }
  }

  /** Stops accepting and removes the Unix paths this service created. */
  async closeListeners(): Promise<void> {
    const closing = this.listeners;
    this.listeners = [];
    await Promise.all(closing.map((l) => l.close()));
  }

  /** SIGTERM to every handler's process group, SIGKILL after `graceMs`; resolves when all ended. */
  async terminateAll(graceMs: number): Promise<void> {
    await terminateHandlers([...this.handlers.values()], graceMs);
  }

  private onConnection(socket: Socket, address: BoundListener['address']): void {
    this.counters.accepted += 1;
    acceptConnection(
      {
        service: this.spec,
        spawner: this.deps.spawner,
        log: this.log,
        now: this.deps.now,
        peerCredentials: this.deps.peerCredentials,
        countFromSource: (peer) => this.countFromSource(peer),
        onStart: (handler) => this.handlers.set(handler.conn, handler),
        onEnd: (handler) => this.handlers.delete(handler.conn),
        onSpawnFailed: () => (this.counters.spawnFailed += 1),
      },
      socket,
      address,
      this.counters.accepted,
    );
  }

  private countFromSource(peer: Peer): number {
    let count = 0;
    for (const handler of this.handlers.values()) if (isSameSource(handler.peer, peer)) count += 1;
    return count;
  }

  private watchAcceptErrors(listener: BoundListener): void {
    listener.server.on('error', (error: NodeJS.ErrnoException) => {
      this.log.log('error', 'accept-failed', {
        address: listener.bound,
        code: error.code ?? 'EUNKNOWN',
        error: error.message,
      });
    });
  }
}

function isSameSource(a: Peer, b: Peer): boolean {
  if (a.kind === 'tcp' && b.kind === 'tcp') return a.remoteAddress === b.remoteAddress;
  if (a.kind === 'unix' && b.kind === 'unix') return a.uid === b.uid;
  return false;
}
