// `udp:` listeners (`accept: false` only): a socket bound by node:dgram, or inherited (a
// hand-over), held by the addon like a listening socket; nothing is read by the daemon.
import type { ListenAddress, SocketSpec } from '../config/types.js';
import { formatListenAddress } from '../config/listen-address.js';
import { bindFailure } from './bind.js';
import { adoptFailure, listenerOf, type BoundListener } from './bound-listener.js';
import { holdSocket, type SocketHolder } from './hold.js';
import type { NativeAcceptWatch } from './native-accept.js';
import { bindDatagram } from './udp.js';

type UdpAddress = ListenAddress & { kind: 'udp' };

/** What a UDP listener needs: its address, socket options, and the addon that holds it. */
interface UdpRequest {
  readonly address: UdpAddress;
  readonly socket: SocketSpec;
  readonly hold?: SocketHolder | null;
}

/** `udp:` (`accept: false` only, check refuses it otherwise): bound by node:dgram, held. */
export async function bindUdp(request: UdpRequest): Promise<BoundListener> {
  const { address, socket, hold } = request;
  if (hold === undefined || hold === null)
    throw bindFailure(address, 'a UDP socket is for accept: false services only');
  const { watch, bound, port } = await bindDatagram(address, (fd) => holdSocket(hold, fd));
  return heldDatagram({ address, bound, port, watch }, socket);
}

/** A held UDP socket as a listener: closing it stops the watch and closes the daemon's copy. */
function heldDatagram(
  held: { address: UdpAddress; bound: string; port: number; watch: NativeAcceptWatch },
  socket: SocketSpec,
): BoundListener {
  const { address, bound, port, watch } = held;
  const close = (): Promise<void> => {
    watch.stop();
    return Promise.resolve();
  };
  const retune = (): void => {
    throw new Error('not a Unix path listener');
  };
  return listenerOf({ address, bound, port, fd: watch.fd, close, retune }, () => socket);
}

/**
 * An inherited `udp:` socket (a hand-over, LISTEN_FDS): held as bindUdp holds the one it binds,
 * once the addon has seen it is a UDP socket bound to the configured port (any, for port 0).
 */
export function adoptUdp(request: UdpRequest & { readonly fd: number }): BoundListener {
  const { address, socket, hold, fd } = request;
  if (hold === undefined || hold === null)
    throw adoptFailure(address, fd, 'a UDP socket is for accept: false services only');
  const port = hold.datagramPort(fd);
  if (port < 0) throw adoptFailure(address, fd, 'it is not a bound UDP socket');
  if (address.port !== 0 && port !== address.port)
    throw adoptFailure(address, fd, `it is bound to UDP port ${port}`);
  const watch = holdSocket(hold, fd); // the daemon's own copy; the inherited fd is closed
  hold.closeFd(fd);
  const bound = formatListenAddress({ ...address, port });
  return heldDatagram({ address, bound, port, watch }, socket);
}
