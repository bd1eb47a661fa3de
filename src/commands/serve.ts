import type { Socket } from 'node:net';
import { handleFd } from '../listen/incoming.js';
import { resolveControlPath } from '../control/paths.js';
import { startControlServer, type ControlLogger, type ControlServer } from '../control/server.js';
import { reloadDaemon } from '../daemon/apply-reload.js';
import { createControlHandler } from '../daemon/control-requests.js';
import { Daemon } from '../daemon/daemon.js';
import { handOver, type HandOverOutcome } from '../handover/upgrade.js';
import { notifySystemd } from '../handover/sd-notify.js';
import { installSignalHandlers } from '../daemon/signals.js';
import {
  openTakeover,
  takeInheritance,
  type Inheritance,
  type Takeover,
} from '../handover/takeover.js';
import { ExitCode, FatalError } from '../model/errors.js';
import type { EventLog, LogEvent, LogFields, LogLevel } from '../log/events.js';
import { createLogger, type DaemonLog, type LogFormat } from '../log/logger.js';
import { defaultRecordRate } from '../log/record-limiter.js';
import type { BucketRate } from '../limits/settings.js';
import { createAcceptBackend } from '../listen/accept-backend.js';
import { loadNativeAddon } from '../spawn/native-addon.js';
import {
  logProcessTracking,
  useProcessTracking,
  type ProcessTracking,
} from '../spawn/process-tracking.js';
import { selectSpawner, type SpawnerChoice } from '../spawn/select-spawner.js';
import { startProcessTracking } from '../spawn/start-tracking.js';
import { configDirFrom, loadOrFail } from './load-or-fail.js';

export interface ServeArgs {
  readonly configDir?: string | undefined;
  readonly logFormat: LogFormat;
  readonly logLevel: LogLevel;
  readonly spawner: SpawnerChoice;
  readonly killGrace: number;
  /** `--control PATH`; default /run/socketeer/control.sock or $XDG_RUNTIME_DIR/socketeer/. */
  readonly control?: string | undefined;
  /** `--max-connections`: handlers across every service; absent: no cap. */
  readonly maxConnections?: number | undefined;
  /** `--log-rate`, `--log-burst`: the bucket of each (service, event, reason) of limited records. */
  readonly logRecords?: BucketRate | undefined;
}

/** How long each step of a hand-over may take. */
const handoverTimeoutMs = 30000;

/**
 * Runs the daemon in the foreground until SIGTERM or SIGINT, or until it has handed over to a
 * new process. Prints one readiness line on stdout once every listener and the control socket
 * are bound. Resolves with the exit code.
 */
export async function runServe(args: ServeArgs): Promise<number> {
  const inheritance = takeInheritance(process.env, process.pid);
  const controlPath = controlPathFrom(args.control);
  const takeover =
    inheritance.handoverFd === null
      ? null
      : await openTakeover(inheritance.handoverFd, handoverTimeoutMs, inheritance.handoverQueueFd);
  const selected = selectSpawner(args.spawner);
  // fds inherited without close-on-exec (from a shell, a supervisor) must reach no handler
  loadNativeAddon()?.closeOnExecFrom(3);
  const config = loadOrFail(configDirFrom(args.configDir), selected.spawner);
  const log = createLogger({
    format: args.logFormat,
    level: args.logLevel,
    records: args.logRecords ?? defaultRecordRate,
  });
  if (inheritance.problem !== null)
    log.log('warn', 'inherit-unused', { fd: null, name: null, reason: inheritance.problem });
  const tracking = await startProcessTracking({
    addon: loadNativeAddon(),
    log,
    graceMs: args.killGrace * 1000,
    choice: process.env.SOCKETEER_PROCESS_TRACKING,
  });
  useProcessTracking(tracking);
  logProcessTracking(log, tracking);
  const daemon = new Daemon({
    config,
    spawner: tracking.wrap(selected.spawner),
    log,
    killGraceMs: args.killGrace * 1000,
    accept: createAcceptBackend(selected),
    maxConnections: args.maxConnections ?? null,
  });
  const serving = new Serving(daemon, controlPath, log, tracking);
  const pairs = await serving.start(inheritance, takeover).catch(async (error: unknown) => {
    await tracking.close(false); // no cgroup left behind by a daemon that could not start
    throw error;
  });
  return serving.run(() => announceReady(daemon, pairs, takeover, selected.spawner.name));
}

