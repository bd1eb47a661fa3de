import { minuteOfDayAt } from '../access/times.js';
import type { AdmitPolicy } from '../config/resolve-policy.js';
import type { ConnectionCounts } from '../limits/connection-table.js';
import { createRateState, pruneRateState } from '../limits/rate-state.js';
import type { Peer } from '../model/peer.js';
import {
  admitConnection,
  admitOpen,
  isOpenPolicy,
  commitAdmission,
  type AdmitDecision,
  type AdmitInput,
} from './admit.js';

/** How often the per-source buckets that are full again are dropped (ms). */
export const ratePruneMs = 60_000;

export interface AdmissionGateOptions {
  readonly service: string;
  /** The service's policy now (a reload may replace it; the buckets are kept). */
  readonly policy: () => AdmitPolicy;
  /** Live handlers of every service (the daemon-wide table). */
  readonly connections: ConnectionCounts;
  readonly globalMax: number | null;
  /** The 1-minute load average (asked only when `limits.maxLoad` is set). */
  readonly loadAverage1: () => number;
  /** Monotonic ms: token buckets. */
  readonly clock: () => number;
  /** Wall-clock ms since the epoch: `access.times` in local time. */
  readonly wallNow: () => number;
  /** Connections of the service waiting in its queue now. */
  readonly queueLength: () => number;
}

/**
 * One service's admission: the pure decision (connection/admit.ts) over live state, and the rate
 * charge stored. `check --peer` explains the same input the daemon decides on.
 */
export interface AdmissionGate {
  /** Decides a connection; an admitted or queued one has its tokens taken. */
  decide(peer: Peer): AdmitDecision;
  /** What a connection from `peer` would be decided on now, nothing charged (`check --peer`). */
  inputFor(peer: Peer): AdmitInput;
}

export function createAdmissionGate(options: AdmissionGateOptions): AdmissionGate {
  const rates = createRateState();
  let prunedAt = options.clock();
  const inputAt = (peer: Peer, now: number): AdmitInput => {
    const wall = options.wallNow();
    const policy = options.policy();
    return {
      service: options.service,
      policy,
      peer,
      connections: options.connections,
      rates,
      globalMax: options.globalMax,
      loadAverage1: policy.limits.maxLoad === null ? 0 : options.loadAverage1(),
      now,
      minuteOfDay: minuteOfDayAt(wall, -new Date(wall).getTimezoneOffset()),
      queueLength: options.queueLength(),
    };
  };
  return {
    decide(peer) {
      const policy = options.policy();
      if (isOpenPolicy(policy, options.globalMax)) return admitOpen(peer, policy);
      const now = options.clock();
      if (now - prunedAt >= ratePruneMs) {
        prunedAt = now;
        pruneRateState(rates, options.policy().limits.perSourceRate, now);
      }
      const decision = admitConnection(inputAt(peer, now));
      commitAdmission(rates, decision);
      return decision;
    },
    inputFor: (peer) => inputAt(peer, options.clock()),
  };
}
