// What the compat integration tests share: free ports for files that name a fixed one, a git
// repository to serve, and the real clients (git ls-remote, rsync, tftp) run without blocking.
import { execFile, execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';

export const git = '/usr/bin/git';
export const rsync = '/usr/bin/rsync';
/**
 * Why a test needs what is not installed, or false. In CI (CI=true: .ci/run installs every
 * package) nothing is skipped: a missing program fails the test instead.
 */
export function missing(path: string, packages: string): string | false {
  if (existsSync(path) || process.env.CI === 'true') return false;
  return `${path} is not installed (apt-get install ${packages})`;
}

export const noGit = missing(git, 'git');
export const noRsync = missing(rsync, 'rsync');

/** This process's user and group names (a foreign file's user: allowed as root and as not). */
export function self(): { user: string; group: string } {
  const user = userInfo().username;
  const group = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
  return { user, group };
}

/** A TCP port free on 127.0.0.1 now (foreign files name their port; socketeer's port 0 is not theirs). */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        resolve(typeof address === 'object' && address !== null ? address.port : 0),
      );
    });
  });
}

export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/** `BASE/repo.git`, bare, with one commit on main; returns that commit's hash. */
export function makeGitRepo(base: string): string {
  const work = join(base, 'work');
  const run = (...args: string[]) => execFileSync(git, args, { encoding: 'utf8' }).trim();
  run('init', '-q', '-b', 'main', work);
  run(
    '-C',
    work,
    '-c',
    'user.name=t',
    '-c',
    'user.email=t@example.org',
    'commit',
    '-q',
    '--allow-empty',
    '-m',
    'one',
  );
  run('clone', '-q', '--bare', work, join(base, 'repo.git'));
  return run('-C', work, 'rev-parse', 'HEAD');
}

/** Runs a client to its end: `ok STDOUT`, or `failed: STDERR`. */
export function runClient(file: string, args: string[], timeout = 30000): Promise<string> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout }, (error, stdout, stderr) =>
      resolve(error === null ? `ok ${stdout}` : `failed: ${stderr.trim() || error.message}`),
    );
  });
}

/** `git ls-remote git://127.0.0.1:PORT/PATH`. */
export function lsRemote(port: number, path: string): Promise<string> {
  return runClient(git, ['ls-remote', `git://127.0.0.1:${port}/${path}`]);
}
