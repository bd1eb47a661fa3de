import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmdirSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

/** Where the cgroup v2 hierarchy is mounted, from a /proc/self/mountinfo text (pure). */
export function findCgroup2Mount(mountinfo: string): string | null {
  for (const line of mountinfo.split('\n')) {
    const separator = line.indexOf(' - ');
    if (separator === -1 || line.slice(separator + 3).split(' ')[0] !== 'cgroup2') continue;
    const mountPoint = line.slice(0, separator).split(' ')[4];
    if (mountPoint !== undefined) return unescapeOctal(mountPoint);
  }
  return null;
}

/** The process's cgroup v2 path, from the `0::` line of a /proc/self/cgroup text (pure). */
export function findOwnCgroup(text: string): string | null {
  const line = text.split('\n').find((l) => l.startsWith('0::/'));
  return line === undefined ? null : line.slice(3);
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(parseInt(octal, 8)),
  );
}

/** Moves process `pid` into the cgroup whose cgroup.procs `procsFd` is open. Throws. */
export function joinCgroup(procsFd: number, pid: number): void {
  const text = Buffer.from(String(pid));
  writeSync(procsFd, text, 0, text.length, 0);
}

/** One handler's cgroup, reused by later handlers once it is empty again. */
export interface HandlerCgroup {
  readonly path: string;
  /** Its cgroup.procs, open read-write: the child joins by writing "0"; a read lists members. */
  readonly procsFd: number;
}

/**
 * The daemon's handler cgroups: `ROOT/hN`, one per running handler. An empty one goes back to a
 * free list (up to `maxFree`) instead of being removed, its cgroup.procs still open while other
 * handlers run: mkdir + open + rmdir of a cgroup cost ~150 us of the daemon's thread, and the
 * open and close of cgroup.procs alone (a path walk in the cgroup file system) about a tenth of
 * the daemon's CPU per connection under load; a reused open one costs one read of it at the
 * exit. A running handler's cgroup holds one fd (its cgroup.procs); idle ones hold theirs only
 * while some handler runs (at most the peak number of handlers, and `maxFree`): once none runs,
 * they are closed, and the daemon's fd count is back to what it was with no handler.
 */
export class HandlerCgroups {
  readonly root: string;
  /** Linux >= 5.14: cgroup.kill ends a whole cgroup at once (else each member in turn). */
  readonly hasKillFile: boolean;
  /** Empty cgroups kept for reuse, cgroup.procs open or -1 (handed out as new objects). */
  private readonly free: HandlerCgroup[] = [];
  private readonly taken = new Set<HandlerCgroup>();
  private readonly buffer = Buffer.alloc(4096);
  private created = 0;
  private isClosed = false;

  /** Creates ROOT (mode 0755); throws when it cannot (no cgroup2, no write access). */
  constructor(
    root: string,
    private readonly maxFree = 64,
  ) {
    mkdirSync(root, { mode: 0o755 });
    this.root = root;
    this.hasKillFile = existsSync(join(root, 'cgroup.kill'));
  }

  /** A cgroup of its own for one handler. Throws (mkdir or open failed: EMFILE, ENOSPC...). */
  acquire(): HandlerCgroup {
    if (this.isClosed) throw new Error('the daemon has let go of its cgroups');
    const reused = this.free.pop();
    const path = reused?.path ?? join(this.root, `h${++this.created}`);
    if (reused === undefined) mkdirSync(path);
    let cgroup: HandlerCgroup;
    try {
      // A new object: a stale reference to the previous holder's cannot release this one.
      const procsFd =
        reused !== undefined && reused.procsFd >= 0 ? reused.procsFd : openProcs(path);
      cgroup = { path, procsFd };
    } catch (error) {
      tryRmdir(path);
      throw error;
    }
    this.taken.add(cgroup);
    return cgroup;
  }

  /** The pids in the cgroup now (none once the daemon has let go of its cgroups). */
  members(cgroup: HandlerCgroup): number[] {
    let text = '';
    try {
      for (let position = 0; !this.isClosed;) {
        const n = readSync(cgroup.procsFd, this.buffer, 0, this.buffer.length, position);
        if (n === 0) break;
        text += this.buffer.toString('latin1', 0, n);
        position += n;
      }
    } catch {
      return [];
    }
    return text.split('\n').flatMap((line) => (line === '' ? [] : [Number(line)]));
  }