/** One serve run: the daemon, its control socket, and how the run ends. */
class Serving {
  private control: ControlServer | null = null;
  private finish: () => void = () => undefined;

  constructor(
    private readonly daemon: Daemon,
    private readonly controlPath: string,
    private readonly log: DaemonLog,
    private readonly tracking: ProcessTracking,
  ) {}

  /** Binds everything; the control socket after fresh addresses, before inherited fds. */
  async start(inheritance: Inheritance, takeover: Takeover | null): Promise<string[]> {
    try {
      return await this.daemon.start({
        fds: inheritance.fds,
        ...(takeover === null ? {} : { stopped: takeover.stopped }),
        takeOver: async () => {
          await this.bindControl();
          return takeover === null ? null : takeover.takeOver();
        },
      });
    } catch (error) {
      await this.control?.close();
      throw error;
    }
  }

  /** Serves until a shutdown signal or a successful hand-over; resolves with the exit code. */
  run(announce: () => void): Promise<number> {
    const { daemon } = this;
    return new Promise((resolve) => {
      const done = async (): Promise<void> => {
        uninstall();
        await this.tracking.close(daemon.hasHandedOver);
        await this.control?.close();
        // after a hand-over, proxied connections are copied here until they end
        if (daemon.hasHandedOver) await daemon.proxiedEnded();
        this.log.flush();
        daemon.log.log('info', 'exit', { code: 0 });
        resolve(ExitCode.ok);
      };
      this.finish = () => void done();
      const uninstall = installSignalHandlers(
        {
          shutdown: (signal) => void daemon.shutdown(signal).then(done),
          reload: () => void reloadDaemon(daemon).catch(() => undefined),
          dumpState: () => daemon.log.log('info', 'state', daemon.status()),
          upgrade: () => void this.upgrade().catch(() => undefined),
        },
        daemon.log,
      );
      announce();
    });
  }

  private async bindControl(): Promise<void> {
    const { daemon } = this;
    const accept = daemon.options.accept;
    this.control = await startControlServer({
      path: this.controlPath,
      handle: createControlHandler(daemon, { upgrade: () => this.upgrade() }),
      log: controlLogger(daemon.log),
      peerUid: (socket: Socket) => {
        const fd = handleFd(socket);
        return fd === null ? null : (accept.peerCredentials(fd)?.uid ?? null);
      },
    });
  }

  /** On success the run ends right after the control reply is written. */
  private async upgrade(): Promise<HandOverOutcome> {
    const controlPath = this.controlPath;
    const outcome = await handOver(this.daemon, { controlPath, timeoutMs: handoverTimeoutMs });
    if (outcome.ok) setImmediate(() => this.finish());
    return outcome;
  }
}

function controlPathFrom(override: string | undefined): string {
  const resolved = resolveControlPath({
    isRoot: process.getuid?.() === 0,
    env: process.env,
    override,
    uid: process.getuid?.() ?? 0,
  });
  if (!resolved.ok) throw new FatalError(resolved.message, ExitCode.permanent);
  return resolved.path;
}

/**
 * The control channel's records go to the daemon's log under their own event names; its
 * `message` field is logged as `detail` (winston would append a `message` to the event name).
 */
function controlLogger(log: EventLog): ControlLogger {
  const at =
    (level: LogLevel) =>
    (event: string, { message, ...fields }: Record<string, unknown>): void =>
      log.log(
        level,
        event as LogEvent,
        {
          ...fields,
          ...(message === undefined ? {} : { detail: message }),
        } as LogFields,
      );
  return { info: at('info'), warn: at('warn'), error: at('error') };
}

function announceReady(
  daemon: Daemon,
  pairs: readonly string[],
  takeover: Takeover | null,
  spawner: string,
): void {
  const { log } = daemon;
  if (takeover !== null) {
    const handlers = daemon.activeHandlers;
    log.log('info', 'takeover', { from: takeover.from, listeners: pairs.length, handlers });
  }
  log.log('info', 'ready', { addresses: pairs, spawner, pid: process.pid });
  process.stdout.write(`ready: ${pairs.join(' ')}\n`);
  if (takeover !== null) takeover.ready(pairs);
  else void notifySystemd(['READY=1', `MAINPID=${process.pid}`], log);
}
