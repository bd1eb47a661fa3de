import { resolve as resolvePath } from 'node:path';
import { FatalError } from '../model/errors.js';
import { throwBindFailures } from '../listen/bind.js';
import type { Config, ServiceSpec } from '../config/types.js';
import { ControlError } from '../control/protocol.js';
import type { EventLog } from '../log/events.js';
import type { Spawner } from '../model/spawn.js';
import type { CarriedService } from '../handover/handover-channel.js';
import type { HandoverHost } from '../handover/host.js';
import { assignInheritedFds, type InheritedFd } from '../handover/inherited-fds.js';
import { dropInheritedFd, restoreCarried, serveInheritedFds } from '../handover/inherit.js';
import type { AcceptBackend } from '../listen/accept-backend.js';
import { boundInListenOrder } from './listener-order.js';
import { ServiceRunner } from './service-runner.js';
import { ServiceTable } from './service-table.js';
import { createSharedLimits, type SharedLimits } from '../connection/shared-limits.js';
import { terminateHandlers } from '../connection/terminate.js';
import type { RunningHandler } from '../connection/handler-table.js';
import { describeService, type DaemonStatus } from './state.js';

export interface DaemonOptions {
  readonly config: Config;
  readonly spawner: Spawner;
  readonly log: EventLog;
  readonly killGraceMs: number;
  /** How listeners accept and Unix peers' credentials are read (made once at start). */
  readonly accept: AcceptBackend;
  /** The daemon-wide cap on running handlers (`--max-connections`); null: none. */
  readonly maxConnections?: number | null;
  readonly now?: () => number;
}

export interface StartOptions {
  /** Listening sockets passed to this process (LISTEN_FDS, a hand-over). */
  readonly fds?: readonly InheritedFd[];
  /** Services that stay stopped (a hand-over carries them). */
  readonly stopped?: ReadonlySet<string>;
  /**
   * Called once every fresh address is bound and before inherited fds are served: a hand-over
   * waits there until the old process has stopped accepting, and gets what it carried.
   */
  readonly takeOver?: () => Promise<Readonly<Record<string, CarriedService>> | null>;
}

/** The running daemon: one ServiceRunner and one lifecycle state per enabled service. */
export class Daemon implements HandoverHost {
  /** The services, their runners and lifecycle states (changed by lifecycle verbs and reloads). */
  readonly services = new ServiceTable();
  readonly options: DaemonOptions;
  readonly shared: SharedLimits;
  readonly now: () => number;
  readonly startedAt: number;
  private running: Config;
  private closing = false;
  private handedOver = false;
  /** `service conn` of handlers started by the process this one took over from. */
  private readonly inherited = new Set<string>();
  private stopping: Promise<void> | null = null;
  private lock: Promise<unknown> = Promise.resolve();

  constructor(options: DaemonOptions) {
    this.options = options;
    this.running = options.config;
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.shared = createSharedLimits({ globalMax: options.maxConnections ?? null });
  }

  get log(): EventLog {
    return this.options.log;
  }

  /** The configuration now running (replaced by a reload, `useConfig`). */
  get config(): Config {
    return this.running;
  }

  /** A reload switched to `config` (its services are in the table already). */
  useConfig(config: Config): void {
    this.running = config;
  }

  /** Set once shutdown or a hand-over begins: no lifecycle request is taken after that. */
  get isClosing(): boolean {
    return this.closing;
  }

  /** Set once a hand-over succeeded: the handlers are the new process's concern now. */
  get hasHandedOver(): boolean {
    return this.handedOver;
  }

  markHandedOver(): void {
    this.closing = true;
    this.handedOver = true;
  }

  /** Binds (or adopts) every enabled service's addresses; all or nothing. `name=address` pairs. */
  async start(options: StartOptions = {}): Promise<string[]> {
    const enabled = this.config.services.filter((s) => !s.disabled);
    if (enabled.length === 0) this.log.log('warn', 'no-services', { dir: this.config.dir });
    const assignment = assignInheritedFds(enabled, options.fds ?? []);
    for (const unused of assignment.unused) dropInheritedFd(this.log, unused);
    let orphans: RunningHandler[] = [];
    try {
      const failures: FatalError[] = [];
      for (const spec of enabled) {
        const fds = assignment.byService.get(spec.name) ?? new Map<number, number>();
        const isStopped = options.stopped?.has(spec.name) === true;
        failures.push(...(await this.startService(spec, fds, isStopped)));
      }
      throwBindFailures(failures);
      const carried = options.takeOver === undefined ? null : await options.takeOver();
      if (carried !== null) orphans = this.restore(carried);
      for (const [name, fds] of assignment.byService) {
        const runner = this.services.get(name);
        if (runner !== undefined && this.services.stateOf(name) !== 'stopped')
          await serveInheritedFds(runner, fds, this.log);
      }
    } catch (error) {
      // a failed take-over: adopted processes and inherited Unix paths stay the previous owner's
      for (const runner of this.services.all()) runner.disownProcess();
      await this.closeAll({ keepPath: (options.fds ?? []).length > 0 });
      throw error;
    }
    // serving: a removed `accept: false` service's process is ended, as a reload would
    void terminateHandlers(orphans, this.options.killGraceMs);
    return this.listenerPairs();
  }

