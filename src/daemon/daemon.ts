import type { PeerCredentials } from '../accept/peer.js';
import type { Config } from '../config/types.js';
import type { EventLog } from '../log/events.js';
import type { Spawner } from '../spawn/types.js';
import { ServiceRunner } from './service-runner.js';

export interface DaemonOptions {
  readonly config: Config;
  readonly spawner: Spawner;
  readonly log: EventLog;
  readonly killGraceMs: number;
  readonly peerCredentials: (fd: number) => PeerCredentials | null;
  readonly now?: () => number;
}

/** The running daemon: one ServiceRunner per enabled service. */
export class Daemon {
  readonly runners = new Map<string, ServiceRunner>();
  private readonly options: DaemonOptions;
  private stopping: Promise<void> | null = null;

  constructor(options: DaemonOptions) {
    this.options = options;
  }

  /** Binds every enabled service; all or nothing. Returns `name=address` pairs. */
  async start(): Promise<string[]> {
    const { config, log } = this.options;
    const enabled = config.services.filter((s) => !s.disabled);
    if (enabled.length === 0) log.log('warn', 'no-services', { dir: config.dir });
    for (const spec of enabled) {
      const runner = new ServiceRunner(spec, {
        spawner: this.options.spawner,
        log,
        now: this.options.now ?? Date.now,
        peerCredentials: this.options.peerCredentials,
      });
      try {
        await runner.bind();
      } catch (error) {
        await this.closeAll();
        throw error;
      }
      this.runners.set(spec.name, runner);
    }
    return [...this.runners.values()].flatMap((r) =>
      r.boundAddresses.map((a) => `${r.spec.name}=${a}`),
    );
  }

  /** Stop accepting, end every handler (SIGTERM, then SIGKILL after the grace), remove paths. */
  shutdown(signal: string): Promise<void> {
    this.stopping ??= this.doShutdown(signal);
    return this.stopping;
  }

  get activeHandlers(): number {
    let n = 0;
    for (const runner of this.runners.values()) n += runner.handlers.size;
    return n;
  }

  private async doShutdown(signal: string): Promise<void> {
    this.options.log.log('info', 'shutdown', { signal, handlers: this.activeHandlers });
    await this.closeAll();
    await Promise.all(
      [...this.runners.values()].map((r) => r.terminateAll(this.options.killGraceMs)),
    );
  }

  private async closeAll(): Promise<void> {
    await Promise.all([...this.runners.values()].map((r) => r.closeListeners()));
  }
}
