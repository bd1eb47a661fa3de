import type { Socket } from 'node:net';
import { handleFd } from '../listen/incoming.js';
import { resolveControlPath } from '../control/paths.js';
import { startControlServer, type ControlServer } from '../control/server.js';
import { createControlHandler } from '../daemon/control-requests.js';
import { Daemon } from '../daemon/daemon.js';
import { createRecordKeepers, type RecentRecords } from '../daemon/recent-records.js';
import { formatMetrics, metricsContentType } from '../daemon/metrics.js';
import {
  metricsAddressOrFail,
  startMetricsServer,
  type MetricsAddress,
} from '../control/metrics-http.js';
import { handOver, type HandOverOutcome } from '../handover/upgrade.js';
import { notifyReady, notifyStopping, reloadNotifying } from '../daemon/notify.js';
import { installSignalHandlers } from '../daemon/signals.js';
import {
  openTakeover,
  takeInheritance,
  type Inheritance,
  type Takeover,
} from '../handover/takeover.js';
import { ExitCode, FatalError } from '../model/errors.js';
import type { LogLevel } from '../log/events.js';
import { createLogger, type DaemonLog, type LogFormat, type LogOutput } from '../log/logger.js';
import { openLogOutput, type LogTargetOptions } from '../log/output.js';
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
import { configDirFrom, loadWithNotesOrFail } from './load-or-fail.js';
import { controlLogger } from './control-logger.js';

export interface ServeArgs {
  readonly configDir?: string | undefined;
  /** Foreign files read beside the config dir (and again by reloads). */
  readonly xinetdConf?: string | undefined;
  readonly inetdConf?: string | undefined;
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
  /** `--log-target` and its syslog flags, JOURNAL_STREAM; absent: stderr, no prefix. */
  readonly logTarget?: LogTargetOptions | undefined;
  /** `--metrics HOST:PORT`: serve GET /metrics there; absent: no HTTP server. */
  readonly metrics?: string | undefined;
}

/** How long each step of a hand-over may take. */
const handoverTimeoutMs = 30000;

/**
 * Runs the daemon in the foreground until SIGTERM or SIGINT, or until it has handed over to a
 * new process. Prints one readiness line on stdout once every listener and the control socket
 * are bound. Resolves with the exit code.
 */
export async function runServe(args: ServeArgs): Promise<number> {
  const opened = args.logTarget === undefined ? null : await openLogOutput(args.logTarget);
  try {
    return await serveWith(args, opened?.output);
  } finally {
    await opened?.close();
  }
}

async function serveWith(args: ServeArgs, output: LogOutput | undefined): Promise<number> {
  const metricsAddress = metricsAddressOrFail(args.metrics);
  const inheritance = takeInheritance(process.env, process.pid);
  const controlPath = controlPathFrom(args.control);
  const takeover =
    inheritance.handoverFd === null
      ? null
      : await openTakeover(inheritance.handoverFd, handoverTimeoutMs, inheritance.handoverQueueFd);
  const selected = selectSpawner(args.spawner);
  // fds inherited without close-on-exec (from a shell, a supervisor) must reach no handler
  loadNativeAddon()?.closeOnExecFrom(3);
  const source = {
    dir: configDirFrom(args.configDir),
    foreign: { xinetdConf: args.xinetdConf, inetdConf: args.inetdConf },
  };
  const { config, skipped } = loadWithNotesOrFail(source, selected.spawner);
  const { stats, recent, observe } = createRecordKeepers();
  const log = createLogger({
    format: output?.needsJson === true ? 'json' : args.logFormat,
    level: args.logLevel,
    records: args.logRecords ?? defaultRecordRate,
    observe,
    ...(output === undefined ? {} : { output }),
  });
  // foreign services left out on purpose (xinetd INTERNAL) are said, never dropped silently
  for (const problem of skipped) log.log('warn', 'config-warning', { service: null, ...problem });
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
  const metrics = (): string => formatMetrics(daemon.status(), (name) => stats.of(name));
  const serving = new Serving({ daemon, controlPath, log, tracking, metrics, recent });
  const pairs = await serving
    .start(inheritance, takeover)
    .then(async (bound) => {
      if (metricsAddress !== null) await serving.serveMetrics(metricsAddress);
      return bound;
    })
    .catch(async (error: unknown) => {
      await serving.closeControl();
      await tracking.close(false); // no cgroup left behind by a daemon that could not start
      throw error;
    });
  return serving.run(() => announceReady(daemon, pairs, takeover, selected.spawner.name));
}

