import type { ProxySpec } from '../config/types.js';
import type { EventLog } from '../log/events.js';
import { formatPeer } from '../model/peer.js';
import { encodeProxyHeader } from '../model/proxy-header.js';
import type { HandlerOutcome } from '../model/spawn.js';
import type { ConnectionServer, ServeRequest, Served } from './connection-server.js';
import type { HandlerEnding } from './handler-table.js';
import { servedInProcess } from './in-process.js';
import {
  startProxyCopy,
  type ProxyAddon,
  type ProxyCopy,
  type ProxyCopyResult,
} from './proxy-copy.js';

export interface ProxyServerOptions {
  /** The addon's splice copy; null: Node streams. */
  readonly addon: ProxyAddon | null;
  /** Wall-clock ms: `startedAt`, `durationMs`. */
  readonly now: () => number;
}

/**
 * The proxy server: no handler process; each admitted connection is connected to the service's
 * `proxy` target and copied both ways (proxy-copy.ts). It takes a slot like a handler, with pid
 * null, until both sides have ended. Writes the connection's `accept`, `end` and `proxy-failed`
 * records.
 */
export function createProxyServer(options: ProxyServerOptions): ConnectionServer {
  return { serve: (request) => startProxy(options, request) };
}

function startProxy(options: ProxyServerOptions, request: ServeRequest): Served {
  const { service, accepted, waitedMs } = request;
  const { incoming, peer, log } = accepted;
  const proxy = service.proxy as ProxySpec;
  const copy: ProxyCopy = startProxyCopy(options.addon, {
    incoming,
    target: proxy.target,
    header: proxy.protocol === null ? null : encodeProxyHeader(proxy.protocol, peer),
    connectTimeoutMs: proxy.connectTimeoutMs,
    idleTimeoutMs: proxy.idleTimeoutMs,
  });
  const ending: HandlerEnding = { timedOut: false, forced: false };
  const startedAt = options.now();
  log.log('info', 'accept', {
    peer: formatPeer(peer),
    proxy: proxy.text,
    engine: copy.engine,
    ...(waitedMs === null ? {} : { waitedMs }),
  });
  const outcome = copy.ended.then((result) =>
    report(log, { proxy, result, ending, durationMs: options.now() - startedAt }),
  );
  return servedInProcess({ accepted, startedAt, outcome, ending, close: () => copy.close() });
}

interface ProxyEnd {
  readonly proxy: ProxySpec;
  readonly result: ProxyCopyResult;
  readonly ending: HandlerEnding;
  readonly durationMs: number;
}

/** Writes `proxy-failed` (the target was not reached) or `end`, and the outcome it counts as. */
function report(log: EventLog, end: ProxyEnd): HandlerOutcome {
  const { result, proxy } = end;
  if (!result.connected) {
    const code = result.code ?? 'ECANCELED';
    const error = `unable to connect to ${proxy.text} (${code})`;
    log.log('error', 'proxy-failed', { proxy: proxy.text, code, syscall: result.syscall, error });
    return { kind: 'spawn-failed', error: { code, message: error } };
  }
  log.log('info', 'end', {
    pid: null,
    proxy: proxy.text,
    bytesFromClient: result.bytesFromClient,
    bytesToClient: result.bytesToClient,
    durationMs: end.durationMs,
    timedOut: end.ending.timedOut,
    closed: end.ending.requested === true,
    ...(result.code === null ? {} : { code: result.code, syscall: result.syscall }),
  });
  return { kind: 'exit', exitCode: result.code === null ? 0 : 1, signal: null };
}
