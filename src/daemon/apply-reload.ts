import { findActivationConflicts } from './reload-activation.js';
import { loadConfig, systemResolveContext } from '../config/load.js';
import { featureCheckFor } from '../spawn/feature-check.js';
import { createSystemAccountLookup } from '../spawn/native-accounts.js';
import { type Config, type ListenAddress } from '../config/types.js';
import { formatProblem } from '../model/problem.js';
import { formatListenAddress } from '../config/listen-address.js';
import type { BoundListener } from '../listen/bound-listener.js';
import type { Daemon } from './daemon.js';
import { planReload, type CurrentListener, type ReloadPlan } from './reload-plan.js';
import type { ServiceRunner } from './service-runner.js';

export type ReloadOutcome =
  | {
      readonly applied: true;
      readonly unchanged: readonly string[];
      readonly changed: readonly string[];
      readonly added: readonly string[];
      readonly removed: readonly string[];
      /** Addresses that could not be bound again after their old listener closed. */
      readonly bindFailures: readonly string[];
    }
  | {
      readonly applied: false;
      /** `config`: the files have problems; `bind`: a new address could not be bound. */
      readonly reason: 'config' | 'bind';
      readonly problems: readonly string[];
    };

interface Prepared {
  readonly plan: ReloadPlan;
  readonly config: Config;
  readonly runners: ReadonlyMap<string, ServiceRunner>;
  readonly bound: BoundListener[];
  readonly owners: ReadonlyMap<CurrentListener, { runner: ServiceRunner; listener: BoundListener }>;
}

/**
 * `reload` and SIGHUP: read and validate everything; any problem changes nothing. Otherwise
 * bind every new address first (a failure undoes them and changes nothing), then switch:
 * changed services take their new definition for new connections, added ones serve, listeners
 * nobody keeps close, and removed services are stopped (their handlers ended).
 */
export async function reloadDaemon(daemon: Daemon): Promise<ReloadOutcome> {
  const { outcome, retired } = await daemon.exclusive(async () => {
    const ctx = systemResolveContext(
      createSystemAccountLookup(),
      featureCheckFor(daemon.options.spawner),
    );
    const loaded = loadConfig({ dir: daemon.config.dir, foreign: daemon.config.foreign }, ctx);
    if (!loaded.ok) return refuse(daemon, 'config', loaded.problems.map(formatProblem));
    const conflicts = findActivationConflicts(
      daemon.services.all().map((r) => r.spec),
      loaded.config.services.filter((s) => !s.disabled),
      new Set(daemon.services.unbound()),
    );
    if (conflicts.length > 0) return refuse(daemon, 'config', conflicts);
    const prepared = await prepare(daemon, loaded.config);
    if (!Array.isArray(prepared)) return commit(daemon, prepared);
    return refuse(daemon, 'bind', prepared);
  });
  await Promise.all(retired.map((r) => r.terminateAll(daemon.options.killGraceMs)));
  return outcome;
}

function refuse(
  daemon: Daemon,
  reason: 'config' | 'bind',
  problems: string[],
): { outcome: ReloadOutcome; retired: ServiceRunner[] } {
  daemon.log.log('error', 'reload-failed', { reason, problems });
  return { outcome: { applied: false, reason, problems }, retired: [] };
}

/** Plans, and binds the addresses that collide with nothing; on a failure undoes and says why. */
async function prepare(daemon: Daemon, config: Config): Promise<Prepared | string[]> {
  const owners = new Map<CurrentListener, { runner: ServiceRunner; listener: BoundListener }>();
  for (const runner of daemon.services.all()) {
    runner.boundListeners.forEach((listener, index) => {
      const { address, socket } = listener;
      const key = { service: runner.spec.name, index, address, socket };
      owners.set(key, { runner, listener });
    });
  }
  const next = config.services.filter((s) => !s.disabled);
  const unbound = new Set(daemon.services.unbound());
  const current = daemon.services.all().map((r) => r.spec);
  const plan = planReload({ current, listeners: [...owners.keys()], next, unbound });
  const runners = new Map(next.map((s) => [s.name, daemon.services.get(s.name)]));
  for (const spec of next)
    runners.set(spec.name, runners.get(spec.name) ?? daemon.createRunner(spec));
  const bound: BoundListener[] = [];
  for (const step of plan.steps) {
    if (step.kind !== 'bind') continue;
    const runner = runners.get(step.service);
    try {
      if (runner !== undefined) bound.push(await runner.addListener(step.address));
    } catch (error) {
      for (const listener of bound) await ownerOf(runners, listener)?.removeListener(listener);
      return [`${step.service}: ${error instanceof Error ? error.message : String(error)}`];
    }
  }
  return { plan, config, runners: runners as Map<string, ServiceRunner>, bound, owners };
}

