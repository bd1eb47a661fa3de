import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { rename, unlink } from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { ListenAddress } from '../config/types.js';
import { formatListenAddress } from '../config/listen-address.js';
import { loadPeerAddon } from '../listen/peer-state.js';
import {
  HandoverChannel,
  handoverFdVariable,
  handoverQueueFdVariable,
} from './handover-channel.js';
import type { HandoverHost, HandoverService } from './host.js';
import {
  closeTaken,
  dropTaken,
  giveBack,
  sendPassed,
  takeQueues,
  type Taken,
} from './upgrade-queue.js';
import { formatFdName, listenFdsStart } from './inherited-fds.js';
import { carryState } from './carry.js';
import { notifySystemd } from './sd-notify.js';

export interface HandOverOptions {
  /** The control socket: moved aside while the new process binds its own, back on a failure. */
  readonly controlPath: string | null;
  /** How long the new process may take to be prepared, and then to be ready. */
  readonly timeoutMs: number;
}

export type HandOverOutcome =
  | { readonly ok: true; readonly pid: number; readonly handlers: number; readonly queued: number }
  | { readonly ok: false; readonly message: string };

interface Passed {
  readonly fd: number;
  readonly name: string;
}

/**
 * `upgrade` and SIGUSR2: start a new socketeer process (same argv, the code on disk now) with
 * every listening socket (LISTEN_FDS), wait until it has loaded the configuration, stop
 * accepting here, send it the running handlers and counters, and wait until it serves. On
 * success this process must exit without ending its handlers; on a failure it serves again.
 */
export function handOver(host: HandoverHost, options: HandOverOptions): Promise<HandOverOutcome> {
  return host.exclusive(async () => {
    const control = await moveAside(options.controlPath);
    const successor = startSuccessor(collectListeners(host));
    const outcome = await converse(host, successor, options.timeoutMs);
    if (!outcome.ok) {
      await control.restore();
      host.log.log('error', 'upgrade-failed', { error: outcome.message });
      return outcome;
    }
    host.markHandedOver();
    await control.discard();
    await notifySystemd([`MAINPID=${outcome.pid}`], host.log);
    const { pid, handlers, queued } = outcome;
    host.log.log('info', 'upgrade', { pid, handlers, queued });
    return outcome;
  });
}

interface Successor {
  readonly child: ChildProcess;
  readonly channel: HandoverChannel | null;
  /** Where the fds of queued connections go (null: the addon is not built). */
  readonly queueSocket: Socket | null;
  /** Resolves with how it ended (or failed to start). */
  readonly exited: Promise<string>;
}

/**
 * The conversation of a hand-over; on a failure the successor is killed and we serve again.
 * Queued connections go with `state` (their fds right after it, on the queue socket) when the
 * successor can take them; our copies are closed once it is ready, given back on a failure.
 */
async function converse(
  host: HandoverHost,
  successor: Successor,
  timeoutMs: number,
): Promise<HandOverOutcome> {
  const { channel, exited } = successor;
  const fail = (reason: string, closed: readonly Closed[] = [], taken: readonly Taken[] = []) =>
    abandon({ host, successor, reason, closed, taken });
  if (channel === null) return fail('its channel was not created');
  channel.send({ kind: 'hello', version: 1, from: process.pid, stopped: host.unboundServices() });
  const prepared = await Promise.race([channel.receive('prepared', timeoutMs), exited]);
  if (typeof prepared === 'string' || prepared === null)
    return fail(prepared ?? `not prepared within ${timeoutMs} ms`);
  const closed = stopAccepting(host);
  let taken = takeQueues(host);
  const canPass = prepared.queue === true && successor.queueSocket !== null;
  if (!canPass) {
    dropTaken(taken);
    taken = [];
  }
  const state = carryState(host, taken, canPass);
  channel.send({ kind: 'state', services: state.services });
  const unsent = sendPassed(successor.queueSocket, state.fds, timeoutMs);
  if (unsent !== null) return fail(unsent, closed, taken);
  const ready = await Promise.race([channel.receive('ready', timeoutMs), exited]);
  if (typeof ready === 'string' || ready === null)
    return fail(ready ?? `not ready within ${timeoutMs} ms`, closed, taken);
  closeTaken(taken);
  channel.destroy();
  successor.queueSocket?.destroy();
  successor.child.unref();
  return { ok: true, pid: ready.pid, handlers: host.activeHandlers, queued: taken.length };
}

/** A failed hand-over: why, and what to serve again here. */
interface Abandoned {
  readonly host: HandoverHost;
  readonly successor: Successor;
  readonly reason: string;
  /** The listeners closed for it (bound again). */
  readonly closed: readonly Closed[];
  /** The queued connections taken for it (queued again). */
  readonly taken: readonly Taken[];
}

/**
 * Kills the successor and waits for it to be gone (its copies of the sockets must be closed
 * before we bind them again). A closed channel usually means it is exiting: its own exit
 * status, if it comes within a second, says more than the channel did.
 */
