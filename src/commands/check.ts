import { selectSpawner, type SpawnerChoice } from '../spawn/select-spawner.js';
import { configDirFrom, loadOrFail } from './load-or-fail.js';

export interface CheckArgs {
  readonly configDir?: string | undefined;
  readonly spawner: SpawnerChoice;
}

/**
 * Validates the configuration and prints it as JSON, defaults filled in. Exit 0, or 100 with
 * every problem (through FatalError).
 */
export function runCheck(args: CheckArgs, out: (text: string) => void): number {
  const dir = configDirFrom(args.configDir);
  const config = loadOrFail(dir);
  const selected = selectSpawner(args.spawner);
  const services = Object.fromEntries(
    config.services.map((s) => [s.name, { file: s.file, program: s.exec.file, ...s.effective }]),
  );
  out(`${JSON.stringify({ dir, spawner: selected.spawner.name, services }, null, 2)}\n`);
  return 0;
}
