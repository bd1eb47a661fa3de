/** One handler's processes, as far as the daemon's process tracking sees them. */
export interface HandlerTree {
  readonly pid: number;
  /**
   * Signals every process of the tree that is still there: the handler's process group while
   * the handler is unreaped, and what the mechanism adds (its cgroup, or its descendants).
   * True when something was signalled.
   */
  signal(signal: NodeJS.Signals): boolean;
  /** Whether any process of the tree is left, the handler included. */
  hasMembers(): boolean;
  /** The handler has been reaped: its pid is no longer its own to signal. Idempotent. */
  noteExited(): void;
}

/** What the `end` record says about how the daemon ended the handler. */
export interface Ending {
  forced: boolean;
  /** Set when the escalator sends its first signal: the daemon asked the handler to end. */
  requested?: boolean;
  /** The signal that asks it to end (the service's `killSignal`); SIGTERM when not set. */
  readonly stopSignal?: NodeJS.Signals;
}

const pollMs = 20;

/**
 * The one kill escalator (stop, quiesce, drain's deadline, reload, shutdown, runtimeMaxSec, and
 * what a handler leaves behind): SIGTERM (or the service's `killSignal`) to the whole tree; once the handler has exited and the
 * tree is empty, done; at `graceMs`, SIGKILL to whatever is left. When the handler itself was
 * still running then, `ending.forced` is set before the SIGKILL (its `end` record says so) and
 * true is returned. Resolves once the handler has exited and the SIGKILL, if any, is sent.
 */
export async function endTree(
  tree: HandlerTree,
  exited: Promise<unknown>,
  graceMs: number,
  ending?: Ending,
): Promise<boolean> {
  let hasExited = false;
  const leader = exited.then(() => {
    hasExited = true;
    tree.noteExited();
  });
  const deadline = Date.now() + graceMs;
  if (ending !== undefined) ending.requested = true;
  tree.signal(ending?.stopSignal ?? 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
  await Promise.race([leader, graceOver]);
  clearTimeout(timer);
  if (hasExited) {
    while (tree.hasMembers() && Date.now() < deadline) await pause(Math.min(pollMs, graceMs));
    if (!tree.hasMembers()) return false;
  }
  const forced = !hasExited;
  if (forced && ending !== undefined) ending.forced = true;
  tree.signal('SIGKILL');
  await leader;
  return forced;
}

/** Resolves once `test` holds (checked every 20 ms) or `ms` have passed; returns `test()`. */
export async function waitFor(test: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!test() && Date.now() < deadline) await pause(pollMs);
  return test();
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