interface ServingParts {
  readonly daemon: Daemon;
  readonly controlPath: string;
  readonly log: DaemonLog;
  readonly tracking: ProcessTracking;
  /** The Prometheus text of `metrics` and GET /metrics. */
  readonly metrics: () => string;
  /** Each service's last records, for `status`. */
  readonly recent: RecentRecords;
}

/** One serve run: the daemon, its control socket, and how the run ends. */
class Serving {
  private control: ControlServer | null = null;
  private finish: () => void = () => undefined;
  private readonly daemon: Daemon;
  private readonly controlPath: string;
  private readonly log: DaemonLog;
  private readonly tracking: ProcessTracking;
  /** What the control socket and GET /metrics answer with beyond the daemon's state. */
  private readonly answers: Pick<ServingParts, 'metrics' | 'recent'>;
  private metricsHttp: { readonly address: MetricsAddress; close(): Promise<void> } | null = null;

  constructor(parts: ServingParts) {
    ({
      daemon: this.daemon,
      controlPath: this.controlPath,
      log: this.log,
      tracking: this.tracking,
    } = parts);
    this.answers = parts;
  }

  /** `--metrics HOST:PORT`: GET /metrics over HTTP; logs `metrics-listen` with its URL. */
  async serveMetrics(address: MetricsAddress): Promise<void> {
    const render = this.answers.metrics;
    const server = await startMetricsServer({ address, render, contentType: metricsContentType });
    this.metricsHttp = { address, close: () => server.close() };
    this.log.log('info', 'metrics-listen', { url: server.url });
  }

  async closeControl(): Promise<void> {
    const { metricsHttp, control } = this;
    this.metricsHttp = null;
    this.control = null;
    await metricsHttp?.close();
    await control?.close();
  }

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
      await this.closeControl();
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
        await this.closeControl();
        // after a hand-over, proxied connections are copied here until they end
        if (daemon.hasHandedOver) await daemon.proxiedEnded();
        this.log.flush();
        daemon.log.log('info', 'exit', { code: 0 });
        resolve(ExitCode.ok);
      };
      this.finish = () => void done();
      const uninstall = installSignalHandlers(
        {
          shutdown: (signal) => {
            void notifyStopping(daemon);
            void daemon.shutdown(signal).then(done);
          },
          reload: () => void reloadNotifying(daemon).catch(() => undefined),
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
      handle: createControlHandler(daemon, {
        upgrade: () => this.upgrade(),
        metrics: this.answers.metrics,
        recent: (service) => this.answers.recent.of(service),
      }),
      log: controlLogger(daemon.log),
      peerUid: (socket: Socket) => {
        const fd = handleFd(socket);
        return fd === null ? null : (accept.peerCredentials(fd)?.uid ?? null);
      },
    });
  }

  /** On success the run ends right after the control reply is written. */
  private async upgrade(): Promise<HandOverOutcome> {
    // the successor binds --metrics itself: the port is free while it starts
    const metrics = this.metricsHttp;
    this.metricsHttp = null;
    await metrics?.close();
    const options = { controlPath: this.controlPath, timeoutMs: handoverTimeoutMs };
    const outcome = await handOver(this.daemon, options);
    if (outcome.ok) setImmediate(() => this.finish());
    else if (metrics !== null)
      await this.serveMetrics(metrics.address).catch((error: unknown) => {
        const why = error instanceof Error ? error.message : String(error);
        this.log.log('warn', 'upgrade-failed', { error: `metrics not served again: ${why}` });
      });
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
  else void notifyReady(daemon);
}
