import { fstatSync } from 'node:fs';

/** One fd kept for an `accept: false` service's process (`FDSTORE=1`), with its FDNAME. */
export interface StoredFd {
  readonly name: string;
  /** The daemon's own fd (close-on-exec); passed to the process at each start. */
  readonly fd: number;
}

/** What `add` did with the fds it was given: every one is kept or closed. */
export interface StoreResult {
  readonly stored: number;
  /** Already stored under the same name (same st_dev and st_ino): closed. */
  readonly duplicates: number;
  /** Over the cap (`fdStoreMax`): closed. */
  readonly overCap: number;
}

export interface FdStoreOptions {
  /** close(2) of a daemon fd (the addon's closeFd). */
  readonly close: (fd: number) => void;
  /** What an fd is open on (`dev:ino`); default fstat(2). null: it cannot be told. */
  readonly identify?: (fd: number) => string | null;
}

/** `dev:ino` of an fd by fstat(2), or null. */
function identifyByStat(fd: number): string | null {
  try {
    const st = fstatSync(fd, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/**
 * The fd store of an `accept: false` service (systemd's FileDescriptorStoreMax, s6-fdholder):
 * fds its process gave with `FDSTORE=1`, kept open by the daemon in the order they came, passed
 * to the process after its listening sockets at each start, closed by `FDSTOREREMOVE=1`, by
 * `stop` (`clear`) or when over the cap. The store owns every fd in it: whatever it does not
 * keep, it closes. For a hand-over: `entries` lists them, `take` hands them out (the store no
 * longer closes them) and `adopt` takes in those of another process.
 */
export class FdStore {
  private readonly options: FdStoreOptions;
  private stored: StoredFd[] = [];

  constructor(options: FdStoreOptions) {
    this.options = options;
  }

  /** The stored fds in the order they came (the order the process gets them in). */
  get entries(): readonly StoredFd[] {
    return this.stored;
  }

  get size(): number {
    return this.stored.length;
  }

  /**
   * Keeps `fds` under `name`, at most `max` in the whole store; an fd open on what is already
   * stored under the same name (same st_dev and st_ino) is a duplicate. Closes what it does not
   * keep.
   */
  add(name: string, fds: readonly number[], max: number): StoreResult {
    const identify = this.options.identify ?? identifyByStat;
    const known = new Set(this.stored.filter((s) => s.name === name).map((s) => identify(s.fd)));
    let duplicates = 0;
    let overCap = 0;
    let stored = 0;
    for (const fd of fds) {
      const id = identify(fd);
      if (id !== null && known.has(id)) duplicates += 1;
      else if (this.stored.length >= max) overCap += 1;
      else {
        this.stored.push({ name, fd });
        known.add(id);
        stored += 1;
        continue;
      }
      this.closeQuietly(fd);
    }
    return { stored, duplicates, overCap };
  }

  /** Closes the fds stored under `name`; how many. */
  remove(name: string): number {
    const gone = this.stored.filter((s) => s.name === name);
    this.stored = this.stored.filter((s) => s.name !== name);
    for (const s of gone) this.closeQuietly(s.fd);
    return gone.length;
  }

  /** Closes every stored fd (`stop`); how many. */
  clear(): number {
    const gone = this.stored;
    this.stored = [];
    for (const s of gone) this.closeQuietly(s.fd);
    return gone.length;
  }

  /** Hands every stored fd out, still open (a hand-over): the store is empty and closes none. */
  take(): StoredFd[] {
    const out = this.stored;
    this.stored = [];
    return out;
  }

  /**
   * Takes fds stored by another process (a hand-over) after those held here, in their order,
   * owning them from now on; no cap: they were under one when stored.
   */
  adopt(entries: readonly StoredFd[]): void {
    this.stored = [...this.stored, ...entries];
  }

  /** Closes an fd the store owns or refused; one already closed (EBADF) is no matter. */
  private closeQuietly(fd: number): void {
    try {
      this.options.close(fd);
    } catch {
      // EBADF: nothing left to close
    }
  }
}

/** Closes fds the daemon will not keep (a refused message's), quietly. */
export function closeAll(fds: readonly number[], close: (fd: number) => void): void {
  for (const fd of fds)
    try {
      close(fd);
    } catch {
      // EBADF: nothing left to close
    }
}
