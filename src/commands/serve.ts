import { Daemon } from '../daemon/daemon.js';
import { installSignalHandlers } from '../daemon/signals.js';
import type { LogLevel } from '../log/events.js';
import { createLogger, type LogFormat } from '../log/logger.js';
import { selectSpawner, type SpawnerChoice } from '../spawn/select-spawner.js';
import { configDirFrom, loadOrFail } from './load-or-fail.js';

export interface ServeArgs {
  readonly configDir?: string | undefined;
  readonly logFormat: LogFormat;
  readonly logLevel: LogLevel;
  readonly spawner: SpawnerChoice;
  readonly killGrace: number;
}

/**
 * Runs the daemon in the foreground until SIGTERM or SIGINT. Prints one readiness line on
 * stdout once every listener is bound. Resolves with the exit code.
 */
export async function runServe(args: ServeArgs): Promise<number> {
  const config = loadOrFail(configDirFrom(args.configDir));
  const log = createLogger({ format: args.logFormat, level: args.logLevel });
  const selected = selectSpawner(args.spawner);
  const daemon = new Daemon({
    config,
    spawner: selected.spawner,
    log,
    killGraceMs: args.killGrace * 1000,
    peerCredentials: selected.peerCredentials,
  });
  const pairs = await daemon.start();
  return new Promise((resolve) => {
    const uninstall = installSignalHandlers(
      {
        shutdown: (signal) => {
          void daemon.shutdown(signal).then(() => {
            uninstall();
            log.log('info', 'exit', { code: 0 });
            resolve(0);
          });
        },
      },
      log,
    );
    log.log('info', 'ready', {
      addresses: pairs,
      spawner: selected.spawner.name,
      pid: process.pid,
    });
    process.stdout.write(`ready: ${pairs.join(' ')}\n`);
  });
}
