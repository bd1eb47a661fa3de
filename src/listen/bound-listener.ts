import type { ListenAddress, SocketSpec } from '../config/types.js';
import { formatListenAddress } from '../config/listen-address.js';
import { ExitCode, FatalError } from '../model/errors.js';

export interface CloseOptions {
  /** Leave the Unix path in place (a hand-over: another process serves the same socket). */
  readonly keepPath?: boolean;
  /**
   * Accept the connections already queued on the socket before closing it (a reload whose new
   * socket has taken the address: the queued ones would be reset). Up to 2 s.
   */
  readonly drain?: boolean;
}

export interface BoundListener {
  /** The configured address. */
  readonly address: ListenAddress;
  /** The socket options it was bound with, or retuned to (a reload compares them). */
  readonly socket: SocketSpec;
  /** What was really bound (port 0 resolved), as the readiness line shows it. */
  readonly bound: string;
  /** The TCP or UDP port really bound (port 0 resolved); null for Unix. */
  readonly port: number | null;
  /** The listening socket's fd (what a hand-over passes on); null if Node shows none. */
  readonly fd: number | null;
  /** Stops accepting; removes a Unix path this listener created unless `keepPath`. */
  close(options?: CloseOptions): Promise<void>;
  /**
   * A Unix path listener: gives its socket file the owner and mode of `socket` in place, no
   * re-bind (native/unix-bind.c). Throws when that cannot be done (the caller binds afresh).
   */
  retune(socket: SocketSpec): void;
}

/** A listener from its parts; `socket` read through `socket()` (a reload retunes it). */
export function listenerOf(
  parts: Omit<BoundListener, 'socket'>,
  socket: () => SocketSpec,
): BoundListener {
  return {
    ...parts,
    get socket() {
      return socket();
    },
  };
}

/** Why an inherited fd cannot serve `address` (exit 75: a take-over may be tried again). */
export function adoptFailure(address: ListenAddress, fd: number, why: string): FatalError {
  return new FatalError(
    `unable to serve ${formatListenAddress(address)} on inherited fd ${fd}: ${why}`,
    ExitCode.temporary,
  );
}
