import type { ServiceSpec } from '../config/types.js';

/** The first passed fd (systemd's SD_LISTEN_FDS_START). */
export const listenFdsStart = 3;

/** A listening socket passed to this process, with its LISTEN_FDNAMES entry ('' when none). */
export interface InheritedFd {
  readonly fd: number;
  readonly name: string;
}

export interface ListenFdsReading {
  readonly fds: readonly InheritedFd[];
  /** Why the variables were ignored, if they were set and unusable. */
  readonly problem: string | null;
}

/**
 * Reads systemd's socket-passing variables (pure). `LISTEN_PID` may be absent or equal to this
 * process's pid (a hand-over from Node cannot set the child's pid before it exists); any other
 * value means the fds were meant for another process, and they are left alone.
 */
export function readListenFds(
  env: Readonly<Record<string, string | undefined>>,
  pid: number,
): ListenFdsReading {
  const countText = env.LISTEN_FDS;
  if (countText === undefined || countText === '') return { fds: [], problem: null };
  if (env.LISTEN_PID !== undefined && env.LISTEN_PID !== String(pid))
    return { fds: [], problem: `LISTEN_PID=${env.LISTEN_PID} is not this process (${pid})` };
  if (!/^\d{1,4}$/.test(countText))
    return { fds: [], problem: `LISTEN_FDS=${countText} is not a count` };
  const names = env.LISTEN_FDNAMES === undefined ? [] : env.LISTEN_FDNAMES.split(':');
  const fds = Array.from({ length: Number(countText) }, (_, i) => ({
    fd: listenFdsStart + i,
    name: names[i] ?? '',
  }));
  return { fds, problem: null };
}

/**
 * The name socketeer gives the fd of a service's `index`-th address: `SERVICE/INDEX`, with `%`
 * and `:` (the LISTEN_FDNAMES separator) written `%25` and `%3A`.
 */
export function formatFdName(service: string, index: number): string {
  return `${service.replace(/%/g, '%25').replace(/:/g, '%3A')}/${index}`;
}

/** `SERVICE/N` names the N-th address (from 0); a bare `SERVICE` the next one not yet given. */
function parseFdName(name: string): { service: string; index: number | null } {
  const m = /^(.*)\/(\d{1,4})$/.exec(name);
  const decode = (text: string): string => text.replace(/%3A/gi, ':').replace(/%25/g, '%');
  return m === null
    ? { service: decode(name), index: null }
    : { service: decode(m[1] ?? ''), index: Number(m[2]) };
}

export interface FdAssignment {
  /** service name → address index → fd. */
  readonly byService: ReadonlyMap<string, ReadonlyMap<number, number>>;
  readonly unused: readonly {
    readonly fd: number;
    readonly name: string;
    readonly reason: string;
  }[];
}

/** Which inherited fd serves which address of which service (pure). */
export function assignInheritedFds(
  services: readonly ServiceSpec[],
  fds: readonly InheritedFd[],
): FdAssignment {
  const byService = new Map<string, Map<number, number>>();
  const unused: { fd: number; name: string; reason: string }[] = [];
  for (const { fd, name } of fds) {
    const { service, index } = parseFdName(name);
    const spec = services.find((s) => s.name === service);
    if (spec === undefined) {
      unused.push({ fd, name, reason: `no enabled service named ${service || '(empty)'}` });
      continue;
    }
    const given = byService.get(service) ?? new Map<number, number>();
    const at = index ?? spec.listen.findIndex((_, i) => !given.has(i));
    if (at < 0 || at >= spec.listen.length) {
      unused.push({
        fd,
        name,
        reason: `${service} has no address #${index ?? spec.listen.length}`,
      });
    } else if (given.has(at)) {
      unused.push({
        fd,
        name,
        reason: `${service} address #${at} already has fd ${given.get(at)}`,
      });
    } else {
      given.set(at, fd);
      byService.set(service, given);
    }
  }
  return { byService, unused };
}
