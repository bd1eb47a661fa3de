import { spawn, type StdioOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import {
  buildChainArgv,
  needsChain,
  unsupportedByChain,
  type ChainTools,
} from './portable-chain.js';
import type { HandlerOutcome, SpawnPlan, Spawner, SpawnedHandler } from '../model/spawn.js';

/**
 * The spawner on Node's child_process: forks the whole Node process per handler (slow). With a
 * cgroup placement, a /bin/sh link first in the chain moves itself into the cgroup and execs
 * the handler (argv[0] is then the program's path, as with every chain). It
 * sets uid, gid, cwd, the environment and the passFds (stdio 3, 4, …) itself, and chainloads
 * util-linux setpriv (groups, no_new_privs), prlimit (rlimits), nice and /bin/sh (umask,
 * LISTEN_PID) for services that ask for them; chroot it cannot do. Always available.
 */
export const portableSpawner: Spawner = {
  name: 'portable',
  unsupported(plan) {
    return unsupportedByChain(plan, chainTools());
  },
  spawn(plan, socketFd, placement) {
    return spawnPortable(plan, socketFd, placement?.cgroupProcsFd ?? null);
  },
};

let tools: ChainTools | undefined;

function chainTools(): ChainTools {
  tools ??= {
    setpriv: findProgram('setpriv'),
    prlimit: findProgram('prlimit'),
    nice: findProgram('nice'),
    sh: '/bin/sh',
  };
  return tools;
}

function findProgram(name: string): string | null {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    try {
      accessSync(`${dir}/${name}`, constants.X_OK);
      return `${dir}/${name}`;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/**
 * The first link of the chain when the handler goes into a cgroup: `/bin/sh` gets that cgroup's
 * cgroup.procs as fd 0 (fds 3… are the plan's passFds, and dash names no fd above 9), moves
 * itself there ("0": the writer), puts the socket (fd 1) back on 0 and execs the rest, so the
 * handler runs in its cgroup from its first instruction. A failed move ends it with 127.
 */
const joinCgroupScript =
  'echo 0 >&0 || { echo "socketeer: cannot join the handler cgroup" >&2; exit 127; }; exec 0<&1; exec "$@"';

function spawnPortable(plan: SpawnPlan, socketFd: number, cgroupFd: number | null): SpawnedHandler {
  const stderr = plan.stderr === 'log' ? 'pipe' : plan.stderr === 'socket' ? socketFd : 'ignore';
  const stdio: StdioOptions = [cgroupFd ?? socketFd, socketFd, stderr, ...plan.passFds];
  const needed = needsChain(plan) ? buildChainArgv(plan, chainTools()) : null;
  const inner = needed?.argv ?? [plan.file, ...plan.argv.slice(1)];
  const chain =
    cgroupFd === null
      ? needed
      : { argv: ['/bin/sh', '-c', joinCgroupScript, 'socketeer-cgroup', ...inner] };
  const [file, ...args] = chain?.argv ?? inner;
  const setsIds = plan.uid !== null && plan.gid !== null && needed?.switchesCredentials !== true;
  let child;
  try {
    child = spawn(file ?? plan.file, args, {
      argv0: chain === null ? (plan.argv[0] ?? plan.file) : (file ?? plan.file),
      stdio,
      env: envObject(plan.env),
      cwd: plan.cwd ?? '/',
      detached: true,
      ...(setsIds ? { uid: plan.uid ?? 0, gid: plan.gid ?? 0 } : {}),
    });
  } catch (error) {
    return { pid: null, stderr: null, outcome: Promise.resolve(failure(plan, error)) };
  }
  const outcome = new Promise<HandlerOutcome>((resolve) => {
    child.once('error', (error) => resolve(failure(plan, error)));
    child.once('exit', (exitCode, signal) => resolve({ kind: 'exit', exitCode, signal }));
  });
  return { pid: child.pid ?? null, stderr: child.stderr, outcome };
}

function failure(plan: SpawnPlan, error: unknown): HandlerOutcome {
  const err = error as NodeJS.ErrnoException;
  const code = typeof err.code === 'string' ? err.code : 'EUNKNOWN';
  return { kind: 'spawn-failed', error: { code, message: `spawn ${plan.file}: ${err.message}` } };
}

function envObject(env: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of env) {
    const eq = entry.indexOf('=');
    out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}
