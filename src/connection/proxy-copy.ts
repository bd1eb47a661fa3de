import type { ProxyTarget } from '../config/types.js';
import { AcceptedFd, type IncomingConnection } from '../listen/incoming.js';
import { copyWithStreams } from './proxy-streams.js';

/** One proxied connection to start: the client, where to, and how. */
export interface ProxyCopyRequest {
  readonly incoming: IncomingConnection;
  readonly target: ProxyTarget;
  /** The PROXY protocol header written to the target first; null: none. */
  readonly header: Buffer | null;
  readonly connectTimeoutMs: number;
  /** null: no idle timeout. */
  readonly idleTimeoutMs: number | null;
}

/** How a proxied connection ended (both sockets closed by then). */
export interface ProxyCopyResult {
  /** The target was reached (false: `code` says why not). */
  readonly connected: boolean;
  /** Bytes read from the client and written to the target (the header not counted). */
  readonly bytesFromClient: number;
  /** Bytes read from the target and written to the client. */
  readonly bytesToClient: number;
  /** null: both sides ended (or the daemon closed it); else the errno name. */
  readonly code: string | null;
  /** What failed: connect, idle, splice, read, write, ... */
  readonly syscall: string | null;
}

/** A proxied connection being copied. */
export interface ProxyCopy {
  /** Closes both sides now (stop, quiesce, `kill`, runtimeMaxSec); `ended` then resolves. */
  close(): void;
  /** Resolves once, never rejects. */
  readonly ended: Promise<ProxyCopyResult>;
  /** `splice`: in the addon; `streams`: Node streams. */
  readonly engine: 'splice' | 'streams';
}

/** The addon's proxy functions (native/splice.c). */
export interface ProxyAddon {
  proxyStart(
    fd: number,
    target: ProxyTarget,
    options: { header: Buffer | null; connectTimeoutMs: number; idleTimeoutMs: number },
    onEnd: (result: ProxyCopyResult) => void,
  ): number;
  proxyClose(id: number): boolean;
}

/** The addon's proxy functions when it has them (an addon built before them has not). */
export function asProxyAddon(addon: object | null): ProxyAddon | null {
  if (addon === null) return null;
  const candidate = addon as Partial<ProxyAddon>;
  return typeof candidate.proxyStart === 'function' && typeof candidate.proxyClose === 'function'
    ? (addon as ProxyAddon)
    : null;
}

/**
 * Starts copying: with splice(2) in the addon when there is one and the connection is a bare fd
 * (the addon accepted it), else with Node streams (`--spawner portable`, or no addon). Never
 * throws: a failure comes back in `ended`.
 */
export function startProxyCopy(addon: ProxyAddon | null, request: ProxyCopyRequest): ProxyCopy {
  const { incoming } = request;
  if (addon === null || !(incoming instanceof AcceptedFd)) return copyWithStreams(request);
  let resolve: (result: ProxyCopyResult) => void = () => undefined;
  const ended = new Promise<ProxyCopyResult>((r) => (resolve = r));
  let id: number;
  try {
    id = addon.proxyStart(
      incoming.fd,
      request.target,
      {
        header: request.header,
        connectTimeoutMs: request.connectTimeoutMs,
        idleTimeoutMs: request.idleTimeoutMs ?? 0,
      },
      resolve,
    );
  } catch (error) {
    // a malformed call (a bug) or ENOMEM: the fd is still ours
    incoming.close();
    const code = (error as NodeJS.ErrnoException).code ?? 'EINVAL';
    const failed = { connected: false, bytesFromClient: 0, bytesToClient: 0, code };
    return {
      close: () => undefined,
      ended: Promise.resolve({ ...failed, syscall: 'proxyStart' }),
      engine: 'splice',
    };
  }
  return { close: () => void addon.proxyClose(id), ended, engine: 'splice' };
}
