import { normaliseAddress } from '../access/ip.js';
import type { BuiltinName } from '../config/types.js';
import type { RefuseReason } from '../limits/reasons.js';
import type { ListenAddress, SocketSpec } from '../config/types.js';
import type { BoundListener } from '../listen/bound-listener.js';
import { serveDatagrams, type DatagramFrom, type DatagramServer } from '../listen/udp-serve.js';
import type { EventLog } from '../log/events.js';
import { formatPeer, type Peer } from '../model/peer.js';
import type { Refusal } from './admit.js';
import { chargenDatagram, daytimeLine, timeBytes } from './builtin-protocols.js';

/** Answers queued in Node's send queue past which a datagram gets none (`send-queue`). */
export const maxPendingAnswers = 1024;

/** The longest chargen datagram (RFC 864: 0 to 512 characters). */
export const chargenDatagramMax = 512;

export interface DatagramAnswererOptions {
  /** The service's protocol now (a reload may change it). */
  readonly builtin: () => BuiltinName;
  /** Admission as for a connection (access, rate, caps); null: answer. Counts a refusal. */
  readonly admit: (peer: Peer) => Refusal | null;
  /** Counts a refusal decided here (the reflection guard, the send queue). */
  readonly countRefused: (reason: RefuseReason) => void;
  /** Bound to `{service}`; `refuse` records are rate-limited by the logger. */
  readonly log: EventLog;
  /** Wall-clock ms: daytime and time answers. */
  readonly now: () => number;
  /** 0 <= random() < 1: chargen's datagram length (default Math.random). */
  readonly random?: () => number;
}

/** Reads a builtin service's datagrams and answers each, guarded against reflection. */
export interface DatagramAnswerer {
  receive(server: DatagramServer, message: Buffer, from: DatagramFrom): void;
}

/**
 * Each datagram, in the order read: discard answers none; the others answer one datagram each,
 * unless the source port is below 1024 (0 included: BSD inetd's guard against being bounced
 * off another service such as echo or chargen), admission refuses the peer (access rules, then
 * `limits.rate`/`perSourceRate` token buckets), or Node's send queue is full. Each refusal is
 * counted by reason and gets a `refuse` record (rate-limited).
 */
export function createDatagramAnswerer(options: DatagramAnswererOptions): DatagramAnswerer {
  let chargenLine = 0;
  const random = options.random ?? Math.random;
  const answerOf = (name: BuiltinName, message: Buffer): Buffer => {
    if (name === 'echo') return message;
    if (name === 'daytime') return Buffer.from(daytimeLine(options.now()), 'latin1');
    if (name === 'time') return timeBytes(options.now());
    const length = Math.floor(random() * (chargenDatagramMax + 1));
    return chargenDatagram(chargenLine++, length);
  };
  const refuse = (peer: Peer, refusal: Omit<Refusal, 'banner'>): void => {
    options.log.log('info', 'refuse', {
      peer: formatPeer(peer),
      reason: refusal.reason,
      detail: refusal.detail,
    });
  };
  return {
    receive(server, message, from) {
      const name = options.builtin();
      if (name === 'discard') return;
      const peer = peerOf(from);
      if (from.remotePort < 1024) {
        options.countRefused('source-port');
        const detail = `source port ${from.remotePort} is below 1024: no answer (reflection guard)`;
        return refuse(peer, { reason: 'source-port', detail });
      }
      const refusal = options.admit(peer);
      if (refusal !== null) return refuse(peer, refusal);
      if (server.pendingSends() >= maxPendingAnswers) {
        options.countRefused('send-queue');
        const detail = `${maxPendingAnswers} answers are waiting to be sent`;
        return refuse(peer, { reason: 'send-queue', detail });
      }
      server.send(answerOf(name, message), from);
    },
  };
}

function peerOf(from: DatagramFrom): Peer {
  return {
    kind: 'tcp',
    localAddress: normaliseAddress(from.localAddress),
    localPort: from.localPort,
    remoteAddress: normaliseAddress(from.remoteAddress),
    remotePort: from.remotePort,
  };
}

/**
 * Binds a `builtin` service's `udp:` address, its datagrams read into `answerer`. Its `fd` is
 * the socket's: `upgrade` passes it on, and the successor serves it (datagrams that arrive in
 * between wait in the socket).
 */
export async function bindBuiltinDatagrams(
  address: ListenAddress & { kind: 'udp' },
  options: {
    readonly answerer: DatagramAnswerer;
    readonly socket: () => SocketSpec;
    readonly onError: (error: NodeJS.ErrnoException) => void;
    /** An inherited bound socket (LISTEN_FDS) to serve instead of binding. */
    readonly fd?: number | undefined;
  },
): Promise<BoundListener> {
  const events = {
    onMessage: (message: Buffer, from: DatagramFrom) =>
      options.answerer.receive(server, message, from),
    onError: options.onError,
  };
  const server: DatagramServer = await serveDatagrams(address, events, options.fd);
  return {
    address,
    get socket() {
      return options.socket();
    },
    bound: server.bound,
    port: server.port,
    fd: server.fd,
    close: () => server.close(),
    retune: () => {
      throw new Error('not a Unix path listener');
    },
  };
}

/** What a `builtin` service's `udp:` address is served with. */
export interface BuiltinDatagramRequest {
  readonly address: ListenAddress & { kind: 'udp' };
  /** An inherited socket (LISTEN_FDS, a hand-over) instead of a fresh bind. */
  readonly fd: number | undefined;
  /** The service's admission, as for a connection (never queued). */
  readonly admission: {
    admitDatagram(peer: Peer): Refusal | null;
    countRefused(reason: RefuseReason): void;
  };
  readonly builtin: () => BuiltinName | null;
  readonly socket: () => SocketSpec;
  readonly log: EventLog;
  readonly now: () => number;
  readonly onError: (error: NodeJS.ErrnoException) => void;
}

/** A `builtin` service's `udp:` address: read by the daemon, each datagram answered. */
export function serveBuiltinDatagrams(request: BuiltinDatagramRequest): Promise<BoundListener> {
  const { admission, log, now, onError, fd, socket } = request;
  const answerer = createDatagramAnswerer({
    builtin: () => request.builtin() ?? 'discard',
    admit: (peer) => admission.admitDatagram(peer),
    countRefused: (reason) => admission.countRefused(reason),
    log,
    now,
  });
  return bindBuiltinDatagrams(request.address, { answerer, socket, onError, fd });
}
