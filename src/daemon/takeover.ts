import { Socket } from 'node:net';
import { ExitCode, FatalError } from '../errors.js';
import { HandoverChannel, handoverFdVariable, type CarriedService } from './handover-channel.js';
import { readListenFds, type InheritedFd } from './inherited-fds.js';

/** What this process was given at start: listening fds, and a hand-over channel if any. */
export interface Inheritance {
  readonly fds: readonly InheritedFd[];
  /** Why LISTEN_FDS was ignored, if it was set and unusable. */
  readonly problem: string | null;
  readonly handoverFd: number | null;
}

/**
 * Reads LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID and SOCKETEER_HANDOVER_FD, and removes them from
 * `env` (as sd_listen_fds does) so that nothing started later sees them.
 */
export function takeInheritance(env: NodeJS.ProcessEnv, pid: number): Inheritance {
  const reading = readListenFds(env, pid);
  const handoverText = env[handoverFdVariable];
  for (const name of ['LISTEN_FDS', 'LISTEN_FDNAMES', 'LISTEN_PID', handoverFdVariable])
    delete env[name];
  const handoverFd =
    handoverText !== undefined && /^\d+$/.test(handoverText) ? Number(handoverText) : null;
  return { fds: reading.fds, problem: reading.problem, handoverFd };
}

/** The new process's side of a hand-over. */
export interface Takeover {
  /** The pid of the process handing over. */
  readonly from: number;
  /** Services that stay stopped. */
  readonly stopped: ReadonlySet<string>;
  /** Says we are prepared; resolves with the carried services once the old one stopped accepting. */
  takeOver(): Promise<Readonly<Record<string, CarriedService>> | null>;
  /** Says we serve, and closes the channel. */
  ready(addresses: readonly string[]): void;
}

/** Opens the hand-over channel and reads the old process's `hello`. */
export async function openTakeover(fd: number, timeoutMs: number): Promise<Takeover> {
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
      channel.send({ kind: 'prepared', pid: process.pid });
      const state = await channel.receive('state', timeoutMs);
      return state !== null && typeof state.services === 'object' ? state.services : null;
    },
    ready(addresses) {
      channel.end({ kind: 'ready', pid: process.pid, addresses });
    },
  };
}
