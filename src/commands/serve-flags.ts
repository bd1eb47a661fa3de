import { ExitCode, FatalError } from '../model/errors.js';

/** The numeric flags of `serve`, as yargs parsed them (NaN for a word that is not a number). */
export interface ServeFlags {
  readonly maxConnections: number | undefined;
  readonly killGrace: number;
  readonly logRate: number;
  readonly logBurst: number;
}

/** Refuses (exit 100) a numeric `serve` flag out of its range, before anything starts. */
export function checkServeFlags(flags: ServeFlags): void {
  const { maxConnections, killGrace, logRate, logBurst } = flags;
  if (maxConnections !== undefined && !isCount(maxConnections))
    throw badFlag('max-connections', maxConnections, 'an integer of at least 1');
  if (!(killGrace >= 0)) throw badFlag('kill-grace', killGrace, 'a number of seconds, 0 or more');
  if (!(logRate > 0)) throw badFlag('log-rate', logRate, 'a number of records per second above 0');
  if (!isCount(logBurst)) throw badFlag('log-burst', logBurst, 'an integer of at least 1');
}

function isCount(value: number): boolean {
  return Number.isInteger(value) && value >= 1;
}

function badFlag(name: string, value: number, what: string): FatalError {
  // yargs turns a word into NaN: say so rather than show its NaN
  const given = Number.isNaN(value) ? `--${name}: not a number` : `--${name} ${value}`;
  return new FatalError(`${given}: must be ${what}`, ExitCode.permanent);
}
