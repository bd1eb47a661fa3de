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
  /** fd 3, 4, … in `listen` order; with `listenerOn: stdin`, fd 0 and 1 (the same socket). */
  readonly fds: readonly PassedFd[];
  /** LISTEN_FDS, LISTEN_FDNAMES (none with `listenerOn: stdin`). */
  readonly env: Readonly<Record<string, string>>;
}

/** The first fd of the sd_listen_fds protocol. */
export const listenFdsStart = 3;

/**
 * The listening sockets an `accept: false` service's process gets (pure): fd 3 onward with
 * LISTEN_FDS and LISTEN_FDNAMES (`fdName` once per socket, colon-separated, as systemd), or the
 * one socket on fd 0 and 1 (`listenerOn: stdin`, as inetd's `wait`). LISTEN_PID is set by the
 * child itself (SpawnPlan.setListenPid). `addresses`: as bound (port 0 resolved), default as
 * configured.
 */
export function describePassedFds(
  service: Pick<ServiceSpec, 'listen' | 'activation'>,
  addresses: readonly string[] = service.listen.map(formatListenAddress),
): PassedFds {
  const activation = service.activation;
  if (activation === null) return { fds: [], env: {} };
  if (activation.listenerOn === 'stdin')
    return { fds: [0, 1].map((fd) => ({ fd, address: addresses[0] ?? '' })), env: {} };
  return {
    fds: addresses.map((address, i) => ({ fd: listenFdsStart + i, address })),
    env: {
      LISTEN_FDS: String(addresses.length),
      LISTEN_FDNAMES: addresses.map(() => activation.fdName).join(':'),
    },
  };
}

/**
 * The whole environment of an `accept: false` service's process: the service's fixed part (PATH,
 * HOME, USER, LOGNAME, passEnv, env) as for a handler, SOCKETEER_SERVICE, and LISTEN_FDS /
 * LISTEN_FDNAMES, which always win; no connection's variables (there is none).
 */
export function buildActivationEnv(
  service: Pick<ServiceSpec, 'name' | 'baseEnv' | 'listen' | 'activation'>,
): string[] {
  return withBaseEnv(service.baseEnv, {
    SOCKETEER_SERVICE: service.name,
    ...describePassedFds(service).env,
  });
}