  isEmpty(cgroup: HandlerCgroup): boolean {
    try {
      return this.isClosed || readSync(cgroup.procsFd, this.buffer, 0, 16, 0) === 0;
    } catch {
      return true;
    }
  }

  /**
   * Sends `signal` to every process in the cgroup but those `isReached` already (SIGKILL: to all,
   * through cgroup.kill where there is one).
   */
  signal(
    cgroup: HandlerCgroup,
    signal: NodeJS.Signals,
    isReached: (pid: number) => boolean = () => false,
  ): void {
    if (signal === 'SIGKILL' && this.hasKillFile) {
      try {
        writeFileSync(join(cgroup.path, 'cgroup.kill'), '1');
        return;
      } catch {
        // fall back to one by one
      }
    }
    for (const pid of this.members(cgroup)) {
      if (isReached(pid)) continue;
      try {
        process.kill(pid, signal);
      } catch {
        // gone meanwhile
      }
    }
  }

  /** An empty cgroup back to the free list (or removed when the list is full). */
  release(cgroup: HandlerCgroup): void {
    // Once `close` has taken the cgroup (shutdown), its fd and directory are close's to end.
    if (this.isClosed || !this.taken.delete(cgroup)) return;
    if (this.free.length < this.maxFree) this.free.push(cgroup);
    else removeCgroup(cgroup);
    if (this.taken.size === 0) this.closeIdle();
  }

  /** No handler runs: the idle cgroups let go of their fds (kept as paths). */
  private closeIdle(): void {
    for (let i = 0; i < this.free.length; i += 1) {
      const idle = this.free[i]!;
      if (idle.procsFd < 0) continue;
      closeSync(idle.procsFd);
      this.free[i] = { path: idle.path, procsFd: -1 };
    }
  }

  /** Removes the empty cgroups kept for reuse (the daemon hands over and exits). */
  dropFree(): void {
    this.isClosed = true;
    for (const cgroup of this.free.splice(0)) removeCgroup(cgroup);
  }

  /**
   * At shutdown: kills whatever is still in the handler cgroups, waits up to `ms` for them to
   * empty, and removes them and ROOT. Returns the paths it could not remove.
   */
  async close(ms: number): Promise<string[]> {
    for (const cgroup of this.free.splice(0)) removeCgroup(cgroup);
    const all = [...this.taken];
    this.taken.clear();
    for (const cgroup of all) if (!this.isEmpty(cgroup)) this.signal(cgroup, 'SIGKILL');
    const deadline = Date.now() + ms;
    while (all.some((c) => !this.isEmpty(c)) && Date.now() < deadline) await pause(10);
    this.isClosed = true;
    const left = all.filter((cgroup) => !removeCgroup(cgroup)).map((c) => c.path);
    if (!tryRmdir(this.root)) left.push(this.root);
    return left;
  }
}

/**
 * Removes what dead daemons left in `parent` (a crash, or a hand-over whose handlers have
 * ended since): every `socketeer-PID` whose PID no longer runs, and its empty cgroups. A cgroup
 * with a process in it stays (rmdir fails).
 */
export function removeStaleRoots(parent: string, isRunning: (pid: number) => boolean): void {
  for (const name of listDirs(parent)) {
    const m = /^socketeer-(\d+)$/.exec(name);
    if (m === null || isRunning(Number(m[1]))) continue;
    for (const child of listDirs(join(parent, name))) tryRmdir(join(parent, name, child));
    tryRmdir(join(parent, name));
  }
}

function openProcs(path: string): number {
  return openSync(join(path, 'cgroup.procs'), 'r+');
}

function removeCgroup(cgroup: HandlerCgroup): boolean {
  if (cgroup.procsFd >= 0) closeSync(cgroup.procsFd);
  return tryRmdir(cgroup.path);
}

function tryRmdir(path: string): boolean {
  try {
    rmdirSync(path);
    return true;
  } catch {
    return false;
  }
}

function listDirs(path: string): string[] {
  try {
    return readdirSync(path, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
