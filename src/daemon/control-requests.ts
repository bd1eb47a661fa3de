import { ControlError, type ControlRequest } from '../control/protocol.js';
import { reloadDaemon } from './apply-reload.js';
import type { Daemon } from './daemon.js';
import type { HandOverOutcome } from './handover.js';
import {
  drainService,
  killHandlers,
  quiesceService,
  startService,
  stopService,
} from './lifecycle.js';

export interface ControlActions {
  /** Hands over to a new process; on success this process exits right after the reply. */
  readonly upgrade: () => Promise<HandOverOutcome>;
}

/** Answers one valid control request: the reply's result, or a ControlError. */
export function createControlHandler(
  daemon: Daemon,
  actions: ControlActions,
): (request: ControlRequest) => Promise<unknown> {
  return async (request) => {
    switch (request.cmd) {
      case 'status':
        return daemon.status(request.service);
      case 'stop':
        return stopService(daemon, request.service);
      case 'start':
        return startService(daemon, request.service);
      case 'quiesce':
        return quiesceService(daemon, request.service);
      case 'drain':
        return drainService(daemon, request.service, request.timeoutSec);
      case 'kill':
        return killHandlers(daemon, request.service, request.instance, request.signal ?? 'SIGTERM');
      case 'reload':
        return reloadDaemon(daemon);
      case 'upgrade': {
        const outcome = await actions.upgrade();
        if (!outcome.ok) throw new ControlError('failed', outcome.message);
        return { pid: outcome.pid, handlers: outcome.handlers };
      }
    }
  };
}
