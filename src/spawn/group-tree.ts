import type { HandlerTree } from './kill-escalator.js';

/**
 * A handler's process group: the tree as far as the kernel groups it without help (every
 * handler leads its own session, so its pid is its group id).
 */
export class GroupTree implements HandlerTree {
  private isReaped = false;

  constructor(readonly pid: number) {}

  /** Before the reap: the group, else the handler itself; after it: only a group still alive. */
  signal(signal: NodeJS.Signals): boolean {
    return this.isReaped ? signalOnlyGroup(this.pid, signal) : signalGroup(this.pid, signal);
  }

  hasMembers(): boolean {
    return signalOnlyGroup(this.pid, 0) || (!this.isReaped && signalOnlyProcess(this.pid, 0));
  }

  noteExited(): void {
    this.isReaped = true;
  }

  get hasExited(): boolean {
    return this.isReaped;
  }
}

/** Signals a process group; a group already gone is not an error. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  // A handler started a moment ago may not lead its session yet (the native spawner returns
  // before the child's setsid): signal the process itself. Its signals are blocked until just
  // before its exec, so the signal stays pending and ends it there. Callers pass only pids of
  // handlers not yet reaped, so the pid is still theirs.
  return signalOnlyGroup(pid, signal) || signalOnlyProcess(pid, signal);
}

/**
 * kill(-pgid). A group whose leader is gone keeps its id reserved while it has members, so this
 * reaches no one else.
 */
function signalOnlyGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalOnlyProcess(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
