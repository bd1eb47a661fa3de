import type { PeerCredentials } from '../accept/peer.js';
import { ExitCode, FatalError } from '../errors.js';
import { portableSpawner } from './portable-spawner.js';
import type { Spawner } from './types.js';

export type SpawnerChoice = 'auto' | 'native' | 'portable';
export const spawnerChoices: readonly SpawnerChoice[] = ['auto', 'native', 'portable'];

export interface SelectedSpawner {
  readonly spawner: Spawner;
  readonly peerCredentials: (fd: number) => PeerCredentials | null;
  /** Why the native spawner is not in use, when it is not. */
  readonly note: string | null;
}

/** Picks the spawner: `auto` takes the native one when its addon is built. */
export function selectSpawner(choice: SpawnerChoice): SelectedSpawner {
  if (choice === 'native') {
    throw new FatalError(
      'the native spawner is not built (run npm install with a C compiler)',
      ExitCode.permanent,
    );
  }
  return {
    spawner: portableSpawner,
    peerCredentials: () => null,
    note: 'native spawner not built',
  };
}
