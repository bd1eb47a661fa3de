// lighttpd as an `accept: false` service in the activation tests: its site and config, one GET
// through curl, and a loop of requests that counts what was served and keeps what failed.
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Target } from './proxy-backends.js';

export const lighttpd = '/usr/sbin/lighttpd';
export const lighttpdPage = 'hello from lighttpd\n';
const curlPath = '/usr/bin/curl';

/** One GET through curl: the body, or what went wrong (`curl failed: …`). */
export function curl(target: Target, path = '/index.html'): Promise<string> {
  const args =
    'path' in target
      ? ['--unix-socket', target.path, `http://localhost${path}`]
      : [`http://${target.host}:${target.port}${path}`];
  return new Promise((resolve) => {
    execFile(curlPath, ['-sS', '--max-time', '20', ...args], (error, stdout, stderr) =>
      resolve(error === null ? stdout : `curl failed: ${stderr.trim() || error.message}`),
    );
  });
}

/** A document root with index.html in `dir`, and lighttpd's config taking sockets from socketeer. */
export function lighttpdSite(dir: string): string {
  const www = join(dir, 'www');
  const run = join(dir, 'run');
  mkdirSync(www);
  mkdirSync(run);
  chmodSync(dir, 0o755); // handlers run as nobody under a root daemon
  chmodSync(run, 0o1777);
  writeFileSync(join(www, 'index.html'), lighttpdPage);
  const conf = join(dir, 'lighttpd.conf');
  writeFileSync(
    conf,
    [
      `server.document-root = "${www}"`,
      'server.systemd-socket-activation = "enable"',
      // lighttpd also binds what it is configured with: a path of its own, unused
      `server.bind = "${join(run, 'unused.sock')}"`,
      '',
    ].join('\n'),
  );
  return conf;
}

/** Requests in a loop on each target, one at a time per target, until stop(). */
export interface RequestLoop {
  /** Requests answered with the page so far. */
  served(): number;
  /** What every other request got, in order. */
  readonly failures: string[];
  /** Ends the loops once their requests in flight are done. */
  stop(): Promise<void>;
}

export function requestLoop(targets: readonly Target[]): RequestLoop {
  let served = 0;
  let isLooping = true;
  const failures: string[] = [];
  const loop = async (target: Target): Promise<void> => {
    while (isLooping) {
      const body = await curl(target);
      if (body === lighttpdPage) served += 1;
      else failures.push(body);
    }
  };
  const loops = targets.map(loop);
  return {
    served: () => served,
    failures,
    stop: async () => {
      isLooping = false;
      await Promise.all(loops);
    },
  };
}