function ownerOf(
  runners: ReadonlyMap<string, ServiceRunner | undefined>,
  listener: BoundListener,
): ServiceRunner | undefined {
  return [...runners.values()].find((r) => r?.boundListeners.includes(listener));
}

/** Switches to the prepared configuration; nothing here refuses a connection on a kept address. */
async function commit(
  daemon: Daemon,
  prepared: Prepared,
): Promise<{ outcome: ReloadOutcome; retired: ServiceRunner[] }> {
  const { plan } = prepared;
  const retired = switchDefinitions(daemon, prepared);
  const bindFailures = await swapListeners(daemon, prepared);
  for (const runner of retired) {
    const { name } = runner.spec;
    daemon.log.log('info', 'stop', { service: name, by: 'reload', handlers: runner.handlers.size });
  }
  const { unchanged, changed, added, removed } = plan;
  daemon.log.log('info', 'reload', { unchanged, changed, added, removed, bindFailures });
  const outcome = { applied: true as const, unchanged, changed, added, removed, bindFailures };
  return { outcome, retired };
}

/** New definitions in, removed services out; returns the removed services' runners. */
function switchDefinitions(daemon: Daemon, { plan, config, runners }: Prepared): ServiceRunner[] {
  const retired = plan.removed.flatMap((name) => {
    const runner = daemon.services.get(name);
    return runner === undefined ? [] : [runner];
  });
  for (const spec of config.services.filter((s) => !s.disabled)) {
    const runner = runners.get(spec.name);
    if (runner === undefined) continue;
    runner.replaceSpec(spec);
    if (daemon.services.get(spec.name) === undefined) daemon.services.add(runner, 'running');
  }
  for (const runner of retired) {
    daemon.services.remove(runner.spec.name);
    runner.closeQueue();
  }
  daemon.useConfig(config);
  return retired;
}

/**
 * Changes Unix sockets' owner and mode in place; closes the listeners nobody keeps and binds
 * the addresses they held: a Unix path before (its new socket is renamed over the old one), TCP
 * and abstract addresses after. A closed listener whose address is bound again first lets its
 * accept loop take what is already queued on it. Returns what could not be bound.
 */
async function swapListeners(
  daemon: Daemon,
  { plan, runners, owners }: Prepared,
): Promise<string[]> {
  const failures: string[] = [];
  const rebind = async (service: string, address: ListenAddress, replace: boolean) => {
    try {
      await runners.get(service)?.addListener(address, { replace });
      return true;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      failures.push(`${service}: ${message}`);
      const where = formatListenAddress(address);
      daemon.log.log('error', 'bind-failed', { service, address: where, error: message });
      return false;
    }
  };
  for (const step of plan.steps) {
    const owner = step.kind === 'retune' ? owners.get(step.listener) : undefined;
    if (step.kind !== 'retune' || owner === undefined) continue;
    try {
      owner.listener.retune(step.socket);
    } catch {
      // not in place (no addon, or the file is no longer ours): a new socket over it
      if (await rebind(step.service, step.listener.address, true))
        await owner.runner.removeListener(owner.listener, { drain: true });
    }
  }
  const rebinds = plan.steps.flatMap((s) => (s.kind === 'rebind' ? [s] : []));
  const replaced = new Set(rebinds.flatMap((s) => s.replaces));
  const isUnixPath = (a: ListenAddress): boolean => a.kind === 'unix' && !a.abstract;
  for (const step of rebinds.filter((s) => isUnixPath(s.address)))
    await rebind(step.service, step.address, true);
  for (const key of plan.close) {
    const owner = owners.get(key);
    const drain = replaced.has(key);
    if (owner !== undefined) await owner.runner.removeListener(owner.listener, { drain });
  }
  for (const step of rebinds.filter((s) => !isUnixPath(s.address)))
    await rebind(step.service, step.address, false);
  return failures;
}
