import type { ProcessFeature, SpawnPlan } from '../model/spawn.js';

/** Paths of the util-linux and coreutils programs the portable spawner chainloads. */
export interface ChainTools {
  readonly setpriv: string | null;
  readonly prlimit: string | null;
  readonly nice: string | null;
  readonly sh: string;
}

/**
 * What the portable spawner can do for a plan with these tools: chroot never (the tools would
 * have to exist inside the new root); groups and no_new_privs need setpriv; rlimits prlimit;
 * nice the nice command; umask /bin/sh.
 */
export function unsupportedByChain(plan: SpawnPlan, tools: ChainTools): ProcessFeature[] {
  const missing: ProcessFeature[] = [];
  if (plan.chroot !== null) missing.push('chroot');
  if (plan.groups !== null && plan.groups.length > 0 && tools.setpriv === null)
    missing.push('groups');
  if (plan.noNewPrivileges && tools.setpriv === null) missing.push('noNewPrivileges');
  if (plan.rlimits.length > 0 && tools.prlimit === null) missing.push('rlimits');
  if (plan.nice !== null && tools.nice === null) missing.push('nice');
  return missing;
}

/** Whether the plan needs a chain at all (else child_process runs the program directly). */
export function needsChain(plan: SpawnPlan): boolean {
  return (
    (plan.groups !== null && plan.groups.length > 0) ||
    plan.noNewPrivileges ||
    plan.rlimits.length > 0 ||
    plan.nice !== null ||
    plan.umask !== null ||
    plan.setListenPid
  );
}

/**
 * The argv that runs the plan's program through prlimit → nice → setpriv → sh (umask,
 * LISTEN_PID), each only when needed. The pid stays the same through the chain's execs, so
 * the shell's `$$` is the program's pid. setpriv then does the credential switch (uid, gid, groups), so the caller
 * must not pass uid/gid to child_process when `switchesCredentials` is true.
 */
export function buildChainArgv(
  plan: SpawnPlan,
  tools: ChainTools,
): { argv: string[]; switchesCredentials: boolean } {
  const argv: string[] = [];
  if (plan.rlimits.length > 0 && tools.prlimit !== null) {
    argv.push(
      tools.prlimit,
      ...plan.rlimits.map((l) => `--${l.resource}=${limitText(l.soft)}:${limitText(l.hard)}`),
      '--',
    );
  }
  if (plan.nice !== null && tools.nice !== null)
    argv.push(tools.nice, '-n', String(plan.nice), '--');
  const hasGroups = plan.groups !== null && plan.groups.length > 0;
  const switchesCredentials = tools.setpriv !== null && (hasGroups || plan.noNewPrivileges);
  if (switchesCredentials && tools.setpriv !== null) {
    argv.push(tools.setpriv);
    if (plan.uid !== null && plan.gid !== null)
      argv.push(`--reuid=${plan.uid}`, `--regid=${plan.gid}`);
    if (hasGroups) argv.push(`--groups=${(plan.groups ?? []).join(',')}`);
    else if (plan.uid !== null) argv.push('--clear-groups');
    if (plan.noNewPrivileges) argv.push('--no-new-privs');
    argv.push('--');
  }
  const shellSteps = [
    ...(plan.umask === null ? [] : [`umask ${plan.umask.toString(8).padStart(4, '0')}`]),
    ...(plan.setListenPid ? ['LISTEN_PID=$$ && export LISTEN_PID'] : []),
  ];
  if (shellSteps.length > 0)
    argv.push(tools.sh, '-c', `${shellSteps.join(' && ')} && exec "$0" "$@"`);
  argv.push(plan.file, ...plan.argv.slice(1));
  return { argv, switchesCredentials };
}

function limitText(value: number | null): string {
  return value === null ? 'unlimited' : String(value);
}
