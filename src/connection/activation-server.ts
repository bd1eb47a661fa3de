import { closeSync, openSync } from 'node:fs';
import type { ActivationSpec, ServiceSpec } from '../config/types.js';
import type { SocketHolder } from '../listen/hold.js';
import type { EventLog } from '../log/events.js';
import type { Peer } from '../model/peer.js';
import type { HandlerOutcome, SpawnedHandler, Spawner } from '../model/spawn.js';
import { buildActivationEnv, describePassedFds } from '../spawn/activation-env.js';
import { ActivationNotify, type NotifyStatus } from './activation-notify.js';
import { buildSpawnPlan } from '../spawn/plan.js';
import { decideAfterExit } from './activation-policy.js';
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
  readonly lastExit: {
    readonly exitCode: number | null;
    readonly signal: string | null;
    readonly spawnError: string | null;
    readonly at: string;
  } | null;
  /** running; waiting (for a connection); delayed (a start after a delay); closed (no sockets). */
  readonly phase: 'running' | 'waiting' | 'delayed' | 'closed';
};

/** The instance id of an `accept: false` service's process (`kill --instance`). */
export const processInstance = 'process';

/** The process has no peer: it accepts its connections itself. */
const noPeer: Peer = { kind: 'unix', localPath: '', pid: null, uid: null, gid: null };

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
  private running: { readonly handler: RunningHandler; readonly startedClock: number } | null =
    null;
  private readonly watched = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private delayMs: number | null = null;
  private starts = 0;
  private lastExit: ProcessStatus['lastExit'] = null;

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
    this.delayMs = null;
    if (this.running !== null) return;
    if (this.spec().activation.start === 'at-start') this.start('start');
    else this.arm();
  }

  /**
   * The sockets are about to close (stop, drain, shutdown, a reload): nothing starts the process
   * any more, and a running one is asked to finish (SIGTERM to its tree; whoever ends it
   * escalates). The stored fds are closed (unless `keepStore`: a reload binding a socket anew);
   * the notify socket once no process is left.
   */
  release(options: { readonly keepStore?: boolean } = {}): void {
    this.fds = null;
    if (options.keepStore !== true) this.notify.closeStore();
    if (this.running === null) this.notify.close();
    this.unarm();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const pid = this.running?.handler.pid ?? null;
    if (pid !== null) signalTree(pid, this.spec().killSignal);
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
    const spawned = this.spawn(spec, fds);
    const { log, now, clock } = this.options;
    if (spawned.pid === null) {
      void spawned.outcome.then((outcome) =>
        this.ended(outcome, { uptimeMs: 0, isRequested: false }),
      );
      return;
    }
    const { pid } = spawned;
    this.notify.started(pid);
    const passed = describePassedFds(spec, this.run()).fds.map((f) => `${f.fd}=${f.address}`);
    log.log('info', 'activate', { pid, fds: passed, trigger });
    const ending: HandlerEnding = { timedOut: false, forced: false, stopSignal: spec.killSignal };
    const handler = { conn: processInstance, pid, peer: noPeer, startedAt: now(), ending };
    const running = { handler: { ...handler, outcome: spawned.outcome }, startedClock: clock() };
    this.running = running;
    const stderr =
      spawned.stderr === null ? null : logStderr(spawned.stderr, { service: spec, log, pid });
    const end = { pid, ending, stderr, startedAt: handler.startedAt };
    void spawned.outcome.then((outcome) => {
      this.notify.ended();
      this.running = null;
      if (this.fds === null) this.notify.close();
      if (outcome.kind === 'exit') reportEnd(log, { ...end, exit: outcome, now: now() });
      const isRequested = ending.requested === true;
      this.ended(outcome, { uptimeMs: clock() - running.startedClock, isRequested });
    });
  }

  /** What this start passes beyond the definition: bound addresses, stored fds, NOTIFY_SOCKET. */
  private run(): { addresses: readonly string[]; stored: string[]; notifySocket?: string } {
    const stored = this.notify.store.entries.map((e) => e.name);
    const address = this.notify.socket?.address;
    return {
      addresses: this.bound,
      stored,
      ...(address === undefined ? {} : { notifySocket: address }),
    };
  }

  /**
   * Starts the process: the sockets as fd 3… then the stored fds (fd 0 and 1 on /dev/null) with
   * LISTEN_PID set in the child, or the one socket as fd 0 and 1 (`listenerOn: stdin`); its
   * NOTIFY_SOCKET opened first. Never throws.
   */
  private spawn(
    spec: ServiceSpec & { readonly activation: ActivationSpec },
    fds: readonly number[],
  ): SpawnedHandler {
    const isStdin = spec.activation.listenerOn === 'stdin';
    let devNull: number | null = null;
    try {
      this.notify.open();
      const stored = isStdin ? [] : this.notify.store.entries.map((e) => e.fd);
      const run = { ...this.run(), ...(isStdin ? { stored: [] } : {}) };
      const plan = {
        ...buildSpawnPlan(spec, buildActivationEnv(spec, run)),
        passFds: isStdin ? [] : [...fds, ...stored],
        setListenPid: !isStdin,
      };
      if (!isStdin) devNull = openSync('/dev/null', 'r+');
      return this.options.spawner.spawn(plan, devNull ?? fds[0] ?? -1);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      const failure = {
        kind: 'spawn-failed' as const,
        error: { code: e.code ?? 'EUNKNOWN', message: e.message },
      };
      return { pid: null, stderr: null, outcome: Promise.resolve(failure) };
    } finally {
      if (devNull !== null) closeSync(devNull);
    }
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
