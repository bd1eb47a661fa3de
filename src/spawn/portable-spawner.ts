import { spawn, type StdioOptions } from 'node:child_process';
import type {
  HandlerOutcome,
  ProcessFeature,
  SpawnPlan,
  Spawner,
  SpawnedHandler,
} from './types.js';

/**
 * The spawner on Node's child_process: forks the whole Node process per handler (slow) and can
 * set only uid, gid, cwd and the environment. Always available.
 */
export const portableSpawner: Spawner = {
  name: 'portable',
  unsupported(plan) {
    const missing: ProcessFeature[] = [];
    if (plan.groups !== null && plan.groups.length > 0) missing.push('groups');
    if (plan.rlimits.length > 0) missing.push('rlimits');
    if (plan.umask !== null) missing.push('umask');
    if (plan.nice !== null) missing.push('nice');
    if (plan.chroot !== null) missing.push('chroot');
    if (plan.noNewPrivileges) missing.push('noNewPrivileges');
    return missing;
  },
  spawn(plan, socketFd) {
    return spawnPortable(plan, socketFd);
  },
};

function spawnPortable(plan: SpawnPlan, socketFd: number): SpawnedHandler {
  const stderr = plan.stderr === 'log' ? 'pipe' : plan.stderr === 'socket' ? socketFd : 'ignore';
  const stdio: StdioOptions = [socketFd, socketFd, stderr];
  let child;
  try {
    child = spawn(plan.file, plan.argv.slice(1), {
      argv0: plan.argv[0] ?? plan.file,
      stdio,
      env: envObject(plan.env),
      cwd: plan.cwd ?? '/',
      detached: true,
      ...(plan.uid !== null && plan.gid !== null ? { uid: plan.uid, gid: plan.gid } : {}),
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
