import { ExitCode, FatalError } from '../model/errors.js';
import type { EventLog } from '../log/events.js';
import { trackWithCgroups } from './cgroup-tracking.js';
import type { NativeAddon } from './native-addon.js';
import { trackProcessGroups, type ProcessTracking } from './process-tracking.js';
import { trackWithSubreaper } from './subreaper-tracking.js';

export interface StartTrackingOptions {
  readonly addon: NativeAddon | null;
  readonly log: EventLog;
  /** The SIGTERM-to-SIGKILL grace for what handlers leave behind (`--kill-grace`). */
  readonly graceMs: number;
  /** SOCKETEER_PROCESS_TRACKING: `auto` (default) or `subreaper` (cgroups not even tried). */
  readonly choice: string | undefined;
}

/**
 * Picks how handlers' descendants are tracked: a cgroup per handler where cgroup v2 is writable,
 * else the daemon as child subreaper (needs the addon), else process groups only.
 */
export async function startProcessTracking(
  options: StartTrackingOptions,
): Promise<ProcessTracking> {
  const { addon, log, graceMs } = options;
  const choice = options.choice ?? 'auto';
  if (choice !== 'auto' && choice !== 'subreaper')
    throw new FatalError(
      `SOCKETEER_PROCESS_TRACKING must be auto or subreaper, not ${JSON.stringify(choice)}`,
      ExitCode.permanent,
    );
  let reason = 'SOCKETEER_PROCESS_TRACKING=subreaper';
  if (choice === 'auto') {
    const cgroups = await trackWithCgroups({ log, graceMs });
    if (typeof cgroups !== 'string') return cgroups;
    reason = cgroups;
  }
  if (addon === null) return trackProcessGroups(`${reason}; no native addon for a subreaper`);
  try {
    return trackWithSubreaper({ addon, log, graceMs, reason });
  } catch (error) {
    return trackProcessGroups(`${reason}; prctl: ${(error as Error).message}`);
  }
}