  /**
   * A runner for `spec`, its addresses bound unless stopped or given as inherited fds; the
   * addresses that could not be bound (every one is tried, so that all are reported at once).
   */
  private async startService(
    spec: ServiceSpec,
    fds: ReadonlyMap<number, number>,
    isStopped: boolean,
  ): Promise<FatalError[]> {
    const runner = this.createRunner(spec);
    this.services.add(runner, isStopped ? 'stopped' : 'running');
    const failures: FatalError[] = [];
    for (const [index, address] of spec.listen.entries()) {
      const fd = fds.get(index);
      if (isStopped && fd !== undefined)
        dropInheritedFd(this.log, { fd, name: spec.name, reason: 'stopped' });
      else if (!isStopped && fd === undefined)
        await runner.addListener(address).catch((error: unknown) => {
          if (!(error instanceof FatalError)) throw error;
          failures.push(error);
        });
    }
    return failures;
  }

  /**
   * What the process this one took over from carried: counters, handlers, queued connections,
   * `accept: false` processes; returns those of services no longer configured.
   */
  private restore(carried: Readonly<Record<string, CarriedService>>): RunningHandler[] {
    const orphans: RunningHandler[] = [];
    restoreCarried(this.services.all(), carried, {
      onAdopted: (service, handler) => {
        const key = `${service} ${handler.conn}`;
        this.inherited.add(key);
        void handler.outcome.then(() => this.inherited.delete(key));
      },
      onOrphan: (_, process) => orphans.push(process),
    });
    return orphans;
  }

  createRunner(spec: ServiceSpec): ServiceRunner {
    return new ServiceRunner(spec, {
      spawner: this.options.spawner,
      log: this.log,
      now: this.now,
      accept: this.options.accept,
      shared: this.shared,
    });
  }

  /** `name=address` for every bound listener, in each service's `listen` order. */
  listenerPairs(): string[] {
    return this.services
      .all()
      .flatMap((runner) => boundInListenOrder(runner).map((b) => `${runner.spec.name}=${b}`));
  }

  /** The runner of an enabled service, or a ControlError naming what is wrong. */
  runnerOf(name: string): ServiceRunner {
    const runner = this.services.get(name);
    if (runner !== undefined) return runner;
    const disabled = this.config.services.some((s) => s.name === name && s.disabled);
    throw new ControlError(
      'unknown-service',
      disabled ? `service ${name} is disabled in its file` : `no service named ${name}`,
    );
  }

  listServices(): readonly ServiceRunner[] {
    return this.services.all();
  }

  unboundServices(): readonly string[] {
    return this.services.unbound();
  }

  /** Runs `fn` after every earlier exclusive operation (those that bind or close listeners). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(() => {
      if (this.closing) throw new ControlError('failed', 'the daemon is shutting down');
      return fn();
    });
    this.lock = run.catch(() => undefined);
    return run;
  }

  isInherited(service: string, conn: string): boolean {
    return this.inherited.has(`${service} ${conn}`);
  }

  /** The whole state, as `status --json` shows it and SIGUSR1 logs it. */
  status(only?: string): DaemonStatus {
    const now = this.now();
    const runners = only === undefined ? this.services.all() : [this.runnerOf(only)];
    return {
      pid: process.pid,
      startedAt: new Date(this.startedAt).toISOString(),
      configDir: resolvePath(this.config.dir),
      services: runners
        .sort((a, b) => (a.spec.name < b.spec.name ? -1 : 1))
        .map((runner) => {
          const name = runner.spec.name;
          return describeService(
            {
              name,
              state: this.services.stateOf(name),
              listeners: boundInListenOrder(runner),
              accepted: runner.counters.accepted,
              spawnFailed: runner.counters.spawnFailed,
              refused: runner.refusedCounts(),
              handlers: runner.connectionHandlers.values(),
              isInherited: (conn) => this.isInherited(name, conn),
              process: runner.process,
            },
            now,
          );
        }),
    };
  }

  /** Stop accepting, end every handler (SIGTERM, then SIGKILL after the grace), remove paths. */
  shutdown(signal: string): Promise<void> {
    this.stopping ??= this.doShutdown(signal);
    return this.stopping;
  }

  get activeHandlers(): number {
    return this.services.activeHandlers;
  }

  /**
   * Resolves once every proxied connection of this process has ended: a hand-over passes
   * handlers on (they are processes) but not the copies this process runs for proxied ones.
   */
  async proxiedEnded(): Promise<void> {
    const proxied = this.services
      .all()
      .flatMap((runner) => [...runner.connectionHandlers.values()])
      .filter((handler) => handler.pid === null);
    await Promise.all(proxied.map((handler) => handler.outcome));
  }

  private async doShutdown(signal: string): Promise<void> {
    await this.lock;
    this.closing = true;
    if (this.handedOver) return;
    this.log.log('info', 'shutdown', { signal, handlers: this.activeHandlers });
    const runners = this.services.all();
    for (const runner of runners) runner.closeQueue();
    await this.closeAll();
    await Promise.all(runners.map((r) => r.terminateAll(this.options.killGraceMs)));
  }

  private async closeAll(options: { readonly keepPath?: boolean } = {}): Promise<void> {
    await Promise.all(this.services.all().map((r) => r.closeListeners(options)));
  }
}
