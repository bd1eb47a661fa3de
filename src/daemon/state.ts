import type { RecentRecord } from './recent-records.js';
import type { ProcessStatus } from '../connection/activation-server.js';
import { formatPeer, type Peer } from '../model/peer.js';

/**
 * A service's lifecycle state: `running` (listening and serving), `quiesced` (listening and
 * serving while the handlers that ran when `quiesce` was asked are being ended; then running
 * again), `draining` (not listening, waiting for its handlers to end), `stopped` (not listening
 * until `start`).
 */
export type ServiceState = 'running' | 'quiesced' | 'draining' | 'stopped';

export type ConnectionRow = {
  readonly instance: string;
  /** null: a proxied connection (no process). */
  readonly pid: number | null;
  readonly peer: string;
  readonly startedAt: string;
  readonly ageSec: number;
  /** Started by the socketeer process this one took over from (not a child of this one). */
  readonly inherited: boolean;
};

export type ServiceCountersRow = {
  readonly accepted: number;
  readonly refused: Readonly<Record<string, number>>;
  readonly active: number;
  readonly spawnFailed: number;
};

export type ServiceStatus = {
  readonly name: string;
  readonly state: ServiceState;
  readonly listeners: readonly string[];
  readonly counters: ServiceCountersRow;
  readonly connections: readonly ConnectionRow[];
  /** `accept: false` only: its process (pid, uptime, restarts, last exit). */
  readonly process?: ProcessStatus;
  /** Its last few log records, oldest first (`status` over the control socket). */
  readonly recent?: readonly RecentRecord[];
};

export type DaemonStatus = {
  readonly pid: number;
  readonly startedAt: string;
  readonly configDir: string;
  readonly services: readonly ServiceStatus[];
};

/** What the snapshot reads of one service at run time. */
export interface ServiceView {
  readonly name: string;
  readonly state: ServiceState;
  readonly listeners: readonly string[];
  readonly accepted: number;
  readonly spawnFailed: number;
  /** Connections refused per reason (zeros are left out of the status). */
  readonly refused: Readonly<Record<string, number>>;
  readonly handlers: Iterable<{
    readonly conn: string;
    readonly pid: number | null;
    readonly peer: Peer;
    readonly startedAt: number;
  }>;
  readonly isInherited: (conn: string) => boolean;
  /** `accept: false`: its process; null or absent for a service that accepts. */
  readonly process?: ProcessStatus | null;
}

/** The state that `status --json` prints and SIGUSR1 logs (pure; `now` in ms). */
export function describeService(view: ServiceView, now: number): ServiceStatus {
  const connections = [...view.handlers]
    .map((h) => ({
      instance: h.conn,
      pid: h.pid,
      peer: formatPeer(h.peer),
      startedAt: new Date(h.startedAt).toISOString(),
      ageSec: Math.max(0, Math.round(now - h.startedAt) / 1000),
      inherited: view.isInherited(h.conn),
    }))
    .sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0));
  return {
    name: view.name,
    state: view.state,
    listeners: view.listeners,
    counters: {
      accepted: view.accepted,
      refused: Object.fromEntries(Object.entries(view.refused).filter(([, n]) => n > 0)),
      active: connections.length,
      spawnFailed: view.spawnFailed,
    },
    connections,
    ...(view.process === undefined || view.process === null ? {} : { process: view.process }),
  };
}
