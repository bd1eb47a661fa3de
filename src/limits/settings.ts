import schema from '../../schema/limits.schema.json' with { type: 'json' };
import type { SettingsProblem } from '../model/problem.js';

/** `limits.rate` and `limits.perSourceRate`. */
export interface BucketRate {
  readonly perSecond: number;
  readonly burst: number;
}

export type OnLimit = 'close' | 'banner' | 'queue';

/** The `limits` object as validated by the schema (defaults may or may not be applied yet). */
export interface LimitsSettings {
  readonly instances?: number;
  readonly perSource?: number;
  readonly perSourcePrefix6?: number;
  readonly rate?: BucketRate;
  readonly perSourceRate?: BucketRate;
  readonly maxLoad?: number;
  readonly runtimeMaxSec?: number;
  readonly killGraceSec?: number;
  readonly onLimit?: OnLimit;
  readonly banner?: string;
  readonly queueSize?: number;
  readonly queueTimeoutSec?: number;
}

/** `limits` with every default applied; null means "no cap". */
export interface ResolvedLimits {
  readonly instances: number | null;
  readonly perSource: number | null;
  readonly perSourcePrefix6: number;
  readonly rate: BucketRate | null;
  readonly perSourceRate: BucketRate | null;
  readonly maxLoad: number | null;
  readonly runtimeMaxSec: number | null;
  readonly killGraceSec: number;
  readonly onLimit: OnLimit;
  readonly banner: string | null;
  readonly queueSize: number;
  readonly queueTimeoutSec: number;
}

const defaults = schema.definitions.limits.properties;

/** Applies the schema's defaults (read from the schema, the only place they live). */
export function resolveLimits(settings: LimitsSettings | undefined): ResolvedLimits {
  const s = settings ?? {};
  return {
    instances: s.instances ?? null,
    perSource: s.perSource ?? null,
    perSourcePrefix6: s.perSourcePrefix6 ?? defaults.perSourcePrefix6.default,
    rate: s.rate ?? null,
    perSourceRate: s.perSourceRate ?? null,
    maxLoad: s.maxLoad ?? null,
    runtimeMaxSec: s.runtimeMaxSec ?? null,
    killGraceSec: s.killGraceSec ?? defaults.killGraceSec.default,
    onLimit: s.onLimit ?? (defaults.onLimit.default as OnLimit),
    banner: s.banner ?? null,
    queueSize: s.queueSize ?? defaults.queueSize.default,
    queueTimeoutSec: s.queueTimeoutSec ?? defaults.queueTimeoutSec.default,
  };
}

/**
 * Checks what the schema cannot express, on a schema-valid `limits` object. Pointers start at
 * the service file's root (`/limits/...`). Errors make the config invalid; warnings are printed.
 */
export function checkLimitsSettings(settings: LimitsSettings | undefined): SettingsProblem[] {
  const problems: SettingsProblem[] = [];
  const s = settings ?? {};
  if (s.onLimit === 'banner' && s.banner === undefined) {
    problems.push(error('/limits/banner', 'is required when onLimit is "banner"'));
  }
  if (s.banner !== undefined && s.onLimit !== 'banner') {
    problems.push(warning('/limits/banner', 'is never written: onLimit is not "banner"'));
  }
  if (s.perSource !== undefined && s.instances !== undefined && s.perSource >= s.instances) {
    problems.push(
      warning(
        '/limits/perSource',
        `${s.perSource} is not below instances (${s.instances}): it never applies`,
      ),
    );
  }
  return problems;
}

function error(pointer: string, message: string): SettingsProblem {
  return { pointer, message, severity: 'error' };
}

function warning(pointer: string, message: string): SettingsProblem {
  return { pointer, message, severity: 'warning' };
}
