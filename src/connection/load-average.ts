import { readFileSync } from 'node:fs';

/** How long a sample of the load average is reused (ms). */
export const loadSampleMs = 1000;

/** The 1-minute load average from the text of /proc/loadavg (`0.42 0.30 0.25 1/123 4567`). */
export function parseLoadAverage1(text: string): number | null {
  const first = Number(text.trim().split(/\s+/, 1)[0]);
  return Number.isFinite(first) && first >= 0 ? first : null;
}

export interface LoadSamplerOptions {
  /** Reads /proc/loadavg (injected in tests). */
  readonly read?: () => string;
  /** Monotonic ms. */
  readonly clock: () => number;
}

/**
 * A reader of the 1-minute load average that reads /proc/loadavg at most once per `loadSampleMs`
 * and only when asked (a service without `limits.maxLoad` never asks). A read that fails or does
 * not parse keeps the last good value (0 before any), so a missing /proc never refuses anyone.
 */
export function createLoadSampler(options: LoadSamplerOptions): () => number {
  const read = options.read ?? (() => readFileSync('/proc/loadavg', 'utf8'));
  let value = 0;
  let sampledAt = Number.NEGATIVE_INFINITY;
  return () => {
    const now = options.clock();
    if (now - sampledAt < loadSampleMs) return value;
    sampledAt = now;
    try {
      value = parseLoadAverage1(read()) ?? value;
    } catch {
      // keep the last value: /proc may be absent (a chroot) or unreadable
    }
    return value;
  };
}
