import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { ExitCode, FatalError } from '../model/errors.js';
import { loadPeerAddon } from '../listen/peer-state.js';
import {
  HandoverChannel,
  handoverFdVariable,
  handoverQueueFdVariable,
  type CarriedService,
} from './handover-channel.js';
import { readListenFds, type InheritedFd } from './inherited-fds.js';

/** What this process was given at start: listening fds, and a hand-over channel if any. */
export interface Inheritance {
  readonly fds: readonly InheritedFd[];
  /** Why LISTEN_FDS was ignored, if it was set and unusable. */
  readonly problem: string | null;
  readonly handoverFd: number | null;
  /** The socket on which a hand-over sends the fds of queued connections. */
  readonly handoverQueueFd: number | null;
}

/**
 * Reads LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID and SOCKETEER_HANDOVER_FD, and removes them from
 * `env` (as sd_listen_fds does) so that nothing started later sees them.
 */
export function takeInheritance(env: NodeJS.ProcessEnv, pid: number): Inheritance {
  const reading = readListenFds(env, pid);
  const handoverFd = readFdVariable(env[handoverFdVariable]);
  const handoverQueueFd = readFdVariable(env[handoverQueueFdVariable]);
  const names = ['LISTEN_FDS', 'LISTEN_FDNAMES', 'LISTEN_PID'];
  for (const name of [...names, handoverFdVariable, handoverQueueFdVariable]) delete env[name];
  return { fds: reading.fds, problem: reading.problem, handoverFd, handoverQueueFd };
}

function readFdVariable(text: string | undefined): number | null {
  return text !== undefined && /^\d{1,9}$/.test(text) ? Number(text) : null;
}

/** The new process's side of a hand-over. */
export interface Takeover {
  /** The pid of the process handing over. */
  readonly from: number;
  /** Services that stay stopped. */
  readonly stopped: ReadonlySet<string>;
  /**
   * Says we are prepared; resolves with the carried services once the old one stopped accepting,
   * each queued connection with the fd received for it. Throws (exit 111) if those fds do not
   * come: the old process then serves them again.
   */
  takeOver(): Promise<Readonly<Record<string, CarriedService>> | null>;
  /** Says we serve, and closes the channel. */
  ready(addresses: readonly string[]): void;
}

/** Opens the hand-over channel and reads the old process's `hello`. */
export async function openTakeover(
  fd: number,
  timeoutMs: number,
  queueFd: number | null = null,
): Promise<Takeover> {
  const channel = new HandoverChannel(new Socket({ fd, readable: true, writable: true }));
  const hello = await channel.receive('hello', timeoutMs);
  if (hello === null) {
    channel.destroy();
    throw new FatalError('hand-over: no hello from the previous process', ExitCode.temporary);
  }
  const stopped = Array.isArray(hello.stopped) ? hello.stopped : [];
  return {
    from: hello.from,
    stopped: new Set(stopped.filter((s): s is string => typeof s === 'string')),
    async takeOver() {
      const queue = queueFd !== null && loadPeerAddon() !== null;
      channel.send({ kind: 'prepared', pid: process.pid, queue });
      const state = await channel.receive('state', timeoutMs);
      const services = state !== null && typeof state.services === 'object' ? state.services : null;
      try {
        return services !== null && queue && queueFd !== null
          ? receiveQueued(services, queueFd, timeoutMs)
          : services;
      } finally {
        if (queueFd !== null) closeQuietly(queueFd);
      }
    },
    ready(addresses) {
      channel.end({ kind: 'ready', pid: process.pid, addresses });
    },
  };
}

/**
 * Receives the fd of every queued connection, then of every fd carried with a process, that
 * `services` lists (sent in `order` right after `state`); returns `services` with each entry's
 * `fd` set. Throws a FatalError if they do not all come.
 */
function receiveQueued(
  services: Readonly<Record<string, CarriedService>>,
  queueFd: number,
  timeoutMs: number,
): Record<string, CarriedService> {
  const count = Object.values(services).reduce(
    (n, s) => n + (s.queued?.length ?? 0) + (s.process?.fds?.length ?? 0),
    0,
  );
  let fds: number[] = [];
  try {
    if (count > 0) fds = loadPeerAddon()?.receiveFds(queueFd, count, timeoutMs) ?? [];
  } catch (error) {
    const message = `hand-over: the queued connections did not come: ${(error as Error).message}`;
    throw new FatalError(message, ExitCode.temporary);
  }
  const used = new Set<number>();
  const withFd = <T extends { readonly order: number }>(entry: T): T => {
    const fd = fds[entry.order];
    if (fd !== undefined) used.add(entry.order);
    return fd === undefined ? entry : { ...entry, fd };
  };
  const withFds = Object.entries(services).map(([name, service]) => {
    const queued = (service.queued ?? []).map(withFd);
    const { process } = service;
    const carried =
      process?.fds === undefined ? {} : { process: { ...process, fds: process.fds.map(withFd) } };
    return [name, { ...service, queued, ...carried }] as const;
  });
  fds.forEach((fd, order) => used.has(order) || closeQuietly(fd));
  return Object.fromEntries(withFds);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
