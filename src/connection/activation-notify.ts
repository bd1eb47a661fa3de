import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SocketHolder } from '../listen/hold.js';
import type { EventLog } from '../log/events.js';
import type { NotifyDatagram } from '../spawn/native-addon.js';
import { closeAll, FdStore } from './fd-store.js';
import { applyNotifyMessage, type NotifyRun } from './notify-apply.js';

/** What `status` shows of the notify protocol for an `accept: false` service's process. */
export type NotifyStatus = {
  /** READY=1 since the process started. */
  readonly ready: boolean;
  /** The last STATUS= of the process (kept after it exits, until the next start); null before. */
  readonly statusText: string | null;
  /** STOPPING=1 since the process started. */
  readonly stopping: boolean;
  /** The process's main pid: the one socketeer started, or the one it named with MAINPID=. */
  readonly mainPid: number | null;
  /** The fd store: how many fds, and each one's FDNAME in the order they are passed. */
  readonly storedFds: { readonly count: number; readonly names: readonly string[] };
};

/** The notify socket as a hand-over passes it on: the daemon's fd and its abstract name. */
export interface NotifySocket {
  readonly fd: number;
  /** `@socketeer-notify/…`, as NOTIFY_SOCKET says it. */
  readonly address: string;
}

export interface ActivationNotifyOptions {
  readonly holder: SocketHolder;
  /** Bound to `{service}`. */
  readonly log: EventLog;
  readonly service: string;
  /** The service's `fdStoreMax` now (a reload may change it). */
  readonly fdStoreMax: () => number;
  /** The parent of a pid (/proc/PID/status PPid), null when it is gone; for tests. */
  readonly parentOf?: (pid: number) => number | null;
}

/** Sender pids remembered as refused (each is logged once); forgotten all at once past this. */
const refusedMemory = 4096;

/** The abstract name of a notify socket: `socketeer-notify/<daemon pid>/<random>/<service>`. */
function notifyName(service: string): string {
  let name = `socketeer-notify/${process.pid}/${randomBytes(8).toString('hex')}/${service}`;
  while (Buffer.byteLength(name) > 107) name = name.slice(0, -1);
  return name;
}