async function abandon(abandoned: Abandoned): Promise<HandOverOutcome> {
  const { host, successor, reason, closed, taken } = abandoned;
  const { child, channel, exited } = successor;
  let timer: NodeJS.Timeout | undefined;
  const soon = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), 1000)));
  const why = (await Promise.race([exited, soon])) ?? reason;
  clearTimeout(timer);
  child.kill('SIGKILL');
  channel?.destroy();
  successor.queueSocket?.destroy();
  await exited;
  await resumeServing(host, closed);
  giveBack(taken);
  return { ok: false, message: `hand-over to pid ${child.pid ?? '?'} failed: ${why}` };
}

/** The control socket moves aside while the successor binds its own at the same path. */
async function moveAside(
  path: string | null,
): Promise<{ restore: () => Promise<void>; discard: () => Promise<void> }> {
  const aside = path === null ? null : `${path}.${process.pid}.old`;
  if (path === null || aside === null) return { restore: async () => {}, discard: async () => {} };
  await rename(path, aside).catch(() => undefined);
  return {
    restore: () => rename(aside, path).catch(() => undefined),
    discard: () => unlink(aside).catch(() => undefined),
  };
}

/** Every bound listener, named `SERVICE/INDEX` after its place in the service's `listen`. */
function collectListeners(host: HandoverHost): Passed[] {
  return host.listServices().flatMap((runner) =>
    runner.boundListeners.flatMap((listener) => {
      const index = runner.spec.listen.findIndex((a) => isSameAddress(a, listener.address));
      const { fd } = listener;
      return index === -1 || fd === null
        ? []
        : [{ fd, name: formatFdName(runner.spec.name, index) }];
    }),
  );
}

function isSameAddress(a: ListenAddress, b: ListenAddress): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function startSuccessor(passed: readonly Passed[]): Successor {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.LISTEN_PID;
  const channelFd = listenFdsStart + passed.length;
  // a second socket for the queued connections' fds: only the addon can send them
  const hasQueueSocket = loadPeerAddon() !== null;
  Object.assign(env, {
    LISTEN_FDS: String(passed.length),
    LISTEN_FDNAMES: passed.map((p) => p.name).join(':'),
    [handoverFdVariable]: String(channelFd),
    ...(hasQueueSocket ? { [handoverQueueFdVariable]: String(channelFd + 1) } : {}),
  });
  const stdio: StdioOptions = [
    'ignore',
    'inherit',
    'inherit',
    ...passed.map((p) => p.fd),
    'pipe',
    ...(hasQueueSocket ? ['pipe' as const] : []),
  ];
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio,
    env,
    detached: true,
  });
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => resolve(`unable to start it: ${error.message}`));
    child.once('exit', (code, signal) => resolve(`it exited (${signal ?? `code ${code}`})`));
  });
  const socket = child.stdio[channelFd] as Socket | null | undefined;
  const queueSocket = hasQueueSocket ? (child.stdio[channelFd + 1] as Socket | null) : null;
  queueSocket?.on('error', () => undefined);
  return {
    child,
    exited,
    channel: socket ? new HandoverChannel(socket) : null,
    queueSocket: queueSocket ?? null,
  };
}

/** A listener `stopAccepting` closed, as it is to be bound again if the hand-over fails. */
interface Closed {
  readonly runner: HandoverService;
  /** null: an `accept: false` service's held sockets, left open, to be held again. */
  readonly address: ListenAddress | null;
  /** The port a TCP `port 0` address had resolved to. */
  readonly port: number | undefined;
}

/**
 * Closes our copies of the listening sockets; the new process holds its own, and connections
 * not yet accepted wait in their backlog. close() stops accepting at once, so the queues can be
 * taken right after this (none grows then). Not awaited: a net.Server's close completes only
 * once its connections are closed, and the queued ones among them are about to be passed on.
 * An `accept: false` service's sockets stay open (its process, left running, accepts on them):
 * only its activation stops.
 */
function stopAccepting(host: HandoverHost): Closed[] {
  const closed: Closed[] = [];
  for (const runner of host.listServices()) {
    if (runner.suspendHolding()) {
      closed.push({ runner, address: null, port: undefined });
      continue;
    }
    for (const { address, port } of runner.boundListeners) {
      closed.push({ runner, address, port: port ?? undefined });
    }
    void runner.closeListeners({ keepPath: true }).catch(() => undefined);
  }
  return closed;
}

/** After a failed hand-over: bind again what `stopAccepting` closed (Unix paths replaced). */
async function resumeServing(host: HandoverHost, closed: readonly Closed[]): Promise<void> {
  for (const { runner, address, port } of closed) {
    if (address === null) {
      runner.resumeHolding();
      continue;
    }
    const options = port === undefined ? { replace: true } : { replace: true, port };
    await runner.addListener(address, options).catch((error: unknown) => {
      host.log.log('error', 'bind-failed', {
        service: runner.spec.name,
        address: formatListenAddress(address),
        error: error instanceof Error ? error.message : String(error),
      });
    });
  }
}
