import { cleanText } from '../log/clean.js';
import type { EventLog } from '../log/events.js';
import { closeAll, type FdStore } from './fd-store.js';
import { parseNotifyMessage, type NotifyMessage } from './notify-message.js';

/** What the notify protocol knows of the process that runs now. */
export interface NotifyRun {
  /** The pid socketeer started; null when none runs. */
  readonly pid: number | null;
  /** That pid, or the one it named with MAINPID=. */
  readonly mainPid: number | null;
  readonly ready: boolean;
  readonly stopping: boolean;
}

/** One message from an allowed sender, and what it acts on. */
export interface NotifyInput {
  readonly text: string;
  /** The message's fds, owned here: stored or closed. */
  readonly fds: readonly number[];
  readonly run: NotifyRun;
  readonly sender: number;
  /** null: the service's sockets are closed (`stop`), nothing is stored. */
  readonly store: FdStore | null;
  readonly fdStoreMax: number;
  /** Whether a MAINPID= value is the started process or one of its descendants. */
  readonly isMainCandidate: (pid: number) => boolean;
  readonly close: (fd: number) => void;
  readonly log: EventLog;
}

/** Text from the process in a record or in `status`: control characters escaped, 1024 max. */
const statusMax = 1024;

/**
 * Acts on one message of the main process: MAINPID=, FDSTOREREMOVE=, FDSTORE= (its fds stored
 * or closed), STATUS=, READY=, STOPPING=, in this order, with their records. Every fd of the
 * message ends up stored or closed. Returns the run as it is after it, and the STATUS= text.
 */
export function applyNotifyMessage(input: NotifyInput): {
  readonly run: NotifyRun;
  readonly status: string | null;
} {
  const { log, sender } = input;
  const message = parseNotifyMessage(input.text);
  if (message.invalid.length > 0)
    log.log('warn', 'notify-refused', {
      pid: sender,
      reason: 'invalid',
      detail: cleanText(message.invalid.join(' '), 256),
      fds: 0,
    });
  let run = { ...input.run, mainPid: applyMainPid(input, message.mainPid) };
  storeFds(input, message);
  const status = message.status === null ? null : cleanText(message.status, statusMax);
  const pid = run.mainPid ?? sender;
  if (status !== null) log.log('debug', 'process-status', { pid, status });
  if (message.ready && !run.ready) log.log('info', 'process-ready', { pid, status });
  if (message.stopping && !run.stopping) log.log('info', 'process-stopping', { pid, status });
  run = {
    ...run,
    ready: run.ready || message.ready,
    stopping: run.stopping || message.stopping,
  };
  return { run, status };
}

function applyMainPid(input: NotifyInput, mainPid: number | null): number | null {
  const current = input.run.mainPid;
  if (mainPid === null || mainPid === current) return current;
  if (!input.isMainCandidate(mainPid)) {
    input.log.log('warn', 'notify-refused', {
      pid: input.sender,
      reason: 'mainpid',
      detail: `MAINPID=${mainPid} is not the process ${input.run.pid ?? '?'} nor one of its descendants`,
      fds: 0,
    });
    return current;
  }
  input.log.log('info', 'process-mainpid', { pid: input.run.pid, mainPid });
  return mainPid;
}

/** FDSTOREREMOVE=1 then FDSTORE=1; fds of a message that stores none are closed. */
function storeFds(input: NotifyInput, message: NotifyMessage): void {
  const { log, store, fds, fdStoreMax } = input;
  const name = message.fdName;
  if (message.fdStoreRemove && name !== null && store !== null) {
    const closed = store.remove(name);
    log.log('info', 'fd-store-removed', { name, closed });
  }
  if (fds.length === 0) return;
  const refuse = (reason: string): void => {
    closeAll(fds, input.close);
    log.log('warn', 'fd-store-refused', { name, closed: fds.length, reason, fdStoreMax });
  };
  if (!message.fdStore) return refuse('no-fdstore');
  if (name === null) return refuse('invalid-fdname');
  if (store === null) return refuse('stopped');
  if (fdStoreMax === 0) return refuse('off');
  const result = store.add(name, fds, fdStoreMax);
  if (result.stored + result.duplicates > 0)
    log.log('info', 'fd-stored', {
      name,
      stored: result.stored,
      duplicates: result.duplicates,
      total: store.size,
    });
  if (result.overCap > 0)
    log.log('warn', 'fd-store-refused', {
      name,
      closed: result.overCap,
      reason: 'over-cap',
      fdStoreMax,
    });
}