/** PPid of /proc/PID/status, or null when the process is gone. */
export function readParentPid(pid: number): number | null {
  try {
    const m = /^PPid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m === null ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/** Whether `pid` is `ancestor` or one of its descendants (up its PPid chain). */
export function isSelfOrDescendant(
  pid: number,
  ancestor: number,
  parentOf: (pid: number) => number | null = readParentPid,
): boolean {
  let at: number | null = pid;
  for (let depth = 0; at !== null && at > 1 && depth < 4096; depth += 1) {
    if (at === ancestor) return true;
    at = parentOf(at);
  }
  return false;
}

/**
 * The NOTIFY_SOCKET of an `accept: false` service and what its process says on it: one abstract
 * SOCK_DGRAM socket per service (native/notify.c), open from the first start until the service's
 * sockets are released with no process left, drained whenever it is readable and when the
 * process exits. Only the main process may send (systemd's NotifyAccess=main: the pid socketeer
 * started, or the one it named with MAINPID= while that is itself or a descendant); anything
 * else is dropped, its fds closed, and logged once per sender pid (`notify-refused`). The fd
 * store (`store`) outlives the process: it is passed at the next start, closed by `stop`.
 *
 * For a hand-over: `socket` (fd and address) and `store.entries` say what to pass on;
 * `adoptSocket` and `store.adopt` take in another process's.
 */
export class ActivationNotify {
  readonly store: FdStore;
  private readonly options: ActivationNotifyOptions;
  private channel: NotifySocket | null = null;
  private run: NotifyRun = { pid: null, mainPid: null, ready: false, stopping: false };
  private statusText: string | null = null;
  private readonly refused = new Set<number>();
  /** The store is closed (the service's sockets are): FDSTORE is refused. */
  private isClosed = false;

  constructor(options: ActivationNotifyOptions) {
    this.options = options;
    this.store = new FdStore({ close: (fd) => options.holder.closeFd(fd) });
  }

  /** The notify socket, or null when none is open. */
  get socket(): NotifySocket | null {
    return this.channel;
  }

  /** Opens the notify socket if none is (throws a system error); its NOTIFY_SOCKET address. */
  open(): string {
    this.isClosed = false;
    if (this.channel !== null) return this.channel.address;
    const name = notifyName(this.options.service);
    const socket = { fd: this.options.holder.notifyOpen(name), address: `@${name}` };
    this.adoptSocket(socket);
    return socket.address;
  }

  /** Takes a notify socket opened by another process (a hand-over) and watches it. */
  adoptSocket(socket: NotifySocket): void {
    this.channel = socket;
    this.watch();
  }

  /** A new process runs (pid): not ready, no status, its own pid the main one. */
  started(pid: number): void {
    this.run = { pid, mainPid: pid, ready: false, stopping: false };
    this.statusText = null;
    this.refused.clear();
  }

  /** The process has exited: what it sent before its end is read first. */
  ended(): void {
    this.drain();
    this.run = { pid: null, mainPid: null, ready: false, stopping: false };
  }

  /** `stop` (the sockets close): every stored fd is closed, and FDSTORE refused until `open`. */
  closeStore(): void {
    this.isClosed = true;
    const closed = this.store.clear();
    if (closed > 0) this.options.log.log('info', 'fd-store-closed', { closed });
  }

  /** Closes the notify socket (the service released, its process gone). */
  close(): void {
    const channel = this.channel;
    if (channel === null) return;
    this.drain();
    this.channel = null;
    this.options.holder.unwatchReadable(channel.fd);
    this.options.holder.closeFd(channel.fd);
  }

  status(): NotifyStatus {
    const entries = this.store.entries;
    return {
      ready: this.run.ready,
      statusText: this.statusText,
      stopping: this.run.stopping,
      mainPid: this.run.mainPid,
      storedFds: { count: entries.length, names: entries.map((e) => e.name) },
    };
  }

  private watch(): void {
    const channel = this.channel;
    if (channel === null) return;
    this.options.holder.watchReadable(channel.fd, () => {
      this.drain();
      this.watch();
    });
  }

  /** Reads every waiting message. */
  private drain(): void {
    const channel = this.channel;
    if (channel === null) return;
    for (;;) {
      let message: NotifyDatagram | null;
      try {
        message = this.options.holder.notifyReceive(channel.fd);
      } catch (error) {
        const e = error as NodeJS.ErrnoException;
        this.refuse({ pid: 0, uid: -1, fds: [] }, 'receive', `${e.code ?? ''} ${e.message}`);
        return;
      }
      if (message === null) return;
      this.receive(message);
    }
  }

  private receive(message: NotifyDatagram): void {
    const why = this.checkSender(message.pid);
    if (why !== null) {
      if (!this.refused.has(message.pid)) this.refuse(message, 'not-main', why);
      else closeAll(message.fds, (fd) => this.options.holder.closeFd(fd));
      if (this.refused.size >= refusedMemory) this.refused.clear();
      this.refused.add(message.pid);
      return;
    }
    if (message.truncated) {
      this.refuse(message, 'truncated', 'over 64 KiB or 253 fds: dropped');
      return;
    }
    const applied = applyNotifyMessage({
      text: message.data.toString('utf8'),
      fds: message.fds,
      run: this.run,
      sender: message.pid,
      store: this.isClosed ? null : this.store,
      fdStoreMax: this.options.fdStoreMax(),
      isMainCandidate: (pid) => this.isMainCandidate(pid),
      close: (fd) => this.options.holder.closeFd(fd),
      log: this.options.log,
    });
    this.run = applied.run;
    if (applied.status !== null) this.statusText = applied.status;
  }

  /** null when `pid` may send; else why not. */
  private checkSender(pid: number): string | null {
    const { pid: started, mainPid } = this.run;
    if (started === null) return 'no process of the service runs';
    if (pid === started) return null;
    if (pid === mainPid && this.isMainCandidate(pid)) return null;
    return `pid ${pid} is not the main process (${mainPid ?? started})`;
  }

  /** MAINPID=: the process socketeer started, or one of its descendants. */
  private isMainCandidate(pid: number): boolean {
    const started = this.run.pid;
    return started !== null && isSelfOrDescendant(pid, started, this.options.parentOf);
  }

  private refuse(
    from: Pick<NotifyDatagram, 'pid' | 'uid' | 'fds'>,
    reason: string,
    detail: string,
  ): void {
    closeAll(from.fds, (fd) => this.options.holder.closeFd(fd));
    this.options.log.log('warn', 'notify-refused', {
      pid: from.pid,
      uid: from.uid,
      reason,
      detail,
      fds: from.fds.length,
    });
  }
}
