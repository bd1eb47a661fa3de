import type { Readable } from 'node:stream';
import type { ActivationSpec, ServiceSpec } from '../config/types.js';
import type { SocketHolder } from '../listen/hold.js';
import type { EventLog } from '../log/events.js';
import type { HandlerOutcome, Spawner } from '../model/spawn.js';
import { describePassedFds } from '../spawn/activation-env.js';
import { ActivationNotify, type NotifyStatus } from './activation-notify.js';
import {
  adoptedRunning,
  handOverProcess,
  processPeer,
  resumeReading,
  type ProcessHandler,
  type AdoptedProcess,
  type LastExit,
  type ProcessHandOver,
} from './activation-carry.js';
import { decideAfterExit } from './activation-policy.js';
import { describeRun, spawnProcess } from './activation-spawn.js';
import type { HandlerEnding, RunningHandler } from './handler-table.js';
import { logStderr, reportEnd } from './spawn-server.js';
import { signalTree } from './terminate.js';

export interface ActivationServerOptions {
  /** The service's definition now (a reload may replace it: the next start takes it). */
  readonly spec: () => ServiceSpec;
  readonly spawner: Spawner;
  readonly holder: SocketHolder;
  /** Bound to `{service}`. */
  readonly log: EventLog;
  /** Wall-clock ms (`startedAt`, `durationMs`). */
  readonly now: () => number;
  /** Monotonic ms (uptime, restart delays). */
  readonly clock: () => number;
}

/** A held listening socket: the daemon's fd, and what it is bound to (`tcp:127.0.0.1:8080`). */
export interface HeldSocket {
  readonly fd: number;
  readonly bound: string;
}

/** What started the process: a pending connection, the sockets being bound, a restart. */
export type ActivationTrigger = 'demand' | 'start' | 'restart';

/** An `accept: false` service's process as `status` shows it (with NOTIFY_SOCKET's news). */
export type ProcessStatus = NotifyStatus & {
  readonly pid: number | null;
  readonly startedAt: string | null;
  readonly uptimeSec: number | null;
  /** Starts after the first one. */
  readonly restarts: number;
  readonly lastExit: LastExit;
  /** running; waiting (for a connection); delayed (a start after a delay); closed (no sockets). */
  readonly phase: 'running' | 'waiting' | 'delayed' | 'closed';
};

/** The instance id of an `accept: false` service's process (`kill --instance`). */
export const processInstance = 'process';

/**
 * The `accept: false` server (a sibling of the spawn server): holds the service's listening
 * sockets and runs ONE process with them, started by the first pending connection (nothing is
 * read: it waits in the backlog) or as soon as the sockets are held (`start: at-start`), and
 * started again after it exits, per `restart` and with a growing delay (activation-policy.ts).
 * Writes the `activate`, `end`, `spawn-failed`, `stderr` and `restart-scheduled` records. Its
 * NOTIFY_SOCKET and fd store are `notify` (activation-notify.ts).
 */
export class ActivationServer {
  /** The notify socket and the fd store (what a hand-over would pass on). */
  readonly notify: ActivationNotify;
  private readonly options: ActivationServerOptions;
  /** The held sockets in `listen` order; null when they are closed. */
  private fds: readonly number[] | null = null;
  /** What each held socket is bound to (port 0 resolved), for the `activate` record. */
  private bound: readonly string[] = [];
  private running: { readonly handler: ProcessHandler; readonly startedClock: number } | null =
    null;
  private readonly watched = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private delayMs: number | null = null;
  private starts = 0;
  private lastExit: ProcessStatus['lastExit'] = null;
  /** The running process's stderr pipe (`stderr: log`). */
  private pipe: Readable | null = null;
  /** The process adopted from the previous daemon (a hand-over), while it may run. */
  private adopted: RunningHandler | null = null;
  /** The delay came with a hand-over: the first `hold` keeps it. */
  private isDelayCarried = false;

  /** The activation settings it was made with (a reload cannot change `accept`). */
  private readonly initial: ActivationSpec;

