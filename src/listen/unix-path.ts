import { connect } from 'node:net';
import { lstatSync, unlinkSync } from 'node:fs';

export type PathState = 'free' | 'stale-socket' | 'live-socket' | 'not-a-socket';

/** What is at a Unix socket path now: nothing, a dead socket, a live one, or something else. */
export async function probeSocketPath(path: string): Promise<PathState> {
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    return 'free';
  }
  if (!stat.isSocket()) return 'not-a-socket';
  return new Promise((resolve) => {
    const client = connect(path);
    client.once('connect', () => {
      client.destroy();
      resolve('live-socket');
    });
    client.once('error', (error: NodeJS.ErrnoException) => {
      client.destroy();
      resolve(error.code === 'ECONNREFUSED' ? 'stale-socket' : 'live-socket');
    });
  });
}

/** Removes a socket path only if it is still the very socket we created (same inode). */
export function removeOwnedSocket(path: string, inode: number): void {
  try {
    if (lstatSync(path).ino === inode) unlinkSync(path);
  } catch {
    // already gone: nothing to remove
  }
}
