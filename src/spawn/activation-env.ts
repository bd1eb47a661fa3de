import type { ServiceSpec } from '../config/types.js';
import { formatListenAddress } from '../config/listen-address.js';
import { withBaseEnv } from './env.js';

/** What an `accept: false` service's process finds where: a passed fd and its address. */
export interface PassedFd {
  readonly fd: number;
  readonly address: string;
}

/** The fds of an `accept: false` service's process, as `check` shows them and the daemon passes them. */
export interface PassedFds {
  /**
   * fd 3, 4, … in `listen` order, then the stored fds; with `listenerOn: stdin`, fd 0 and 1
   * (the same socket).
   */
  readonly fds: readonly PassedFd[];
  /** LISTEN_FDS, LISTEN_FDNAMES (none with `listenerOn: stdin`), NOTIFY_SOCKET. */
  readonly env: Readonly<Record<string, string>>;
}

/** The first fd of the sd_listen_fds protocol. */
export const listenFdsStart = 3;

/** NOTIFY_SOCKET as `check` shows it: the real name is made when the daemon opens it. */
export function notifySocketPattern(service: string): string {
  return `@socketeer-notify/<daemon pid>/<random>/${service}`;
}

/** What one start passes beyond the configuration. */
export interface PassedRun {
  /** The sockets as bound (port 0 resolved); default as configured. */
  readonly addresses?: readonly string[];
  /** The fd store's names, in order: fds after the listeners (`listenerOn: fd3` only). */
  readonly stored?: readonly string[];
  /** NOTIFY_SOCKET (`@name`); default notifySocketPattern. */
  readonly notifySocket?: string;
}

/**
 * The fds an `accept: false` service's process gets (pure): the listening sockets from fd 3
 * with LISTEN_FDS and LISTEN_FDNAMES (`fdName` once per socket, colon-separated, as systemd),
 * then the stored fds (`stored:NAME`, named by their FDNAME), counted in LISTEN_FDS; or the
 * one socket on fd 0 and 1 (`listenerOn: stdin`, as inetd's `wait`). NOTIFY_SOCKET either way.
 * LISTEN_PID is set by the child itself (SpawnPlan.setListenPid).
 */
export function describePassedFds(
  service: Pick<ServiceSpec, 'name' | 'listen' | 'activation'>,
  run: PassedRun = {},
): PassedFds {
  const activation = service.activation;
  if (activation === null) return { fds: [], env: {} };
  const addresses = run.addresses ?? service.listen.map(formatListenAddress);
  const notify = { NOTIFY_SOCKET: run.notifySocket ?? notifySocketPattern(service.name) };
  if (activation.listenerOn === 'stdin')
    return { fds: [0, 1].map((fd) => ({ fd, address: addresses[0] ?? '' })), env: notify };
  const stored = run.stored ?? [];
  const names = [...addresses.map(() => activation.fdName), ...stored];
  return {
    fds: [...addresses, ...stored.map((name) => `stored:${name}`)].map((address, i) => ({
      fd: listenFdsStart + i,
      address,
    })),
    env: { LISTEN_FDS: String(names.length), LISTEN_FDNAMES: names.join(':'), ...notify },
  };
}

/**
 * The whole environment of an `accept: false` service's process: the service's fixed part (PATH,
 * HOME, USER, LOGNAME, passEnv, env) as for a handler, SOCKETEER_SERVICE, and LISTEN_FDS /
 * LISTEN_FDNAMES / NOTIFY_SOCKET, which always win; no connection's variables (there is none).
 */
export function buildActivationEnv(
  service: Pick<ServiceSpec, 'name' | 'baseEnv' | 'listen' | 'activation'>,
  run: PassedRun = {},
): string[] {
  return withBaseEnv(service.baseEnv, {
    SOCKETEER_SERVICE: service.name,
    ...describePassedFds(service, run).env,
  });
}