  constructor(options: ActivationServerOptions, activation: ActivationSpec) {
    this.options = options;
    this.initial = activation;
    this.notify = new ActivationNotify({
      holder: options.holder,
      log: options.log,
      service: options.spec().name,
      fdStoreMax: () => this.spec().activation.fdStoreMax,
    });
  }

  /** The definition for the next start, with its activation settings. */
  private spec(): ServiceSpec & { readonly activation: ActivationSpec } {
    const spec = this.options.spec();
    return { ...spec, activation: spec.activation ?? this.initial };
  }

  /** The process while it runs, as the service's one handler (stop, quiesce, drain, kill). */
  get handlers(): ReadonlyMap<string, RunningHandler> {
    const running = this.running;
    return new Map(running === null ? [] : [[processInstance, running.handler]]);
  }

  /**
   * Every socket of the service is held (`sockets` in `listen` order): wait for a connection, or
   * start the process now (`start: at-start`). A process still running keeps running.
   */
  hold(sockets: readonly HeldSocket[]): void {
    this.fds = sockets.map((s) => s.fd);
    this.bound = sockets.map((s) => s.bound);
    if (!this.isDelayCarried) this.delayMs = null;
    this.isDelayCarried = false;
    if (this.pipe !== null) resumeReading(this.pipe);
    if (this.running !== null) return;
    if (this.spec().activation.start === 'at-start') this.start('start');
    else this.arm();
  }

  /**
   * The sockets are about to close (stop, drain, shutdown, a reload): nothing starts the process
   * any more, and a running one is asked to finish (SIGTERM to its tree; whoever ends it
   * escalates). The stored fds are closed (unless `keepStore`: a reload binding a socket anew);
   * the notify socket once no process is left. A hand-over (`keepProcess`) leaves the process
   * running with its store and notify socket: the next daemon adopts them.
   */
  release(options: { readonly keepStore?: boolean; readonly keepProcess?: boolean } = {}): void {
    this.fds = null;
    if (options.keepProcess !== true) {
      if (options.keepStore !== true) this.notify.closeStore();
      if (this.running === null) this.notify.close();
    }
    this.unarm();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const pid = this.running?.handler.pid ?? null;
    if (pid !== null && options.keepProcess !== true) signalTree(pid, this.spec().killSignal);
  }

  /**
   * A hand-over: the process and its counters, for the next daemon to adopt, and the fds to
   * carry with it (its stderr pipe, no longer read here; `hold` reads it again after a failed
   * hand-over).
   */
  carry(): ProcessHandOver {
    const { running, starts, lastExit, delayMs, pipe, notify } = this;
    const state = { running, starts, lastExit, delayMs, pipe, notify };
    return handOverProcess(state, this.options.clock());
  }

  /** Taken over (before `hold`): the previous daemon's counters, and its process if it runs. */
  adopt(adopted: AdoptedProcess): void {
    ({ starts: this.starts, lastExit: this.lastExit, delayMs: this.delayMs } = adopted);
    this.isDelayCarried = true;
    if (adopted.notify !== null) this.notify.adoptSocket(adopted.notify);
    this.notify.store.adopt(adopted.stored);
    const { handler } = adopted;
    const pid = handler?.pid ?? null;
    if (handler === null || pid === null || this.running !== null) return;
    this.notify.started(pid);
    const stopSignal = this.spec().killSignal;
    const carried = { ...adopted, handler: { ...handler, pid }, stopSignal };
    const running = adoptedRunning(carried, this.options.clock());
    this.adopted = running.handler;
    this.track(running, adopted.stderr);
  }

  /** A take-over that failed: the adopted process is the previous daemon's again, unsignalled. */
  disown(): void {
    if (this.running !== null && this.running.handler === this.adopted) this.running = null;
  }

