import type { PeerCredentials } from '../model/peer.js';
import { ExitCode, FatalError } from '../model/errors.js';
import { probeNativeAddon, type NativeAddon } from './native-addon.js';
import { createNativeSpawner } from './native-spawner.js';
import { portableSpawner } from './portable-spawner.js';
import type { Spawner } from '../model/spawn.js';

export type SpawnerChoice = 'auto' | 'native' | 'portable';
export const spawnerChoices: readonly SpawnerChoice[] = ['auto', 'native', 'portable'];

export interface SelectedSpawner {
  readonly spawner: Spawner;
  /** SO_PEERCRED of an accepted Unix connection; null where it cannot be read. */
  readonly peerCredentials: (fd: number) => PeerCredentials | null;
  /** With the native spawner: the addon, which also accepts the connections; else null. */
  readonly nativeAccept: NativeAddon | null;
  /** The addon whenever it loads, whichever spawner (it holds `accept: false` sockets). */
  readonly holder: NativeAddon | null;
  /** Why the native spawner is not in use, when it is not. */
  readonly note: string | null;
}

/**
 * Picks the spawner: `auto` takes the native one when its addon is built, `native` insists on
 * it (exit 100 when it is not there), `portable` takes child_process. Peer credentials come
 * from the addon whenever it loads, whichever spawner starts the handlers; the addon accepts the
 * connections only with the native spawner (`portable` is all Node: net.Server accepts).
 */
export function selectSpawner(choice: SpawnerChoice): SelectedSpawner {
  const probe = probeNativeAddon();
  const peerCredentials = probe.addon === null ? () => null : readCredentialsWith(probe.addon);
  if (choice !== 'portable' && probe.addon !== null) {
    const spawner = createNativeSpawner(probe.addon);
    return { spawner, peerCredentials, nativeAccept: probe.addon, holder: probe.addon, note: null };
  }
  if (choice === 'native') {
    throw new FatalError(
      `the native spawner is not available: ${probe.reason}`,
      ExitCode.permanent,
    );
  }
  return {
    spawner: portableSpawner,
    peerCredentials,
    nativeAccept: null,
    holder: probe.addon,
    note: probe.reason ?? 'portable spawner chosen',
  };
}

function readCredentialsWith(addon: NativeAddon): (fd: number) => PeerCredentials | null {
  return (fd) => {
    try {
      return addon.peerCredentials(fd);
    } catch {
      return null;
    }
  };
}
