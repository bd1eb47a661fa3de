// What a service's connection path is made with, and the counters it keeps.
import type { ServiceSpec } from '../config/types.js';
import type { EventLog } from '../log/events.js';
import type { PeerCredentials } from '../model/peer.js';
import type { Spawner } from '../model/spawn.js';
import type { ProxyAddon } from './proxy-copy.js';
import type { SharedLimits } from './shared-limits.js';

export interface ServiceConnectionsOptions {
  /** The service's definition now (a reload may replace it; new connections get the new one). */
  readonly spec: () => ServiceSpec;
  readonly spawner: Spawner;
  /** Bound to `{service}`. */
  readonly log: EventLog;
  /** Wall-clock ms (records, `access.times`). */
  readonly now: () => number;
  /** Monotonic ms (buckets, queue deadlines, runtime limits). */
  readonly clock: () => number;
  readonly peerCredentials: (fd: number) => PeerCredentials | null;
  readonly shared: SharedLimits;
  /** The addon's splice copy for `proxy` services (null or absent: Node streams). */
  readonly proxyAddon?: ProxyAddon | null;
}

/** A service's connection counters (refusals are counted per reason apart). */
export interface ServiceCounters {
  /** Connections accepted (their number `n` in the connection id). */
  readonly accepted: number;
  /** Connections whose handler did not start. */
  readonly spawnFailed: number;
}
