import { findLongestMatch } from '../access/cidr.js';
import { normaliseAddress, parsePeerAddress } from '../access/ip.js';
import type { ProxyHeaderSpec } from '../config/types.js';
import type { EventLog } from '../log/events.js';
import { connectionId, formatPeer, type Peer } from '../model/peer.js';
import type { ProxySource } from './proxy-header-parse.js';
import type { Refusal } from './admit.js';
import type { AcceptedConnection } from './describe-connection.js';
import { loadProxyHeaderAddon, readProxyHeader } from './proxy-header-read.js';

export type HeaderOutcome =
  /** The header was read: the connection as its client (the balancer in the log's `via`). */
  | { readonly kind: 'client'; readonly accepted: AcceptedConnection }
  | { readonly kind: 'refused'; readonly refusal: Refusal };

export interface HeaderWait {
  readonly header: ProxyHeaderSpec;
  /** Bound to `{service}`. */
  readonly log: EventLog;
  /** The connection's number in its service. */
  readonly n: number;
  /** Called once, unless cancelled first (possibly before `awaitProxyHeader` returns). */
  readonly onDone: (outcome: HeaderOutcome) => void;
}

/**
 * Reads the PROXY header of an accepted TCP connection (`socket.proxyProtocol`) before admission:
 * refused (`proxy-header`) when its sender is not in `socket.proxyTrusted`, or when the header
 * is missing, malformed or late; else the connection as the client the header names. Returns a
 * cancel function (the caller then closes the connection).
 */
export function awaitProxyHeader(accepted: AcceptedConnection, wait: HeaderWait): () => void {
  const { header, onDone } = wait;
  const refuse = (detail: string): void =>
    onDone({ kind: 'refused', refusal: { reason: 'proxy-header', detail, banner: null } });
  const untrusted = untrustedDetail(accepted.peer, header);
  const addon = loadProxyHeaderAddon();
  if (untrusted !== null || addon === null) {
    refuse(untrusted ?? 'reading a PROXY header needs the native addon, which is not built');
    return () => undefined;
  }
  return readProxyHeader(addon, {
    fd: accepted.fd,
    timeoutMs: header.timeoutMs,
    onResult: (result) => {
      if (result.kind === 'failed') refuse(result.detail);
      else onDone({ kind: 'client', accepted: asClient(accepted, result.source, wait) });
    },
  });
}

/** Why the sender may not send a header (not in `socket.proxyTrusted`), or null. */
function untrustedDetail(peer: Peer, header: ProxyHeaderSpec): string | null {
  if (header.trusted === null || peer.kind !== 'tcp') return null;
  const ip = parsePeerAddress(peer.remoteAddress);
  if (ip !== null && findLongestMatch(header.trusted, ip) !== null) return null;
  return `${peer.remoteAddress} is not in socket.proxyTrusted`;
}

/** The connection as `source`, its client; unchanged when the header names none (LOCAL). */
function asClient(
  accepted: AcceptedConnection,
  source: ProxySource | null,
  wait: HeaderWait,
): AcceptedConnection {
  if (source === null) return accepted;
  const peer: Peer = {
    kind: 'tcp',
    localAddress: normaliseAddress(source.localAddress),
    localPort: source.localPort,
    remoteAddress: normaliseAddress(source.remoteAddress),
    remotePort: source.remotePort,
  };
  const conn = connectionId(wait.n, peer);
  const log = wait.log.child({ conn, via: formatPeer(accepted.peer) });
  return { ...accepted, peer, conn, log };
}

/** Where a connection goes once its header is read: admission, or a refusal. */
export interface HeaderWaitsTarget {
  admit(accepted: AcceptedConnection): void;
  refuse(accepted: AcceptedConnection, refusal: Refusal): void;
}

/** A service's connections whose PROXY header is being read. */
export class HeaderWaits {
  private readonly waits = new Map<AcceptedConnection, () => void>();

  constructor(private readonly target: HeaderWaitsTarget) {}

  /** Reads the header of `accepted`, then admits or refuses it. */
  start(accepted: AcceptedConnection, wait: Omit<HeaderWait, 'onDone'>): void {
    let done = false;
    const cancel = awaitProxyHeader(accepted, {
      ...wait,
      onDone: (outcome) => {
        done = true;
        this.waits.delete(accepted);
        if (outcome.kind === 'client') this.target.admit(outcome.accepted);
        else this.target.refuse(accepted, outcome.refusal);
      },
    });
    // a refusal before any wait (an untrusted sender) has called onDone already
    if (!done) this.waits.set(accepted, cancel);
  }

  /** Stops every read and refuses its connection (the service stops: `detail` says how). */
  stopAll(detail: string): void {
    for (const [accepted, cancel] of [...this.waits]) {
      cancel();
      this.waits.delete(accepted);
      this.target.refuse(accepted, { reason: 'proxy-header', detail, banner: null });
    }
  }
}
