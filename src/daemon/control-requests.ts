import type { RecentRecord } from './recent-records.js';
import {
  ControlError,
  type CommandRequest,
  type ControlCommand,
  type ControlRequest,
} from '../control/protocol.js';
import type { ReloadOutcome } from './apply-reload.js';
import { reloadNotifying } from './notify.js';
import type { Daemon } from './daemon.js';
import type { HandOverOutcome } from '../handover/upgrade.js';
import {
  drainService,
  killHandlers,
  quiesceService,
  startService,
  stopService,
  type DrainResult,
  type KillResult,
  type StartResult,
  type StopResult,
} from './lifecycle.js';
import type { DaemonStatus } from './state.js';

/** The daemon's answer to `upgrade` once the new process serves. */
export interface UpgradeResult {
  readonly pid: number;
  /** Running handlers the new process took over. */
  readonly handlers: number;
}

/** What the daemon answers to each command: the `result` of its `ok` reply. */
export interface ControlReplies {
  readonly status: DaemonStatus;
  readonly stop: StopResult;
  readonly start: StartResult;
  readonly quiesce: StopResult;
  readonly drain: DrainResult;
  readonly kill: KillResult;
  readonly reload: ReloadOutcome;
  readonly upgrade: UpgradeResult;
  readonly metrics: MetricsResult;
}

/** `metrics`: every service's counters in the Prometheus text format. */
export interface MetricsResult {
  readonly text: string;
}

/** One command's request, answered with that command's reply (or a ControlError). */
type ControlHandlers = {
  readonly [C in ControlCommand]: (
    request: CommandRequest<C>,
  ) => ControlReplies[C] | Promise<ControlReplies[C]>;
};

export interface ControlActions {
  /** Hands over to a new process; on success this process exits right after the reply. */
  readonly upgrade: () => Promise<HandOverOutcome>;
  /** The Prometheus text of `metrics` (daemon/metrics.ts). */
  readonly metrics: () => string;
  /** A service's last log records, for `status`. */
  readonly recent?: (service: string) => readonly RecentRecord[];
}

/** Answers one valid control request: the reply's result, or a ControlError. */
export function createControlHandler(
  daemon: Daemon,
  actions: ControlActions,
): (request: ControlRequest) => Promise<ControlReplies[ControlCommand]> {
  const handlers: ControlHandlers = {
    status: (r) => withRecent(daemon.status(r.service), actions.recent),
    stop: (r) => stopService(daemon, r.service),
    start: (r) => startService(daemon, r.service),
    quiesce: (r) => quiesceService(daemon, r.service),
    drain: (r) => drainService(daemon, r.service, r.timeoutSec),
    kill: (r) => killHandlers(daemon, { ...r, signal: r.signal ?? 'SIGTERM' }),
    reload: () => reloadNotifying(daemon),
    upgrade: async () => {
      const outcome = await actions.upgrade();
      if (!outcome.ok) throw new ControlError('failed', outcome.message);
      return { pid: outcome.pid, handlers: outcome.handlers };
    },
    metrics: () => ({ text: actions.metrics() }),
  };
  return async (request) => answer(handlers, request);
}

function answer<C extends ControlCommand>(
  handlers: ControlHandlers,
  request: CommandRequest<C>,
): ControlReplies[C] | Promise<ControlReplies[C]> {
  return handlers[request.cmd](request);
}

/** The status with each service's last log records, when they are kept. */
function withRecent(
  status: DaemonStatus,
  recent: ((service: string) => readonly RecentRecord[]) | undefined,
): DaemonStatus {
  if (recent === undefined) return status;
  return { ...status, services: status.services.map((s) => ({ ...s, recent: recent(s.name) })) };
}