  status(): ProcessStatus {
    const running = this.running;
    const phase =
      running !== null
        ? 'running'
        : this.fds === null
          ? 'closed'
          : this.timer !== null
            ? 'delayed'
            : 'waiting';
    const startedAt = running === null ? null : running.handler.startedAt;
    return {
      pid: running?.handler.pid ?? null,
      startedAt: startedAt === null ? null : new Date(startedAt).toISOString(),
      uptimeSec:
        running === null ? null : Math.round(this.options.clock() - running.startedClock) / 1000,
      restarts: Math.max(0, this.starts - 1),
      lastExit: this.lastExit,
      phase,
      ...this.notify.status(),
    };
  }

  /** Watches every held socket; the first pending connection starts the process. */
  private arm(): void {
    if (this.fds === null) return;
    for (const fd of this.fds) {
      if (this.watched.has(fd)) continue;
      this.options.holder.watchReadable(fd, () => this.start('demand'));
      this.watched.add(fd);
    }
  }

  private unarm(): void {
    for (const fd of this.watched) this.options.holder.unwatchReadable(fd);
    this.watched.clear();
  }

  private start(trigger: ActivationTrigger): void {
    const fds = this.fds;
    if (fds === null || this.running !== null) return;
    this.unarm();
    this.starts += 1;
    const spec = this.spec();
    const { bound, notify } = this;
    const spawned = spawnProcess({ spec, fds, bound, notify, spawner: this.options.spawner });
    const { log, now, clock } = this.options;
    if (spawned.pid === null) {
      void spawned.outcome.then((outcome) =>
        this.ended(outcome, { uptimeMs: 0, isRequested: false }),
      );
      return;
    }
    const { pid } = spawned;
    this.notify.started(pid);
    const passed = describePassedFds(spec, describeRun({ bound, notify })).fds.map(
      (f) => `${f.fd}=${f.address}`,
    );
    log.log('info', 'activate', { pid, fds: passed, trigger });
    const ending: HandlerEnding = { timedOut: false, forced: false, stopSignal: spec.killSignal };
    const handler = { conn: processInstance, pid, peer: processPeer, startedAt: now(), ending };
    const running = { handler: { ...handler, outcome: spawned.outcome }, startedClock: clock() };
    this.track(running, spawned.stderr);
  }

  /**
   * The process runs until its outcome (its stderr pipe logged): then its `end` record, and what
   * `restart` says.
   */
  private track(
    running: { handler: ProcessHandler & { ending: HandlerEnding }; startedClock: number },
    pipe: Readable | null,
  ): void {
    const { log, now, clock } = this.options;
    this.running = running;
    this.pipe = pipe;
    const { pid, ending, startedAt } = running.handler;
    const stderr = pipe === null ? null : logStderr(pipe, { service: this.spec(), log, pid });
    void running.handler.outcome.then((outcome) => {
      this.notify.ended();
      this.running = null;
      this.pipe = null;
      if (this.fds === null) this.notify.close();
      if (outcome.kind === 'exit')
        reportEnd(log, { pid, ending, stderr, startedAt, exit: outcome, now: now() });
      const isRequested = ending.requested === true;
      this.ended(outcome, { uptimeMs: clock() - running.startedClock, isRequested });
    });
  }

  /** After an exit (or a failed spawn): what `restart` says, after the delay. */
  private ended(
    outcome: HandlerOutcome,
    run: { readonly uptimeMs: number; readonly isRequested: boolean },
  ): void {
    const { log, now } = this.options;
    const at = new Date(now()).toISOString();
    if (outcome.kind === 'spawn-failed') {
      log.log('error', 'spawn-failed', { code: outcome.error.code, error: outcome.error.message });
      this.lastExit = { exitCode: null, signal: null, spawnError: outcome.error.code, at };
    } else
      this.lastExit = { exitCode: outcome.exitCode, signal: outcome.signal, spawnError: null, at };
    if (this.fds === null) return;
    const { restart } = this.spec().activation;
    const after = decideAfterExit({ restart, outcome, previousDelayMs: this.delayMs, ...run });
    this.delayMs = after.delayMs;
    if (after.next === 'restart') log.log('info', 'restart-scheduled', { delayMs: after.delayMs });
    this.timer = setTimeout(() => {
      this.timer = null;
      if (after.next === 'restart') this.start('restart');
      else this.arm();
    }, after.delayMs);
  }
}
